"""The write-back requantiser (``docs/numerics.md``, "One layer")."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from eie.hw.layouts import ConfiguredComponent, Widths, check_config

__all__ = ["Requantizer", "funnel"]


def funnel(m: Module, bits, shift, width: int, name: str) -> Signal:
    """``bits[shift : shift + width]`` as a logarithmic shifter that keeps only the bits it needs.

    ``bits`` must hold at least ``width + 2^len(shift) - 1`` bits. Shift bit ``b`` (most significant
    first) is one row of ``width + 2^b - 1`` two-input multiplexers, so the whole is about
    ``width · len(shift) + 2^len(shift)`` multiplexers instead of a full-width barrel shifter.
    """
    cur = bits
    for b in reversed(range(len(shift))):
        step = 1 << b
        need = width + step - 1
        level = Signal(need, name=f"{name}_{b}")
        m.d.comb += level.eq(Mux(shift[b], cur[step:step + need], cur[:need]))
        cur = level
    return cur[:width]


class Requantizer(ConfiguredComponent):
    """Bias, round half up, shift, saturate and optionally ReLU one accumulator per cycle.

    Exactly ``docs/numerics.md``::

        t = acc + bias
        r = (t + 2^(s-1)) >> s    if s > 0   (arithmetic shift: ties go towards +inf)
          = t                     if s = 0
        y = sat_A(r);  y = max(y, 0) if relu

    computed without a full-width barrel shifter. With ``u = (2t) >> s``, ``r = (u + 1) >> 1`` for
    every ``s >= 0`` (``u = floor(t / 2^(s-1))`` and ``floor((floor(x) + 1) / 2) = floor((x + 1) / 2)``),
    and ``r`` fits ``A`` bits exactly when ``u`` fits ``A + 1`` bits and ``u != 2^A - 1``; below that
    range ``r`` saturates to the minimum, above it to the maximum. So only the ``A + 1`` bits of ``2t``
    from position ``s`` are selected (a funnel of ``A + 1`` multiplexers), and whether everything above
    them is a copy of the sign is one flag of a precomputed suffix, selected the same way.

    Two register stages: S1 adds the bias in ``acc_bits + 1`` bits (no wrap for any operands); S2
    selects, increments, saturates and applies ReLU.

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
        a = c.act_bits

        # S1: t = acc + bias, one bit wider than the operands.
        valid1 = Signal()
        t = Signal(signed(c.acc_bits + 1))
        shift1 = Signal.like(self.shift)
        relu1 = Signal()
        m.d.sync += [
            valid1.eq(self.i.valid),
            t.eq(self.i.payload.acc + self.i.payload.bias),
            shift1.eq(self.shift),
            relu1.eq(self.relu),
        ]

        # S2: u = (2t) >> s, the A + 1 bits from position s of 2t, sign-extended past the top.
        sign = t[-1]
        doubled = Cat(Const(0, 1), t)                               # 2t, acc_bits + 2 bits
        extended = Cat(doubled, sign.replicate(c.max_shift + a + 1))
        u = Signal(signed(a + 1))
        m.d.comb += u.eq(funnel(m, extended, shift1, a + 1, "u"))
        # fits[p]: bits p.. of 2t are all copies of the sign; u fits A + 1 bits iff fits[s + A].
        same = Signal(len(doubled))
        m.d.comb += same.eq(Cat(*(doubled[i] == sign for i in range(len(doubled)))))
        suffix = Signal(len(doubled) + 1)
        m.d.comb += suffix[-1].eq(1)
        for i in reversed(range(len(doubled))):
            m.d.comb += suffix[i].eq(same[i] & suffix[i + 1])
        padded = Cat(suffix[a:], Const(1, 1).replicate(c.max_shift + 1))
        fits = funnel(m, padded, shift1, 1, "fits")
        rounded = Signal(signed(a + 2))
        m.d.comb += rounded.eq(u + 1)
        top = u == (1 << a) - 1                                     # r would be 2^(A-1): one too many
        y = Signal(signed(a))
        with m.If(relu1 & sign):
            m.d.comb += y.eq(0)
        with m.Elif(fits & ~top):
            m.d.comb += y.eq(rounded[1:a + 1])
        with m.Elif(sign):
            m.d.comb += y.eq(c.act_min)
        with m.Else():
            m.d.comb += y.eq(c.act_max)
        valid2 = Signal()
        out2 = Signal(signed(a))
        m.d.sync += [valid2.eq(valid1), out2.eq(y)]
        m.d.comb += [self.o.valid.eq(valid2), self.o.payload.eq(out2)]
        return m
