"""The output collector: a vector read out of the PEs in global order onto an output stream."""

from __future__ import annotations

from amaranth.hdl import Array, Module, Signal, signed
from amaranth.lib import data, stream
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from eie.hw.layouts import ConfiguredComponent, Widths, check_config

__all__ = ["OutputCollector", "OUTPUT_FIFO_DEPTH"]

OUTPUT_FIFO_DEPTH = 4


class OutputCollector(ConfiguredComponent):
    """Stream elements ``j = 0 .. n_out-1`` of a vector held interleaved in the PEs (element ``j`` at
    word ``base + j div n_pe`` of PE ``j mod n_pe``) onto ``o``, in order.

    ``start`` (with ``n_out``, and ``base`` stable until the end) begins; reads go out on
    ``addr`` (to every PE) and their words come back on ``data`` ``latency`` cycles later into an
    ``OUTPUT_FIFO_DEPTH``-entry FIFO; a read is issued only while the FIFO has room for it and the
    reads in flight, so ``o`` carries one element per cycle while ``o.ready`` is high and honours
    back-pressure in every cycle. ``last`` is high in the cycle whose handshake transfers element
    ``n_out - 1``; nothing is read before the first ``start`` or after ``last``.

    Parameters
    ----------
    config : EIEConfig
    addr_width : int
        Width of a word address in the PEs' activation memories.
    latency : int
        Cycles from ``addr`` to ``data``.

    Attributes
    ----------
    start : In(1)
    n_out : In(range(max_width + 1))
    base : In(addr_width)
    addr : Out(addr_width)
    data : In(data.ArrayLayout(signed(act_bits), n_pe))
        Every PE's read word.
    o : Out(stream.Signature(signed(act_bits)))
    last : Out(1)

    Raises
    ------
    TypeError
        ``config`` is not an :class:`EIEConfig`, or a width is not an integer.
    ValueError
        ``addr_width`` or ``latency`` below 1.
    """

    def __init__(self, *, config, addr_width, latency):
        config = check_config(config)
        for name, value in (("addr_width", addr_width), ("latency", latency)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, not {value}")
        self._config = config
        self._latency = latency
        act = signed(config.act_bits)
        super().__init__({
            "start": In(1),
            "n_out": In(Widths(config).count),
            "base": In(addr_width),
            "addr": Out(addr_width),
            "data": In(data.ArrayLayout(act, config.n_pe)),
            "o": Out(stream.Signature(act)),
            "last": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = self._config
        n_pe = c.n_pe
        w = Widths(c)
        m.submodules.fifo = fifo = SyncFIFO(width=c.act_bits, depth=OUTPUT_FIFO_DEPTH)
        active = Signal()
        count = Signal(w.count)
        pe = Signal(range(n_pe))
        local = Signal(len(self.addr))
        issue = Signal()
        flights = [(issue, pe)]
        for n in range(self._latency):
            valid, pe_n = Signal(name=f"flight{n}"), Signal(range(n_pe), name=f"flight_pe{n}")
            m.d.sync += [valid.eq(flights[-1][0]), pe_n.eq(flights[-1][1])]
            flights.append((valid, pe_n))
        in_flight = sum(valid for valid, _ in flights[1:])
        m.d.comb += [
            issue.eq(active & (count < self.n_out) & (fifo.level + in_flight < OUTPUT_FIFO_DEPTH)),
            self.addr.eq(self.base + local),
        ]
        arrived, arrived_pe = flights[-1]
        m.d.comb += [
            fifo.w_en.eq(arrived),
            fifo.w_data.eq(Array(self.data[p] for p in range(n_pe))[arrived_pe]),
            self.o.valid.eq(fifo.r_rdy),
            self.o.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.o.ready),
        ]
        popped = Signal(w.count)
        last_popped = Signal()      # popped == n_out - 1, registered
        m.d.comb += self.last.eq(self.o.valid & self.o.ready & last_popped)
        with m.If(self.start):
            m.d.sync += [active.eq(1), count.eq(0), pe.eq(0), local.eq(0), popped.eq(0),
                         last_popped.eq(self.n_out == 1)]
        with m.Else():
            with m.If(self.last):
                m.d.sync += active.eq(0)
            with m.If(issue):
                m.d.sync += count.eq(count + 1)
                if n_pe == 1:
                    m.d.sync += local.eq(local + 1)
                else:
                    with m.If(pe == n_pe - 1):
                        m.d.sync += [pe.eq(0), local.eq(local + 1)]
                    with m.Else():
                        m.d.sync += pe.eq(pe + 1)
            with m.If(self.o.valid & self.o.ready):
                m.d.sync += [popped.eq(popped + 1), last_popped.eq(popped + 2 == self.n_out)]
        return m
