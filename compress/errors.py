"""The one exception type of the compression flow.

Every failure a user can cause (a bad model file, an unsupported layer, an impossible option) raises
:class:`CompressError` with a one-line message that says what is wrong and how to fix it; the CLI
prints the message and exits non-zero.
"""

from __future__ import annotations

__all__ = ["CompressError"]


class CompressError(Exception):
    """A user-facing failure of the compression flow; the message is one line."""
