"""The activation read/write unit of a PE (EIE section III-B)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import stream
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from eie.hw.layouts import ConfiguredComponent, Widths, WritePortSignature, activation_layout, check_config
from eie.hw.pointer_read import check_init

__all__ = ["ActivationReadWriteUnit"]

CANDIDATE_DEPTH = 4
OUT_LATENCY = 2


class ActivationReadWriteUnit(ConfiguredComponent):
    """Source and destination activation register files, the source scanner and the biases.

    Two memories of ``max_rows_per_pe`` activations (synchronous read) swap roles between
    layers (ping-pong): ``select`` names the source. The control swaps them when a layer's
    write-back *starts*, so the write-back writes the next layer's source while that layer is
    already being scanned (the write-back overlaps the next layer's start).

    **Scanner.** ``scan_start`` starts a sequential scan of the source: local address
    ``k = 0, 1, ...`` holds global activation ``j = k·n_pe + pe_index``, and the scan stops
    at ``j >= n_in``. Non-zero activations enter a ``CANDIDATE_DEPTH``-entry FIFO offered to
    the leading non-zero detector on ``cand`` as ``(value, j)``; zeros are dropped, so they cost
    the broadcast nothing. The read data is registered (two cycles from address to candidate);
    a read is issued only while the FIFO has room for it and for the reads in flight, so the
    scanner delivers one candidate per cycle while granted every cycle. While ``limited`` is
    high, only local addresses ``k < limit`` are read (the rows the write-back has written so
    far; it writes them in order).
    ``scan_done`` is high once the scan has finished and every candidate was taken (also before
    the first ``scan_start``). ``n_in`` must be stable while scanning.

    **Other ports.** ``load`` writes input activations into the source (I/O mode); ``dst``
    writes results into the source too (write-back, after the swap; never in the same cycle as
    ``load``); ``out_addr`` reads the source (result of the last layer) with ``out_data`` valid
    ``OUT_LATENCY`` = 2 cycles later,
    while the scanner is idle; ``bias_w`` writes and ``bias_addr`` reads (``bias_data`` one
    cycle later) the bias SRAM (``bias_depth`` × ``acc_bits``).

    Parameters
    ----------
    config : EIEConfig
    pe_index : int
        This PE's number, ``0 .. n_pe-1``.
    bias_init : list of int, optional
        Initial bias memory contents (signed), for bitstreams.

    Attributes
    ----------
    select : In(1)
    scan_start : In(1)
    n_in : In(range(max_width + 1))
    limit : In(range(max_rows_per_pe + 1))
    limited : In(1)
    cand : Out(stream.Signature(activation_layout))
    scan_done : Out(1)
    load, dst : In(WritePortSignature(row, signed(act_bits)))
    out_addr : In(row)
    out_data : Out(signed(act_bits))
    bias_w : In(WritePortSignature(bias address, signed(acc_bits)))
    bias_addr : In(bias address)
    bias_data : Out(signed(acc_bits))

    Raises
    ------
    TypeError
        ``config`` is not an :class:`EIEConfig` or ``pe_index`` not an integer.
    ValueError
        ``pe_index`` is outside ``0 .. n_pe-1`` or ``bias_init`` does not fit.
    """

    def __init__(self, *, config, pe_index, bias_init=None):
        config = check_config(config)
        if not isinstance(pe_index, int) or isinstance(pe_index, bool):
            raise TypeError(f"pe_index must be an integer, not {pe_index!r}")
        if not 0 <= pe_index < config.n_pe:
            raise ValueError(f"pe_index must be in 0..{config.n_pe - 1}, not {pe_index}")
        self._bias_init = check_init("bias init", bias_init, config.bias_depth, config.acc_bits,
                                     signed=True)
        self._config = config
        self._pe_index = pe_index
        w = Widths(config)
        self._layout = activation_layout(config.act_bits, w.act_index)
        act = signed(config.act_bits)
        super().__init__({
            "select": In(1),
            "scan_start": In(1),
            "n_in": In(w.count),
            "limit": In(w.row + 1),
            "limited": In(1),
            "cand": Out(stream.Signature(self._layout)),
            "scan_done": Out(1),
            "load": In(WritePortSignature(w.row, act)),
            "dst": In(WritePortSignature(w.row, act)),
            "out_addr": In(w.row),
            "out_data": Out(act),
            "bias_w": In(WritePortSignature(w.bias_addr, signed(config.acc_bits))),
            "bias_addr": In(w.bias_addr),
            "bias_data": Out(signed(config.acc_bits)),
        })

    @property
    def pe_index(self):
        return self._pe_index

    def elaborate(self, platform):
        m = Module()
        c = self._config
        w = Widths(c)

        # Scanner state. A read is in flight for two cycles: the SRAM read and the data register.
        active = Signal()
        j = Signal(w.scan)
        k = Signal(w.row + 1)
        read_valid, data_valid = Signal(), Signal()
        read_j, data_j = Signal(w.act_index), Signal(w.act_index)
        m.submodules.cands = cands = SyncFIFO(width=self._layout.size, depth=CANDIDATE_DEPTH)
        issue = Signal()
        m.d.comb += issue.eq(active & (cands.level + read_valid + data_valid < CANDIDATE_DEPTH)
                             & (~self.limited | (k < self.limit)))
        m.d.sync += [read_valid.eq(issue), read_j.eq(j),
                     data_valid.eq(read_valid), data_j.eq(read_j)]
        with m.If(self.scan_start):
            m.d.sync += [active.eq(self._pe_index < self.n_in), j.eq(self._pe_index), k.eq(0)]
        with m.Elif(issue):
            m.d.sync += [active.eq(j + c.n_pe < self.n_in), j.eq(j + c.n_pe), k.eq(k + 1)]

        # The two register files; ``select`` is the source.
        read_addr = Signal(w.row)
        m.d.comb += read_addr.eq(Mux(active, k, self.out_addr))
        source_data = Signal(signed(c.act_bits))
        reads = []
        for n in range(2):
            mem = Memory(shape=signed(c.act_bits), depth=c.max_rows_per_pe, init=[])
            m.submodules[f"regfile{n}"] = mem
            wr = mem.write_port()
            rd = mem.read_port()
            m.d.comb += [
                wr.en.eq((self.select == n) & (self.load.en | self.dst.en)),
                wr.addr.eq(Mux(self.load.en, self.load.addr, self.dst.addr)),
                wr.data.eq(Mux(self.load.en, self.load.data, self.dst.data)),
                rd.addr.eq(read_addr),
            ]
            reads.append(rd.data)
        # Registered: block-RAM outputs go straight into a register.
        m.d.sync += source_data.eq(Mux(self.select, reads[1], reads[0]))
        m.d.comb += self.out_data.eq(source_data)

        # Candidates: non-zero activations only.
        cand_in = Signal(self._layout)
        m.d.comb += [
            cand_in.value.eq(source_data),
            cand_in.index.eq(data_j),
            cands.w_data.eq(cand_in),
            cands.w_en.eq(data_valid & (source_data != 0)),
            self.cand.payload.eq(cands.r_data),
            self.cand.valid.eq(cands.r_rdy),
            cands.r_en.eq(self.cand.ready),
            self.scan_done.eq(~active & ~read_valid & ~data_valid & (cands.level == 0)),
        ]

        # Biases.
        m.submodules.bias = bias = Memory(shape=signed(c.acc_bits), depth=c.bias_depth,
                                          init=self._bias_init)
        bias_wr = bias.write_port()
        bias_rd = bias.read_port()
        m.d.comb += [
            bias_wr.en.eq(self.bias_w.en), bias_wr.addr.eq(self.bias_w.addr),
            bias_wr.data.eq(self.bias_w.data),
            bias_rd.addr.eq(self.bias_addr),
            self.bias_data.eq(bias_rd.data),
        ]
        return m
