"""The element-wise unit of an ESE PE: sigmoid, tanh, multiply and add for ``c_t`` and ``h_t``."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from eie.hw.layouts import ConfiguredComponent, Widths, bits_for
from eie.spec.ese import ESEConfig, cell_frac_bits, nonlinearity_rom, unit_frac_bits

__all__ = ["ElementwiseUnit", "saturate"]


def saturate(m, value, bits: int, name: str):
    """``value`` (signed) clamped to ``bits``-bit two's complement, as a new combinational signal."""
    out = Signal(signed(bits), name=name)
    high = value[bits - 1:]
    with m.If(high.all() | ~high.any()):
        m.d.comb += out.eq(value[:bits])
    with m.Elif(value[-1]):
        m.d.comb += out.eq(-(1 << (bits - 1)))
    with m.Else():
        m.d.comb += out.eq((1 << (bits - 1)) - 1)
    return out


class ElementwiseUnit(ConfiguredComponent):
    """Turn one PE's gate pre-activations into the cell states and outputs of its hidden units.

    During a gate write-back the PE's requantiser delivers its gate rows in local order ``4u + q``:
    the gates ``i, f, g, o`` (``q = 0..3``) of unit ``u = 0, 1, ...``, i.e. of hidden unit
    ``k = u·n_pe + pe_index``. The unit computes, exactly as ``docs/numerics.md`` ("LSTM step")::

        i, f, o = SIGMOID[y];  g = TANH[y]                                   (table look-up)
        c_t = sat((f·c_{t-1}·2^(F_N-F_C) + i·g + 2^(2F_N-F_C-1)) >> (2F_N-F_C))
        m_t = sat((o·TANH[c_t] + 2^(shift-1)) >> shift)

    and writes ``c_t`` to its cell-state buffer (``max_units_per_pe`` words, block RAM) and offers
    ``(u, m_t)`` on ``o`` for the units ``k < hidden``.

    Pipeline (one register per stage): E0 the gate's table read (the ROM holds the sigmoid table, then
    the tanh table: ``2^(nl_bits+1)`` words of ``act_bits``, addressed by the gate's top ``nl_bits``
    bits) ∥ the cell-state read at ``i``; E1 the looked-up gate is kept, and at ``o`` the products
    ``f·c`` and ``i·g`` start; C1 the new cell state (round, saturate); C2 its write ∥ the ``tanh(c_t)``
    read (the ROM's second port); C3 ``o·tanh(c_t)``; C4 the rounding shift and saturation into the
    output register. Three multipliers. Latency: ``o`` presented at cycle ``t`` is on ``o`` at
    ``t + LATENCY``; throughput one gate per cycle (a unit every four), no back-pressure.

    Parameters
    ----------
    config : ESEConfig
    pe_index : int

    Attributes
    ----------
    i : In(stream.Signature(signed(act_bits), always_ready=True))
        Gate pre-activations in ``Q(F_G)``, in the order above.
    start : In(1)
        A gate write-back starts: the next gate is ``i`` of unit 0.
    first_step : In(1)
        Sampled with ``start``: ``c_{t-1} = 0`` (the first step of a sequence).
    hidden : In(range(max_width + 1))
        ``H``; units ``k >= H`` are empty slots whose results are dropped.
    shift : In(range(2·F_N + 1))
        The output shift ``s_h`` (``>= 1``).
    o : Out(stream.Signature({unit, value}, always_ready=True))
    busy : Out(1)
        A gate or a unit is in the pipeline.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`ESEConfig`, or ``pe_index`` not an integer.
    ValueError
        ``pe_index`` out of range.
    """

    LATENCY = 6

    def __init__(self, *, config, pe_index):
        if not isinstance(config, ESEConfig):
            raise TypeError(f"config must be an ESEConfig, not {config!r}")
        if not isinstance(pe_index, int) or isinstance(pe_index, bool):
            raise TypeError(f"pe_index must be an integer, not {pe_index!r}")
        if not 0 <= pe_index < config.n_pe:
            raise ValueError(f"pe_index must be in 0..{config.n_pe - 1}, not {pe_index}")
        self._config = config
        self._pe_index = pe_index
        self._unit_bits = bits_for(config.max_units_per_pe)
        act = signed(config.act_bits)
        self._out_layout = data.StructLayout({"unit": unsigned(self._unit_bits), "value": act})
        super().__init__({
            "i": In(stream.Signature(act, always_ready=True)),
            "start": In(1),
            "first_step": In(1),
            "hidden": In(Widths(config).count),
            "shift": In(range(2 * unit_frac_bits(config.act_bits) + 1)),
            "o": Out(stream.Signature(self._out_layout, always_ready=True)),
            "busy": Out(1),
        })

    @property
    def pe_index(self) -> int:
        return self._pe_index

    def elaborate(self, platform):
        m = Module()
        c = self._config
        a, t = c.act_bits, c.nl_bits
        f_n, f_c = unit_frac_bits(a), cell_frac_bits(a)
        act = signed(a)
        w = Widths(c)

        m.submodules.rom = rom = Memory(shape=act, depth=2 << t,
                                        init=[int(v) for v in nonlinearity_rom(a, t)])
        gate_rd = rom.read_port()
        cell_rd = rom.read_port()
        m.submodules.cells = cells = Memory(shape=act, depth=c.max_units_per_pe, init=[])
        c_wr = cells.write_port()
        c_rd = cells.read_port()

        # Position of the next gate: q (i, f, g, o), local unit u, global unit k.
        q = Signal(2)
        u = Signal(self._unit_bits)
        k = Signal(w.scan)
        first = Signal()
        with m.If(self.start):
            m.d.sync += [q.eq(0), u.eq(0), k.eq(self._pe_index), first.eq(self.first_step)]
        with m.Elif(self.i.valid):
            m.d.sync += q.eq(q + 1)
            with m.If(q == 3):
                m.d.sync += [u.eq(u + 1), k.eq(k + c.n_pe)]

        # E0: the gate's table read (tanh for g) and, at i, the cell state's read.
        m.d.comb += [
            gate_rd.addr.eq(Cat(self.i.payload[a - t:], q == 2)),
            c_rd.addr.eq(u),
        ]
        e1_valid, e1_q, e1_u, e1_live = Signal(), Signal(2), Signal(self._unit_bits), Signal()
        m.d.sync += [e1_valid.eq(self.i.valid), e1_q.eq(q), e1_u.eq(u), e1_live.eq(k < self.hidden)]

        # E1: keep i, f, g (and c_{t-1}); at o, start the products.
        gate_i, gate_f, gate_g, c_prev = (Signal(act, name=n) for n in ("gate_i", "gate_f", "gate_g", "c_prev"))
        s1_valid, s1_u, s1_live = Signal(), Signal(self._unit_bits), Signal()
        gate_o1 = Signal(act)
        fc = Signal(signed(2 * a))
        ig = Signal(signed(2 * a))
        m.d.sync += s1_valid.eq(e1_valid & (e1_q == 3))
        with m.If(e1_valid):
            with m.Switch(e1_q):
                with m.Case(0):
                    m.d.sync += [gate_i.eq(gate_rd.data), c_prev.eq(Mux(first, 0, c_rd.data))]
                with m.Case(1):
                    m.d.sync += gate_f.eq(gate_rd.data)
                with m.Case(2):
                    m.d.sync += gate_g.eq(gate_rd.data)
                with m.Case(3):
                    m.d.sync += [s1_u.eq(e1_u), s1_live.eq(e1_live), gate_o1.eq(gate_rd.data),
                                 fc.eq(gate_f * c_prev), ig.eq(gate_i * gate_g)]

        # C1: c_t = sat((f·c·2^(F_N-F_C) + i·g + half) >> (2F_N - F_C)).
        cell_shift = 2 * f_n - f_c
        total = Signal(signed(2 * a + f_n - f_c + 2))
        m.d.comb += total.eq((fc << (f_n - f_c)) + ig + (1 << (cell_shift - 1)))
        c_new = saturate(m, total >> cell_shift, a, "c_new")
        s2_valid, s2_u, s2_live = Signal(), Signal(self._unit_bits), Signal()
        cell2, gate_o2 = Signal(act), Signal(act)
        m.d.sync += [s2_valid.eq(s1_valid), s2_u.eq(s1_u), s2_live.eq(s1_live), cell2.eq(c_new),
                     gate_o2.eq(gate_o1)]

        # C2: write c_t; read tanh(c_t).
        m.d.comb += [
            c_wr.en.eq(s2_valid & s2_live), c_wr.addr.eq(s2_u), c_wr.data.eq(cell2),
            cell_rd.addr.eq(Cat(cell2[a - t:], Const(1, 1))),
        ]
        s3_valid, s3_u, s3_live = Signal(), Signal(self._unit_bits), Signal()
        gate_o3 = Signal(act)
        m.d.sync += [s3_valid.eq(s2_valid), s3_u.eq(s2_u), s3_live.eq(s2_live), gate_o3.eq(gate_o2)]

        # C3: o · tanh(c_t).
        s4_valid, s4_u, s4_live = Signal(), Signal(self._unit_bits), Signal()
        oh = Signal(signed(2 * a))
        m.d.sync += [s4_valid.eq(s3_valid), s4_u.eq(s3_u), s4_live.eq(s3_live), oh.eq(gate_o3 * cell_rd.data)]

        # C4: m_t = sat((o·tanh(c) + 2^(s-1)) >> s), registered on o.
        half = Signal(unsigned(2 * f_n))
        m.d.comb += half.eq((Const(1, 1) << self.shift) >> 1)
        rounded = Signal(signed(2 * a + 1))
        m.d.comb += rounded.eq(oh + half)
        value = saturate(m, rounded >> self.shift, a, "m_new")
        out = Signal(self._out_layout)
        out_valid = Signal()
        m.d.sync += [out_valid.eq(s4_valid & s4_live), out.unit.eq(s4_u), out.value.eq(value)]
        m.d.comb += [
            self.o.valid.eq(out_valid),
            self.o.payload.eq(out),
            self.busy.eq(e1_valid | s1_valid | s2_valid | s3_valid | s4_valid | out_valid),
        ]
        return m
