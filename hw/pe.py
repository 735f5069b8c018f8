"""One EIE processing element (EIE section III-B, figure 4)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from eie.hw.activation_rw import ActivationReadWriteUnit
from eie.hw.arithmetic_unit import ArithmeticUnit
from eie.hw.layouts import (
    ConfiguredComponent,
    Widths,
    WritePortSignature,
    activation_layout,
    check_config,
    layer_layout,
)
from eie.hw.pointer_read import PointerReadUnit
from eie.hw.requantize import Requantizer
from eie.hw.sparse_matrix_read import SparseMatrixReadUnit

__all__ = ["ProcessingElement", "check_images"]


def check_images(config, images):
    """Refuse images made for another configuration (ValueError naming both hashes)."""
    if images is None:
        return
    theirs, ours = images.config.config_hash(), config.config_hash()
    if theirs != ours:
        raise ValueError(f"images were made for configuration {theirs} but the hardware "
                         f"configuration is {ours}")


def delay(m, value, cycles, name):
    """``value`` delayed by ``cycles`` registers (``cycles >= 0``)."""
    for n in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{n + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


class ProcessingElement(ConfiguredComponent):
    """An EIE PE: pointer read → queue of column jobs → sparse-matrix read → arithmetic unit, and
    the activation read/write unit with the requantiser on the write-back path.

    **Compute.** Each broadcast activation ``(a_j, j)`` (``act``) is looked up in the pointer
    SRAM at once (one per cycle, the broadcast rate); a non-empty column becomes a job in the
    queue (``queue_depth`` jobs, inside the sparse-matrix read unit); empty columns are dropped
    before it, so they take neither a queue slot nor a cycle of the PE. (In EIE the queue holds
    activations before the pointer read, so every column, empty or not, costs the PE a cycle:
    with dense inputs and few rows per PE, such as NT-We, that front end runs exactly at the
    broadcast rate and its queue never drains.) ``act.ready`` is low while the queue and the
    registers before it are full. The jobs' entries stream into the arithmetic unit at one MAC
    per cycle (no bubbles between columns; padding entries folded into the next entry, so they
    cost no MAC slot unless two come together). Meanwhile the source scanner offers this PE's
    non-zero activations of the layer on ``cand``.

    **Write-back** (``wb_start``, after ``busy`` fell, with ``select`` already naming the next
    layer's source): local rows ``r = 0, 1, ...`` with global row ``r·n_pe + pe_index <
    wb_layer.n_out`` are cleared through the arithmetic unit; each cleared accumulator meets its
    bias (``wb_layer.bias_base + r``) in the requantiser and the result is written to the source
    register file at ``r``. One row per cycle; the last write lands
    ``ArithmeticUnit.CLEAR_LATENCY + Requantizer.LATENCY + 1`` cycles after the last row is
    issued. With ``wb_clear_only`` the sweep covers all ``max_rows_per_pe`` rows and writes
    nothing (used after reset).

    **Overlap.** The next layer may start while the write-back runs: its scan reads only rows
    already written (they are written in order), its activations are looked up and queued, but
    no entry is issued to the arithmetic unit until the sweep has issued its last row (nor while
    ``hold`` is high).

    Parameters
    ----------
    config : EIEConfig
    pe_index : int
        ``0 .. n_pe-1``; the PE holds rows ``i`` with ``i % n_pe == pe_index``.
    images : eie.spec.image.Images, optional
        Initialise this PE's pointer, sparse-matrix and bias memories from the images.

    Attributes
    ----------
    act : In(stream.Signature(activation_layout))
        Broadcast activations; ``ready`` depends on registers only.
    cand : Out(stream.Signature(activation_layout))
        This PE's non-zero source activations, for the leading non-zero detector.
    codebook : In(data.ArrayLayout(signed(act_bits), 2**weight_bits))
        The active layer's codebook.
    layer : In(layer_layout)
        The active layer's parameters; stable during a layer.
    wb_layer : In(layer_layout)
        The parameters of the layer being written back; stable during its write-back.
    hold : In(1)
        Issue no entry to the arithmetic unit (the shared codebook is being loaded).
    select : In(1)
        Which register file is the source.
    scan_start, wb_start, wb_clear_only : In(1)
        Start the source scan / the write-back (pulses; ``wb_clear_only`` sampled with
        ``wb_start``).
    ptr_w, mat_w, bias_w, load : In(WritePortSignature)
        I/O-mode writes: pointer entry, sparse-matrix word, bias, input activation (into the
        source register file at local address ``addr``).
    out_addr : In(row)
        Source register file read address; ``out_data`` ``OUT_LATENCY`` (2) cycles later.
    out_data : Out(signed(act_bits))
    scan_done : Out(1)
        The scan has finished and every candidate was taken.
    busy : Out(1)
        A pointer lookup, job, entry, MAC or write-back is in flight.
    mac : Out(1)
        A (non-padding) entry enters the arithmetic unit in this cycle (a tap for utilisation
        counters).

    Raises
    ------
    TypeError
        ``config`` is not an :class:`EIEConfig` or ``pe_index`` not an integer.
    ValueError
        ``pe_index`` out of range, or images made for another configuration.
    """

    def __init__(self, *, config, pe_index, images=None):
        config = check_config(config)
        if not isinstance(pe_index, int) or isinstance(pe_index, bool):
            raise TypeError(f"pe_index must be an integer, not {pe_index!r}")
        if not 0 <= pe_index < config.n_pe:
            raise ValueError(f"pe_index must be in 0..{config.n_pe - 1}, not {pe_index}")
        check_images(config, images)
        self._config = config
        self._pe_index = pe_index
        self._images = images
        w = Widths(config)
        act_layout = activation_layout(config.act_bits, w.act_index)
        act = signed(config.act_bits)
        super().__init__({
            "act": In(stream.Signature(act_layout)),
            "cand": Out(stream.Signature(act_layout)),
            "codebook": In(data.ArrayLayout(act, config.codebook_size)),
            "layer": In(layer_layout(config)),
            "wb_layer": In(layer_layout(config)),
            "hold": In(1),
            "select": In(1),
            "scan_start": In(1),
            "wb_start": In(1),
            "wb_clear_only": In(1),
            "ptr_w": In(WritePortSignature(w.ptr_addr, config.ptr_bits)),
            "mat_w": In(WritePortSignature(w.mat_addr, config.word_bits)),
            "bias_w": In(WritePortSignature(w.bias_addr, signed(config.acc_bits))),
            "load": In(WritePortSignature(w.row, act)),
            "out_addr": In(w.row),
            "out_data": Out(act),
            "scan_done": Out(1),
            "busy": Out(1),
            "mac": Out(1),
        })

    @property
    def pe_index(self):
        return self._pe_index

    def elaborate(self, platform):
        m = Module()
        c = self._config
        p = self._pe_index
        w = Widths(c)
        img = self._images
        ptr_init = None if img is None else img.ptr[p]
        mat_init = None if img is None else img.mat[p]
        bias_init = None if img is None else img.bias[p]

        m.submodules.pointer_read = ptr = PointerReadUnit(config=c, init=ptr_init)
        m.submodules.matrix_read = mat = SparseMatrixReadUnit(config=c, init=mat_init,
                                                              job_depth=c.queue_depth)
        m.submodules.arithmetic = au = ArithmeticUnit(config=c)
        m.submodules.activation_rw = arw = ActivationReadWriteUnit(
            config=c, pe_index=p, bias_init=bias_init)
        m.submodules.requantize = rq = Requantizer(config=c)

        wiring.connect(m, wiring.flipped(self.act), ptr.i)
        wiring.connect(m, ptr.o, mat.job)
        wiring.connect(m, mat.o, au.i)
        wiring.connect(m, arw.cand, wiring.flipped(self.cand))
        wiring.connect(m, wiring.flipped(self.ptr_w), ptr.w)
        wiring.connect(m, wiring.flipped(self.mat_w), mat.w)
        wiring.connect(m, wiring.flipped(self.bias_w), arw.bias_w)
        wiring.connect(m, wiring.flipped(self.load), arw.load)
        m.d.comb += [
            ptr.ptr_base.eq(self.layer.ptr_base),
            au.codebook.eq(self.codebook),
            arw.select.eq(self.select),
            arw.scan_start.eq(self.scan_start),
            arw.n_in.eq(self.layer.n_in),
            arw.out_addr.eq(self.out_addr),
            self.out_data.eq(arw.out_data),
            self.scan_done.eq(arw.scan_done),
        ]

        # Write-back sequencer: one row per cycle into the arithmetic unit's clear port.
        wb_active = Signal()
        wb_row = Signal(w.row + 1)
        wb_global = Signal(w.scan)
        clear_only = Signal()
        more = Signal()
        issue = Signal()
        m.d.comb += [
            more.eq(Mux(clear_only, wb_row < c.max_rows_per_pe, wb_global < self.wb_layer.n_out)),
            issue.eq(wb_active & more),
            au.clear.valid.eq(issue),
            au.clear.payload.eq(wb_row),
        ]
        with m.If(self.wb_start):
            m.d.sync += [wb_active.eq(1), wb_row.eq(0), wb_global.eq(p),
                         clear_only.eq(self.wb_clear_only)]
        with m.Elif(issue):
            m.d.sync += [wb_row.eq(wb_row + 1), wb_global.eq(wb_global + c.n_pe)]
        with m.Elif(wb_active):
            m.d.sync += wb_active.eq(0)

        # The bias read is issued so that its data, registered once more (the block RAM has no
        # output register), meets the cleared accumulator.
        bias_row = delay(m, au.clear.payload, ArithmeticUnit.CLEAR_LATENCY - 2, "bias_row")
        bias = Signal(signed(c.acc_bits))
        m.d.sync += bias.eq(arw.bias_data)
        m.d.comb += [
            arw.bias_addr.eq(self.wb_layer.bias_base + bias_row),
            rq.i.valid.eq(au.acc.valid),
            rq.i.payload.acc.eq(au.acc.payload.value),
            rq.i.payload.bias.eq(bias),
            rq.shift.eq(self.wb_layer.shift),
            rq.relu.eq(self.wb_layer.relu),
        ]
        rq_valid = [au.acc.valid]
        for n in range(Requantizer.LATENCY):
            rq_valid.append(delay(m, rq_valid[-1], 1, f"rq_valid{n}"))
        dst_row = delay(m, au.acc.payload.row, Requantizer.LATENCY, "dst_row")
        m.d.comb += [
            arw.dst.en.eq(rq.o.valid & ~clear_only),
            arw.dst.addr.eq(dst_row),
            arw.dst.data.eq(rq.o.payload),
        ]

        # Rows written so far; while the write-back is in flight the scan reads only those.
        clears = [issue]
        for n in range(ArithmeticUnit.CLEAR_LATENCY - 1):
            clears.append(delay(m, clears[-1], 1, f"clear_flight{n}"))
        written = Signal(w.row + 1)
        filling = Signal()
        m.d.comb += filling.eq(wb_active | Cat(*clears[1:]).any() | Cat(*rq_valid).any())
        with m.If(self.wb_start):
            m.d.sync += written.eq(0)
        with m.Elif(arw.dst.en):
            m.d.sync += written.eq(written + 1)
        m.d.comb += [arw.limit.eq(written), arw.limited.eq(filling),
                     mat.hold.eq(self.hold | wb_active)]

        m.d.comb += self.mac.eq(mat.o.valid)
        m.d.comb += self.busy.eq(
            ptr.o.valid | mat.busy | au.busy | wb_active
            | Cat(*rq_valid[1:]).any())
        return m
