"""The exceptions every layer of ``eie`` raises for failures a user can cause.

Each carries a one-line message that says what is wrong and how to fix it; the ``eie`` command
prints that line after ``Error:`` and exits with status 1. Catch :class:`EIEError` to catch them
all. Programming errors (a wrong argument type in the Python API) stay ``TypeError``.

==================== ==========================================================================
exception            raised when
==================== ==========================================================================
:class:`ConfigError` a hardware configuration is invalid, or a network breaks a numeric limit
:class:`FitError`    a network does not fit the configured SRAMs (gives needed and available)
:class:`ImageError`  an image directory is missing, corrupt or made for another configuration
:class:`InputError`  input activations, labels or data have the wrong shape, type or values
:class:`CompressError` a model cannot be loaded or compressed, or compression options conflict
:class:`BudgetError` the compressed model loses more than the accuracy budget allows
==================== ==========================================================================
"""

from __future__ import annotations

__all__ = ["EIEError", "ConfigError", "FitError", "ImageError", "InputError", "CompressError", "BudgetError"]


class EIEError(Exception):
    """Base of every user-facing failure; the message is one line."""


class ConfigError(EIEError, ValueError):
    """A hardware configuration is invalid or does not suit the network."""


class FitError(ConfigError):
    """The network does not fit the configured SRAMs."""


class ImageError(EIEError, ValueError):
    """An image directory is missing, corrupt or made for another configuration."""


class InputError(EIEError, ValueError):
    """Inputs, labels or a data set do not suit the network."""


class CompressError(EIEError):
    """A model cannot be loaded or compressed as asked."""


class BudgetError(CompressError):
    """The compressed model loses more than the budget allows."""
