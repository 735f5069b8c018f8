"""The pointer read unit of a PE (EIE section III-B)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from eie.hw.layouts import (
    ConfiguredComponent,
    Widths,
    WritePortSignature,
    activation_layout,
    bits_for,
    check_config,
    job_layout,
)

__all__ = ["PointerReadUnit"]


def check_init(name, init, depth, width, *, signed=False):
    """Validate an optional memory initialiser; returns it as a list of ints."""
    if init is None:
        return []
    values = [int(x) for x in init]
    if len(values) > depth:
        raise ValueError(f"{name} has {len(values)} words but the memory holds {depth}")
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    for a, x in enumerate(values):
        if not lo <= x <= hi:
            raise ValueError(f"{name}[{a}] = {x} does not fit {width}-bit "
                             f"{'signed' if signed else 'unsigned'}")
    return values


class PointerReadUnit(ConfiguredComponent):
    """Look up column ``j``'s pointers ``P[base+j]`` and ``P[base+j+1]`` in one cycle.

    The pointer SRAM is split by address parity into an even and an odd bank (two
    :class:`~amaranth.lib.memory.Memory` of ``ptr_depth/2`` words with synchronous read ports,
    i.e. block RAMs), so any two consecutive pointers sit in different banks. For address
    ``a = base + j`` the even bank is read at ``(a+1) // 2`` and the odd bank at ``a // 2``; the
    parity of ``a`` decides which one is the start.

    Latency one cycle, throughput one activation per cycle. Back-pressure: the output register
    holds while ``o.ready`` is low, and then ``i.ready`` is low (``i.ready = ~o.valid | o.ready``).

    Parameters
    ----------
    config : EIEConfig
    init : list of int, optional
        Initial pointer memory contents (entry ``a`` of the image), for bitstreams.

    Attributes
    ----------
    i : In(stream.Signature(activation_layout))
        Activation ``(value, j)`` from the activation queue.
    ptr_base : In(ptr address)
        The layer's ``ptr_base``; must be stable while activations flow.
    o : Out(stream.Signature(job_layout))
        Column job ``(start, end, value)``.
    w : In(WritePortSignature)
        I/O-mode write of pointer entry ``w.addr`` (bank ``addr % 2``, word ``addr // 2``).

    Raises
    ------
    TypeError
        ``config`` is not an :class:`EIEConfig`.
    ValueError
        ``init`` does not fit the pointer memory.
    """

    def __init__(self, *, config, init=None):
        config = check_config(config)
        self._init = check_init("pointer init", init, config.ptr_depth, config.ptr_bits)
        self._config = config
        w = Widths(config)
        super().__init__({
            "i": In(stream.Signature(activation_layout(config.act_bits, w.act_index))),
            "ptr_base": In(w.ptr_addr),
            "o": Out(stream.Signature(job_layout(config))),
            "w": In(WritePortSignature(w.ptr_addr, config.ptr_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        c = self._config
        bank_depth = c.ptr_depth // 2
        bank_addr = bits_for(bank_depth)
        banks = []
        for parity, name in ((0, "even"), (1, "odd")):
            mem = Memory(shape=c.ptr_bits, depth=bank_depth, init=self._init[parity::2])
            m.submodules[f"{name}_bank"] = mem
            wr = mem.write_port()
            m.d.comb += [
                wr.en.eq(self.w.en & (self.w.addr[0] == parity)),
                wr.addr.eq(self.w.addr >> 1),
                wr.data.eq(self.w.data),
            ]
            banks.append(mem.read_port())
        even, odd = banks

        advance = Signal()
        addr = Signal(Widths(c).ptr_addr + 1)
        odd_start = Signal()
        value = Signal.like(self.o.payload.value)
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
            addr.eq(self.ptr_base + self.i.payload.index),
            even.addr.eq((addr + 1)[1:1 + bank_addr]),
            odd.addr.eq(addr[1:1 + bank_addr]),
            even.en.eq(advance),
            odd.en.eq(advance),
        ]
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(self.i.valid),
                value.eq(self.i.payload.value),
                odd_start.eq(addr[0]),
            ]
        m.d.comb += self.o.payload.value.eq(value)
        with m.If(odd_start):
            m.d.comb += [self.o.payload.start.eq(odd.data), self.o.payload.end.eq(even.data)]
        with m.Else():
            m.d.comb += [self.o.payload.start.eq(even.data), self.o.payload.end.eq(odd.data)]
        return m
