"""One ESE processing element: the EIE PE's units, two accumulator banks and the element-wise unit."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from eie.hw.activation_queue import ActivationQueue
from eie.hw.activation_store import ActivationStore
from eie.hw.arithmetic_unit import ArithmeticUnit
from eie.hw.elementwise import ElementwiseUnit
from eie.hw.layouts import ConfiguredComponent, Widths, WritePortSignature, activation_layout, bits_for
from eie.hw.pe import delay
from eie.hw.pointer_read import PointerReadUnit, check_init
from eie.hw.requantize import Requantizer
from eie.hw.sparse_matrix_read import SparseMatrixReadUnit
from eie.spec.ese import ESEConfig, unit_frac_bits

__all__ = ["ESEProcessingElement", "compute_layout", "writeback_layout", "check_lstm_images"]


def check_lstm_images(config, images):
    """Refuse images that are not ESE images made for ``config`` (ValueError naming both)."""
    if images is None:
        return
    from eie.spec.ese_image import LSTMImages
    if not isinstance(images, LSTMImages):
        raise ValueError("these are eie-images for the EIE array (an MLP); the ESE array runs ese-images "
                         "(an LSTM)")
    theirs, ours = images.config.config_hash(), config.config_hash()
    if theirs != ours:
        raise ValueError(f"images were made for configuration {theirs} but the hardware configuration is {ours}")


def compute_layout(config: ESEConfig) -> data.StructLayout:
    """Parameters of the products in progress: the layer's pointers, the vector scanned, the bank."""
    w = Widths(config)
    return data.StructLayout({
        "ptr_base": unsigned(w.ptr_addr),
        "n_in": unsigned(w.count),
        "scan_base": unsigned(bits_for(config.act_depth)),
        "bank": unsigned(1),
    })


def writeback_layout(config: ESEConfig) -> data.StructLayout:
    """Parameters of the write-back in progress (gates through the element-wise unit, or a layer)."""
    w = Widths(config)
    return data.StructLayout({
        "n_out": unsigned(w.count),
        "bias_base": unsigned(w.bias_addr),
        "shift": unsigned(w.shift),
        "relu": unsigned(1),
        "gates": unsigned(1),
        "dst_base": unsigned(bits_for(config.act_depth)),
        "bank": unsigned(1),
        "first_step": unsigned(1),
        "hidden": unsigned(w.count),
        "h_shift": unsigned(bits_for(2 * unit_frac_bits(config.act_bits) + 1)),
    })


class ESEProcessingElement(ConfiguredComponent):
    """An ESE PE: the EIE PE's activation queue, pointer read unit, sparse-matrix read unit,
    arithmetic unit and requantiser, with two accumulator banks, an activation store and an
    element-wise unit.

    **Products.** As in the EIE PE: broadcast activations enter the queue (``act``), column jobs
    stream their entries at one MAC per cycle. The entries go to the arithmetic unit of bank
    ``compute.bank``: each bank is one :class:`~eie.hw.arithmetic_unit.ArithmeticUnit` (its own
    multiplier and accumulator SRAM), and a step's gate rows live in the bank of the step's parity,
    so the next step's input products fill one bank while this step's write-back empties the other.
    The activation store's scanner offers this PE's non-zeros of the vector at ``compute.scan_base``
    on ``cand``.

    **Write-back** (``wb_start``): local rows ``r`` with global row ``r·n_pe + pe_index < n_out`` are
    cleared through bank ``wb.bank`` (one per cycle), meet their bias and are requantised. A gate
    write-back (``wb.gates``) feeds them to the element-wise unit, which writes ``m_t`` of unit
    ``u`` to ``dst_base + u``; any other writes row ``r`` to ``dst_base + r``. With
    ``wb_clear_only`` both banks' ``max_rows_per_pe`` rows are cleared and nothing is written
    (after reset).

    Parameters
    ----------
    config : ESEConfig
    pe_index : int
    images : eie.spec.ese_image.LSTMImages, optional
        Initialise the pointer, sparse-matrix and bias memories (bitstream mode).

    Attributes
    ----------
    act : In(stream.Signature(activation_layout))
    cand : Out(stream.Signature(activation_layout))
    codebook : In(data.ArrayLayout(signed(act_bits), 2**weight_bits))
    compute : In(compute_layout)
        Stable while products are in flight.
    scan_start : In(1)
    wb : In(writeback_layout)
        Stable during a write-back.
    wb_start, wb_clear_only : In(1)
    ptr_w, mat_w, bias_w : In(WritePortSignature)
        I/O-mode writes, as the EIE PE's.
    load : In(WritePortSignature(range(act_depth), signed(act_bits)))
        Input-sequence writes into the activation store.
    out_addr : In(range(act_depth))
    out_data : Out(signed(act_bits))
        Activation-store word ``OUT_LATENCY`` cycles after ``out_addr``.
    scan_done, busy, mac : Out(1)

    Raises
    ------
    TypeError
        ``config`` is not an :class:`ESEConfig` or ``pe_index`` not an integer.
    ValueError
        ``pe_index`` out of range, or images that are not ESE images for ``config``.
    """

    def __init__(self, *, config, pe_index, images=None):
        if not isinstance(config, ESEConfig):
            raise TypeError(f"config must be an ESEConfig, not {config!r}")
        if not isinstance(pe_index, int) or isinstance(pe_index, bool):
            raise TypeError(f"pe_index must be an integer, not {pe_index!r}")
        if not 0 <= pe_index < config.n_pe:
            raise ValueError(f"pe_index must be in 0..{config.n_pe - 1}, not {pe_index}")
        check_lstm_images(config, images)
        self._config = config
        self._pe_index = pe_index
        self._images = images
        self._bias_init = check_init("bias init", None if images is None else images.bias[pe_index],
                                     config.bias_depth, config.acc_bits, signed=True)
        w = Widths(config)
        act = signed(config.act_bits)
        act_layout = activation_layout(config.act_bits, w.act_index)
        store = bits_for(config.act_depth)
        super().__init__({
            "act": In(stream.Signature(act_layout)),
            "cand": Out(stream.Signature(act_layout)),
            "codebook": In(data.ArrayLayout(act, config.codebook_size)),
            "compute": In(compute_layout(config)),
            "scan_start": In(1),
            "wb": In(writeback_layout(config)),
            "wb_start": In(1),
            "wb_clear_only": In(1),
            "ptr_w": In(WritePortSignature(w.ptr_addr, config.ptr_bits)),
            "mat_w": In(WritePortSignature(w.mat_addr, config.word_bits)),
            "bias_w": In(WritePortSignature(w.bias_addr, signed(config.acc_bits))),
            "load": In(WritePortSignature(store, act)),
            "out_addr": In(store),
            "out_data": Out(act),
            "scan_done": Out(1),
            "busy": Out(1),
            "mac": Out(1),
        })

    @property
    def pe_index(self) -> int:
        return self._pe_index

    def elaborate(self, platform):
        m = Module()
        c = self._config
        p = self._pe_index
        w = Widths(c)
        img = self._images

        m.submodules.queue = queue = ActivationQueue(depth=c.queue_depth, act_bits=c.act_bits,
                                                     index_width=w.act_index)
        m.submodules.pointer_read = ptr = PointerReadUnit(config=c, init=None if img is None else img.ptr[p])
        m.submodules.matrix_read = mat = SparseMatrixReadUnit(config=c, init=None if img is None else img.mat[p])
        banks = [ArithmeticUnit(config=c), ArithmeticUnit(config=c)]
        m.submodules.bank0, m.submodules.bank1 = banks
        m.submodules.store = store = ActivationStore(config=c, pe_index=p)
        m.submodules.requantize = rq = Requantizer(config=c)
        m.submodules.elementwise = ew = ElementwiseUnit(config=c, pe_index=p)

        wiring.connect(m, wiring.flipped(self.act), queue.i)
        wiring.connect(m, queue.o, ptr.i)
        wiring.connect(m, ptr.o, mat.job)
        wiring.connect(m, store.cand, wiring.flipped(self.cand))
        wiring.connect(m, wiring.flipped(self.ptr_w), ptr.w)
        wiring.connect(m, wiring.flipped(self.mat_w), mat.w)
        m.d.comb += [
            ptr.ptr_base.eq(self.compute.ptr_base),
            store.start.eq(self.scan_start),
            store.n_in.eq(self.compute.n_in),
            store.scan_base.eq(self.compute.scan_base),
            store.out_addr.eq(self.out_addr),
            self.out_data.eq(store.out_data),
            self.scan_done.eq(store.done),
        ]
        for b, au in enumerate(banks):
            m.d.comb += [
                au.i.valid.eq(mat.o.valid & (self.compute.bank == b)),
                au.i.payload.eq(mat.o.payload),
                au.codebook.eq(self.codebook),
            ]

        # Write-back sequencer: one row per cycle into the bank's clear port.
        wb_active = Signal()
        wb_row = Signal(w.row + 1)
        wb_global = Signal(w.scan)
        clear_only = Signal()
        more = Signal()
        issue = Signal()
        m.d.comb += [
            more.eq(Mux(clear_only, wb_row < c.max_rows_per_pe, wb_global < self.wb.n_out)),
            issue.eq(wb_active & more),
        ]
        for b, au in enumerate(banks):
            m.d.comb += [au.clear.valid.eq(issue & (clear_only | (self.wb.bank == b))),
                         au.clear.payload.eq(wb_row)]
        with m.If(self.wb_start):
            m.d.sync += [wb_active.eq(1), wb_row.eq(0), wb_global.eq(p), clear_only.eq(self.wb_clear_only)]
        with m.Elif(issue):
            m.d.sync += [wb_row.eq(wb_row + 1), wb_global.eq(wb_global + c.n_pe)]
        with m.Elif(wb_active):
            m.d.sync += wb_active.eq(0)

        # Bias: read so that its registered data meets the cleared accumulator (as in the EIE PE).
        m.submodules.bias = bias_mem = Memory(shape=signed(c.acc_bits), depth=c.bias_depth, init=self._bias_init)
        bias_wr = bias_mem.write_port()
        bias_rd = bias_mem.read_port()
        bias_row = delay(m, wb_row, ArithmeticUnit.CLEAR_LATENCY - 2, "bias_row")
        bias = Signal(signed(c.acc_bits))
        m.d.sync += bias.eq(bias_rd.data)
        acc_valid = Signal()
        acc = Signal(signed(c.acc_bits))
        acc_row = Signal(w.row)
        m.d.comb += [
            bias_wr.en.eq(self.bias_w.en), bias_wr.addr.eq(self.bias_w.addr), bias_wr.data.eq(self.bias_w.data),
            bias_rd.addr.eq(self.wb.bias_base + bias_row),
            acc_valid.eq(banks[0].acc.valid | banks[1].acc.valid),
            acc.eq(Mux(banks[1].acc.valid, banks[1].acc.payload.value, banks[0].acc.payload.value)),
            acc_row.eq(Mux(banks[1].acc.valid, banks[1].acc.payload.row, banks[0].acc.payload.row)),
            rq.i.valid.eq(acc_valid & ~clear_only),
            rq.i.payload.acc.eq(acc),
            rq.i.payload.bias.eq(bias),
            rq.shift.eq(self.wb.shift),
            rq.relu.eq(self.wb.relu),
        ]
        rq_valid = [rq.i.valid]
        for n in range(Requantizer.LATENCY):
            rq_valid.append(delay(m, rq_valid[-1], 1, f"rq_valid{n}"))
        dst_row = delay(m, acc_row, Requantizer.LATENCY, "dst_row")

        # Requantised rows: gates to the element-wise unit, any other layer to the store.
        m.d.comb += [
            ew.start.eq(self.wb_start & self.wb.gates & ~self.wb_clear_only),
            ew.first_step.eq(self.wb.first_step),
            ew.hidden.eq(self.wb.hidden),
            ew.shift.eq(self.wb.h_shift),
            ew.i.valid.eq(rq.o.valid & self.wb.gates),
            ew.i.payload.eq(rq.o.payload),
        ]
        with m.If(self.load.en):
            m.d.comb += [store.w.en.eq(1), store.w.addr.eq(self.load.addr), store.w.data.eq(self.load.data)]
        with m.Elif(ew.o.valid):
            m.d.comb += [store.w.en.eq(1), store.w.addr.eq(self.wb.dst_base + ew.o.payload.unit),
                         store.w.data.eq(ew.o.payload.value)]
        with m.Else():
            m.d.comb += [store.w.en.eq(rq.o.valid & ~self.wb.gates), store.w.addr.eq(self.wb.dst_base + dst_row),
                         store.w.data.eq(rq.o.payload)]

        m.d.comb += self.mac.eq(mat.o.valid)
        m.d.comb += self.busy.eq(
            (queue.level != 0) | ptr.o.valid | mat.busy | banks[0].busy | banks[1].busy | wb_active
            | Cat(*rq_valid[1:]).any() | ew.busy)
        return m
