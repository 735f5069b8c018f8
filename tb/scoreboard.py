"""Scoreboard: RTL outputs against the golden model's, bit for bit, checked as they arrive.

The expectations (``(batch, n_out)`` integers from ``sim.golden.run_golden``) are queued per
input vector; the output monitor hands every accepted output to :meth:`Scoreboard.check`, which
raises on the first difference with everything needed to find it: input vector, layer, row,
the PE that owns the row (``row % n_pe``) and its local row, expected and received values and
the cycle. :meth:`Scoreboard.finish` then requires every expected output to have arrived.

Deliberate fault: ``inject_fault=True`` (the testbench sets it from its ``inject_fault`` knob)
changes one expected value, so a run that passes with the switch on proves the checker blind.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Scoreboard"]


class Scoreboard:
    """Compare outputs of the last layer with expectations.

    Parameters
    ----------
    expected : array-like, (batch, n_out)
        Golden outputs.
    n_pe : int
        PEs of the array (row ``i`` belongs to PE ``i % n_pe``).
    layer : int
        Index of the layer whose outputs are compared (the last one).
    inject_fault : bool
        Flip the low bit of one expected value (input 0, the middle row).
    context : str
        Appended to every failure message (e.g. the seed and the configuration).
    """

    def __init__(self, expected, *, n_pe: int, layer: int, inject_fault: bool = False,
                 context: str = ""):
        self.expected = np.array(expected, dtype=np.int64, copy=True)
        if self.expected.ndim != 2:
            raise ValueError(f"expected outputs must be (batch, n_out), not {self.expected.shape}")
        self.n_pe = n_pe
        self.layer = layer
        self.context = context
        self.fault = None
        if inject_fault:
            row = self.expected.shape[1] // 2
            self.expected[0, row] ^= 1
            self.fault = (0, row)
        self.received = np.zeros(self.expected.shape, dtype=bool)
        self.checked = 0

    @property
    def batch(self) -> int:
        return self.expected.shape[0]

    @property
    def n_out(self) -> int:
        return self.expected.shape[1]

    def describe(self, b: int, row: int) -> str:
        return (f"input {b}, layer {self.layer}, row {row} (PE {row % self.n_pe}, local row "
                f"{row // self.n_pe})")

    def check(self, b: int, row: int, got: int, cycle: int | None = None) -> None:
        """Check output ``row`` of input vector ``b``; raises AssertionError on a mismatch."""
        if not 0 <= b < self.batch:
            raise AssertionError(f"output for input {b}, but only {self.batch} inputs were expected")
        if not 0 <= row < self.n_out:
            raise AssertionError(f"input {b}: extra output #{row} ({got}) at cycle {cycle}; the last "
                                 f"layer has {self.n_out} rows")
        if self.received[b, row]:
            raise AssertionError(f"{self.describe(b, row)} received twice")
        self.received[b, row] = True
        self.checked += 1
        want = int(self.expected[b, row])
        if int(got) != want:
            fault = " [deliberate fault injected: inject_fault]" if self.fault == (b, row) else ""
            at = f" at cycle {cycle}" if cycle is not None else ""
            raise AssertionError(f"MISMATCH {self.describe(b, row)}: expected {want}, got "
                                 f"{int(got)}{at}{fault}{self.context}")

    def check_vector(self, b: int, outputs, cycles=None) -> None:
        """Check a whole output vector of input ``b`` (count first, then every row)."""
        outputs = list(outputs)
        if len(outputs) != self.n_out:
            raise AssertionError(f"input {b}: {len(outputs)} outputs, expected {self.n_out}"
                                 f"{self.context}")
        for row, got in enumerate(outputs):
            self.check(b, row, got, None if cycles is None else cycles[row])

    def finish(self) -> None:
        """Every expected output must have been received (and checked)."""
        missing = np.argwhere(~self.received)
        if missing.size:
            b, row = missing[0]
            raise AssertionError(f"{len(missing)} expected output(s) never arrived; first: "
                                 f"{self.describe(int(b), int(row))}{self.context}")
