"""The arithmetic unit of a PE (EIE section III-B)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from eie.hw.layouts import ConfiguredComponent, Widths, check_config, entry_layout

__all__ = ["ArithmeticUnit"]


class ArithmeticUnit(ConfiguredComponent):
    """Decode, multiply and accumulate one sparse-matrix entry per cycle.

    A fixed-latency pipeline that never stalls:

    ====== ==========================================================================
    stage  work
    ====== ==========================================================================
    S0     codebook decode ``w = codebook[v]`` ∥ address accumulation
           ``row = prev + z + 1`` (``prev = -1`` when ``first``)
    S1     multiply ``p = w · a`` (registered inputs and output: one DSP block)
           ∥ accumulator SRAM read of ``row`` (synchronous, not transparent)
    S2     the read data and the product are registered
    S3     bypass, ``acc[row] ← acc + p`` (write)
    ====== ==========================================================================

    Hazard bypass: the read issued in S1 misses the writes made in that cycle and the next
    one, i.e. those of the two entries ahead of it. S3 keeps the last two writes
    ``(row, value, valid)`` and uses the most recent one whose row matches instead of the read
    data; older writes have reached the SRAM before the read. The row comparisons are made
    one cycle early (in S2, against the rows that will be the history in S3), so S3 is a
    multiplexer and the adder.

    Clear: ``clear`` sends a row through the same pipeline; its S3 outputs the accumulator's
    value (bypass included) on ``acc`` and writes 0 back, so clearing is the write-back read.

    Latency: an entry's write lands at the end of cycle ``t + 3`` for an entry presented at
    ``t``; a clear presented at ``t`` appears on ``acc`` at ``t + 4`` (``CLEAR_LATENCY``).
    Throughput: one entry or clear per cycle. Back-pressure: none. Padding entries
    (``v = 0``, ``codebook[0] = 0``) add zero. ``i`` and ``clear`` must not be valid in the
    same cycle (the entry wins).

    Parameters
    ----------
    config : EIEConfig

    Attributes
    ----------
    i : In(stream.Signature(entry_layout, always_ready=True))
        Entries ``(v, z, first, act)`` from the sparse-matrix read unit.
    clear : In(stream.Signature(row, always_ready=True))
        Rows to read out and clear.
    acc : Out(stream.Signature({row, value}, always_ready=True))
        The cleared rows' accumulator values.
    codebook : In(data.ArrayLayout(signed(act_bits), 2**weight_bits))
        The active layer's codebook (shared registers of the control unit).
    busy : Out(1)
        Anything is in the pipeline.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`EIEConfig`.
    """

    WRITE_LATENCY = 3
    CLEAR_LATENCY = 4

    def __init__(self, *, config):
        config = check_config(config)
        self._config = config
        w = Widths(config)
        self._acc_layout = data.StructLayout({
            "row": unsigned(w.row), "value": signed(config.acc_bits)})
        super().__init__({
            "i": In(stream.Signature(entry_layout(config), always_ready=True)),
            "clear": In(stream.Signature(unsigned(w.row), always_ready=True)),
            "acc": Out(stream.Signature(self._acc_layout, always_ready=True)),
            "codebook": In(data.ArrayLayout(signed(config.act_bits), config.codebook_size)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = self._config
        row_w = Widths(c).row
        e = self.i.payload

        # S0: codebook decode and address accumulation.
        prev = Signal(row_w)
        row0 = Signal(row_w)
        with m.If(e.first):
            m.d.comb += row0.eq(e.z)
        with m.Else():
            m.d.comb += row0.eq(prev + e.z + 1)
        with m.If(self.i.valid):
            m.d.sync += prev.eq(row0)
        valid1, clear1, row1 = Signal(), Signal(), Signal(row_w)
        weight1, act1 = Signal(signed(c.act_bits)), Signal(signed(c.act_bits))
        is_clear = self.clear.valid & ~self.i.valid
        m.d.sync += [
            valid1.eq(self.i.valid | is_clear),
            clear1.eq(is_clear),
            row1.eq(Mux(self.i.valid, row0, self.clear.payload)),
            weight1.eq(self.codebook[e.v]),
            act1.eq(e.act),
        ]

        # S1: multiply, accumulator read.
        m.submodules.acc_mem = mem = Memory(shape=signed(c.acc_bits), depth=c.max_rows_per_pe,
                                            init=[])
        rd = mem.read_port()
        wr = mem.write_port()
        m.d.comb += rd.addr.eq(row1)
        valid2, clear2, row2 = Signal(), Signal(), Signal(row_w)
        product2 = Signal(signed(2 * c.act_bits))
        m.d.sync += [
            valid2.eq(valid1), clear2.eq(clear1), row2.eq(row1),
            product2.eq(weight1 * act1),
        ]

        # S2: register the read data with the product. The bypass decision is made here too:
        # in S3 the last two writes are the one S3 makes now and the one before (``history``).
        valid3, clear3, row3 = Signal(), Signal(), Signal(row_w)
        product3 = Signal(signed(2 * c.act_bits))
        read3 = Signal(signed(c.acc_bits))
        history = [(Signal(name=f"hist{k}_valid"), Signal(row_w, name=f"hist{k}_row"),
                    Signal(signed(c.acc_bits), name=f"hist{k}_value")) for k in range(2)]
        forward = [Signal(name=f"forward{k}") for k in range(2)]
        m.d.sync += [
            valid3.eq(valid2), clear3.eq(clear2), row3.eq(row2),
            product3.eq(product2), read3.eq(rd.data),
            forward[0].eq(valid3 & (row3 == row2)),
            forward[1].eq(history[0][0] & (history[0][1] == row2)),
        ]

        # S3: bypass from the last two writes (most recent first), add, write.
        current = Signal(signed(c.acc_bits))
        with m.If(forward[0]):
            m.d.comb += current.eq(history[0][2])
        with m.Elif(forward[1]):
            m.d.comb += current.eq(history[1][2])
        with m.Else():
            m.d.comb += current.eq(read3)
        written = Signal(signed(c.acc_bits))
        m.d.comb += [
            written.eq(Mux(clear3, 0, current + product3)),
            wr.en.eq(valid3), wr.addr.eq(row3), wr.data.eq(written),
        ]
        m.d.sync += [
            history[0][0].eq(valid3), history[0][1].eq(row3), history[0][2].eq(written),
            history[1][0].eq(history[0][0]), history[1][1].eq(history[0][1]),
            history[1][2].eq(history[0][2]),
        ]

        # Clear output.
        acc_valid = Signal()
        acc_out = Signal(self._acc_layout)
        m.d.sync += [
            acc_valid.eq(valid3 & clear3),
            acc_out.row.eq(row3),
            acc_out.value.eq(current),
        ]
        m.d.comb += [
            self.acc.valid.eq(acc_valid),
            self.acc.payload.eq(acc_out),
            self.busy.eq(valid1 | valid2 | valid3 | acc_valid),
        ]
        return m
