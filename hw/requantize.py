"""The write-back requantiser (``docs/numerics.md``, "One layer")."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from eie.hw.layouts import ConfiguredComponent, Widths, check_config

__all__ = ["Requantizer"]


class Requantizer(ConfiguredComponent):
    """Bias, round half up, shift, saturate and optionally ReLU one accumulator per cycle.

    Exactly ``docs/numerics.md``::

        t = acc + bias
        r = (t + 2^(s-1)) >> s    if s > 0   (arithmetic shift: ties go towards +inf)
          = t                     if s = 0
        y = sat_A(r);  y = max(y, 0) if relu

    Two register stages: S1 computes ``t + 2^(s-1)`` in ``acc_bits + 2`` bits (the sum of two
    ``acc_bits`` operands and a positive constant below ``2^(acc_bits-1)`` cannot wrap), S2 the
    shift, saturation and ReLU.

    Latency ``LATENCY`` = 2 cycles, throughput one per cycle, no back-pressure.

    Parameters
    ----------
    config : EIEConfig

    Attributes
    ----------
    i : In(stream.Signature({acc, bias}, always_ready=True))
        Accumulator and bias, both ``signed(acc_bits)``.
    shift : In(range(max_shift + 1))
        The layer's shift ``s``, sampled with ``i``.
    relu : In(1)
        The layer's ReLU flag, sampled with ``i``.
    o : Out(stream.Signature(signed(act_bits), always_ready=True))
        The output activation.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`EIEConfig`.
    """

    LATENCY = 2

    def __init__(self, *, config):
        config = check_config(config)
        self._config = config
        layout = data.StructLayout({"acc": signed(config.acc_bits),
                                    "bias": signed(config.acc_bits)})
        super().__init__({
            "i": In(stream.Signature(layout, always_ready=True)),
            "shift": In(Widths(config).shift),
            "relu": In(1),
            "o": Out(stream.Signature(signed(config.act_bits), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        c = self._config
        wide = c.acc_bits + 2

        # S1: t + 2^(s-1) (the rounding addend is 0 when s = 0).
        half = Signal(unsigned(wide - 1))
        m.d.comb += half.eq((Const(1, 1) << self.shift) >> 1)
        valid1 = Signal()
        rounded1 = Signal(signed(wide))
        shift1 = Signal.like(self.shift)
        relu1 = Signal()
        m.d.sync += [
            valid1.eq(self.i.valid),
            rounded1.eq(self.i.payload.acc + self.i.payload.bias + half),
            shift1.eq(self.shift),
            relu1.eq(self.relu),
        ]

        # S2: arithmetic shift, saturation, ReLU.
        shifted = Signal(signed(wide))
        m.d.comb += shifted.eq(rounded1 >> shift1)
        y = Signal(signed(c.act_bits))
        # sat_A without wide comparators: the result fits when its bits from A-1 up are all
        # copies of the sign.
        negative = shifted[-1]
        high = shifted[c.act_bits - 1:]
        with m.If(relu1 & negative):
            m.d.comb += y.eq(0)
        with m.Elif(high.all() | ~high.any()):
            m.d.comb += y.eq(shifted[:c.act_bits])
        with m.Elif(negative):
            m.d.comb += y.eq(c.act_min)
        with m.Else():
            m.d.comb += y.eq(c.act_max)
        valid2 = Signal()
        out2 = Signal(signed(c.act_bits))
        m.d.sync += [valid2.eq(valid1), out2.eq(y)]
        m.d.comb += [self.o.valid.eq(valid2), self.o.payload.eq(out2)]
        return m
