"""The activation queue of a PE (EIE section III-B)."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from eie.hw.layouts import activation_layout

__all__ = ["ActivationQueue"]


class ActivationQueue(wiring.Component):
    """FIFO of broadcast activations ``(value, index)`` waiting for a PE.

    A :class:`~amaranth.lib.fifo.SyncFIFOBuffered` (block-RAM friendly: synchronous read), so
    an activation written into an empty queue appears at ``o`` two cycles later. Its inner FIFO
    holds ``depth - 1`` entries and cannot be written while full, so with ``depth == 2`` it
    would accept only one activation every other cycle; depths up to 2 therefore use a plain
    :class:`~amaranth.lib.fifo.SyncFIFO` (registers, one cycle from write to ``o``), which
    sustains one per cycle at ``depth == 2``. ``depth == 1`` accepts one activation every other
    cycle while busy (a one-entry FIFO cannot be written while full).

    Parameters
    ----------
    depth : int
        Entries the queue holds (``>= 1``). With ``depth == 1`` the queue is one register and
        accepts a new activation only every other cycle.
    act_bits : int
        Width of an activation value (signed).
    index_width : int
        Width of the activation index ``j``.

    Attributes
    ----------
    i : In(stream.Signature(activation_layout))
        Activations to enqueue. ``i.ready`` is low while the queue is full; it does not depend
        on ``i.valid`` or ``o.ready``.
    o : Out(stream.Signature(activation_layout))
        The oldest queued activation. Throughput: one per cycle in and out (``depth >= 2``).
    level : Out(range(depth + 1))
        Number of activations held; non-zero means the PE has work.

    Raises
    ------
    TypeError
        A parameter is not an integer.
    ValueError
        A parameter is out of range.
    """

    def __init__(self, *, depth, act_bits, index_width):
        for name, value, lo in (("depth", depth, 1), ("act_bits", act_bits, 2),
                                ("index_width", index_width, 1)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if value < lo:
                raise ValueError(f"{name} must be >= {lo}, not {value}")
        self._depth = depth
        self._layout = activation_layout(act_bits, index_width)
        super().__init__({
            "i": In(stream.Signature(self._layout)),
            "o": Out(stream.Signature(self._layout)),
            "level": Out(range(depth + 1)),
        })

    @property
    def depth(self):
        return self._depth

    def elaborate(self, platform):
        m = Module()
        fifo_class = SyncFIFOBuffered if self._depth > 2 else SyncFIFO
        m.submodules.fifo = fifo = fifo_class(width=self._layout.size, depth=self._depth)
        m.d.comb += [
            fifo.w_data.eq(self.i.payload),
            fifo.w_en.eq(self.i.valid),
            self.i.ready.eq(fifo.w_rdy),
            self.o.payload.eq(fifo.r_data),
            self.o.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.o.ready),
            self.level.eq(fifo.level),
        ]
        return m
