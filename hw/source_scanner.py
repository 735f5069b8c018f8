"""The source scanner of a PE: one PE's share of a vector, non-zeros only (EIE section III-A)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import stream
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from eie.hw.layouts import ConfiguredComponent, Widths, activation_layout, check_config

__all__ = ["SourceScanner", "CANDIDATE_DEPTH", "READ_LATENCY"]

CANDIDATE_DEPTH = 4
#: Cycles from a read (``read`` high) to its word on ``data``: the memory's read and the owner's register.
READ_LATENCY = 2


class SourceScanner(ConfiguredComponent):
    """Walk the PE's elements ``j = k·n_pe + pe_index < n_in`` of a vector and offer the non-zero ones.

    The owner keeps the vector in a memory with a synchronous read port whose output it registers
    (block RAM, then a register): it reads local index ``addr`` (plus its own base address) whenever
    ``read`` is high and hands the word back on ``data`` ``READ_LATENCY`` cycles later. Non-zero
    words enter a ``CANDIDATE_DEPTH``-entry FIFO offered on ``cand`` as ``(value, j)``; zeros are
    dropped, so they cost the broadcast nothing. A read is issued only while the FIFO has room for it
    and for the reads in flight, so one candidate per cycle leaves while ``cand`` is granted every
    cycle. This is the scanner of :class:`~eie.hw.activation_rw.ActivationReadWriteUnit` as a
    component of its own, so that the ESE activation store, which scans several vectors of one
    memory, uses it too.

    ``start`` begins a scan (``n_in`` must then stay stable until it is done). ``done`` is high once
    the scan finished and every candidate was taken (also before the first scan).

    Parameters
    ----------
    config : EIEConfig
    pe_index : int
        This PE's number, ``0 .. n_pe-1``.

    Attributes
    ----------
    start : In(1)
    n_in : In(range(max_width + 1))
    read : Out(1)
        A read of local index ``addr`` is issued in this cycle.
    addr : Out(range(max_rows_per_pe + 1))
    data : In(signed(act_bits))
        The word read ``READ_LATENCY`` cycles earlier.
    cand : Out(stream.Signature(activation_layout))
    done : Out(1)

    Raises
    ------
    TypeError
        ``config`` is not an :class:`EIEConfig` or ``pe_index`` not an integer.
    ValueError
        ``pe_index`` is outside ``0 .. n_pe-1``.
    """

    def __init__(self, *, config, pe_index):
        config = check_config(config)
        if not isinstance(pe_index, int) or isinstance(pe_index, bool):
            raise TypeError(f"pe_index must be an integer, not {pe_index!r}")
        if not 0 <= pe_index < config.n_pe:
            raise ValueError(f"pe_index must be in 0..{config.n_pe - 1}, not {pe_index}")
        self._config = config
        self._pe_index = pe_index
        w = Widths(config)
        self._layout = activation_layout(config.act_bits, w.act_index)
        super().__init__({
            "start": In(1),
            "n_in": In(w.count),
            "read": Out(1),
            "addr": Out(w.row + 1),
            "data": In(signed(config.act_bits)),
            "cand": Out(stream.Signature(self._layout)),
            "done": Out(1),
        })

    @property
    def pe_index(self) -> int:
        return self._pe_index

    def elaborate(self, platform):
        m = Module()
        c = self._config
        w = Widths(c)
        active = Signal()
        j = Signal(w.scan)
        k = Signal(w.row + 1)
        read_valid, data_valid = Signal(), Signal()
        read_j, data_j = Signal(w.act_index), Signal(w.act_index)
        m.submodules.cands = cands = SyncFIFO(width=self._layout.size, depth=CANDIDATE_DEPTH)
        issue = Signal()
        m.d.comb += issue.eq(active & (cands.level + read_valid + data_valid < CANDIDATE_DEPTH))
        m.d.sync += [read_valid.eq(issue), read_j.eq(j), data_valid.eq(read_valid), data_j.eq(read_j)]
        with m.If(self.start):
            m.d.sync += [active.eq(self._pe_index < self.n_in), j.eq(self._pe_index), k.eq(0)]
        with m.Elif(issue):
            m.d.sync += [active.eq(j + c.n_pe < self.n_in), j.eq(j + c.n_pe), k.eq(k + 1)]

        cand_in = Signal(self._layout)
        m.d.comb += [
            self.read.eq(issue),
            self.addr.eq(k),
            cand_in.value.eq(self.data),
            cand_in.index.eq(data_j),
            cands.w_data.eq(cand_in),
            cands.w_en.eq(data_valid & (self.data != 0)),
            self.cand.payload.eq(cands.r_data),
            self.cand.valid.eq(cands.r_rdy),
            cands.r_en.eq(self.cand.ready),
            self.done.eq(~active & ~read_valid & ~data_valid & (cands.level == 0)),
        ]
        return m
