"""What every harness shares: the small configuration, the clock, free inputs, the stream rules."""

from __future__ import annotations

from amaranth.asserts import AnySeq
from amaranth.hdl import Assume, ClockDomain, Elaboratable, Module, Signal, Value

from eie.spec.config import EIEConfig

__all__ = ["SMALL", "Harness", "stream_rules", "free_source"]

#: A configuration small enough for the solver, with every width above one bit.
SMALL = EIEConfig(n_pe=2, weight_bits=2, index_bits=2, act_bits=4, acc_bits=10, entries_per_word=2,
                  ptr_bits=5, mat_depth=8, ptr_depth=8, max_rows_per_pe=4, bias_depth=8,
                  max_layers=2, max_shift=4, queue_depth=2)


class Harness(Elaboratable):
    """Base of the harnesses: a ``sync`` domain whose clock is the only port (sby's global clock;
    an undriven clock would be a constant and every register would stay at its initial value)
    and that is never reset; ``mutate`` turns the unit under proof into a broken design."""

    def __init__(self, mutate=None):
        self.mutate = mutate
        self.cd_sync = ClockDomain("sync")

    @property
    def ports(self):
        return [self.cd_sync.clk]

    def module(self, dut) -> Module:
        m = Module()
        m.domains.sync = self.cd_sync
        m.d.comb += self.cd_sync.rst.eq(0)
        m.submodules.dut = self.mutate(dut) if self.mutate else dut
        return m


def stream_rules(m, stream, kind, name):
    """``kind`` (Assume or Assert) the valid/ready rules of ``stream``: while ``valid & ~ready``,
    ``valid`` stays high and ``payload`` stays the same in the next cycle."""
    payload = Value.cast(stream.payload)
    waiting = Signal(name=f"{name}_waiting")
    held = Signal(len(payload), name=f"{name}_held")
    m.d.sync += [waiting.eq(stream.valid & ~stream.ready), held.eq(payload)]
    with m.If(waiting):
        m.d.comb += kind(stream.valid, f"{name}: valid withdrawn before ready", src_loc_at=1)
        m.d.comb += kind(payload == held, f"{name}: payload changed while waiting", src_loc_at=1)


def free_source(m, stream, name):
    """Drive ``stream`` (an input of the design) with any beats that follow the rules."""
    payload = Value.cast(stream.payload)
    m.d.comb += [stream.valid.eq(AnySeq(1)), payload.eq(AnySeq(len(payload)))]
    stream_rules(m, stream, Assume, name)
