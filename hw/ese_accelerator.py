"""The ESE accelerator: an LSTM (and its head) on the EIE PE array, with the step scheduler."""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from eie.hw.accelerator import _advance_interleaved
from eie.hw.activation_store import OUT_LATENCY
from eie.hw.codebook_loader import CodebookLoader
from eie.hw.ese_io_map import Control, Flags, lstm_control_values
from eie.hw.ese_pe import ESEProcessingElement, check_lstm_images, compute_layout, writeback_layout
from eie.hw.io_map import LAYER_STRIDE, LayerField, Space, cfg_layout
from eie.hw.layouts import ConfiguredComponent, Widths, activation_layout, bits_for, layer_layout
from eie.hw.lnzd import LeadingNonZeroDetector
from eie.hw.output_collector import OutputCollector
from eie.spec.ese import ESEConfig, unit_frac_bits

__all__ = ["ESEAccelerator", "Phase"]

_FIELD_NAMES = {
    LayerField.N_IN: "n_in", LayerField.N_OUT: "n_out", LayerField.PTR_BASE: "ptr_base",
    LayerField.BIAS_BASE: "bias_base", LayerField.SHIFT: "shift", LayerField.RELU: "relu",
}


class Phase(enum.Enum, shape=3):
    """What the array does (the ``phase`` port), for cycle accounting."""

    IDLE = 0
    LOAD = 1     #: the input sequence streams in
    X = 2        #: input products of a step (only the first step, or all of them when serial)
    H = 3        #: recurrent products of a step
    GATES = 4    #: gate write-back and element-wise work (with the next step's input products)
    PROJ = 5     #: the projection
    HEAD = 6     #: the head layers
    OUTPUT = 7   #: outputs stream out


class ESEAccelerator(ConfiguredComponent):
    """An ESE array: runs a compressed one-layer LSTM (optionally projected) and its head over a whole
    input sequence on chip.

    **Modes.** As the EIE array's: in I/O mode (idle) ``cfg`` writes the PEs' pointer, sparse-matrix
    and bias SRAMs, the codebooks, the layer table and the control registers
    (:mod:`eie.hw.ese_io_map`; ``Control.N_STEPS`` sets the sequence length); ``i`` then accepts the
    input sequence, ``x_0[0..I-1], x_1[...], ...``, into the PEs' activation stores; the array
    computes every step; outputs leave on ``o`` after the last step (``n_out`` of them) or after every
    step (``n_out`` per step, with ``Flags.EVERY_STEP``).

    **A step t** (bank ``b = t mod 2``; the scheduler):

    1. *Recurrent products*: the PEs scan ``h_{t-1}`` and the gate matrix's recurrent columns (layer
       ``gates_h``) accumulate into bank ``b`` (skipped at ``t = 0``: ``h_{-1} = 0``). The input
       products ``W_x x_t`` are already there.
    2. *Gate write-back*: every PE clears its ``4U`` gate rows of bank ``b`` through the requantiser
       into its element-wise unit, which writes ``c_t`` and ``h_t`` (or ``m_t``). **At the same time**
       the PEs scan ``x_{t+1}`` and the input columns (layer ``gates_x``) accumulate into bank
       ``1 - b``: the next step's products overlap this step's element-wise work. (Step 0 computes
       its own input products first; ``Flags.SERIAL`` turns the overlap off, for comparison.)
    3. With a projection, ``W_hr m_t`` (an EIE layer in bank ``b``) writes ``h_t``. On an output
       step, the head layers run (EIE layers, ping-pong) and the outputs stream out.

    A phase ends when every scan is done, the broadcast register is empty and no PE is busy (flags
    registered once, as in the EIE array); codebooks are copied from the codebook SRAM before a
    layer that uses another one (``2^weight_bits + 1`` cycles). After reset both accumulator banks
    are cleared (``max_rows_per_pe`` cycles); ``cfg`` and ``i`` are not ready meanwhile.

    Ports: those of :class:`~eie.hw.accelerator.EIEAccelerator` (``cfg``, ``i``, ``o``, ``busy``,
    ``done``), plus ``step`` (the current step) and ``phase`` (:class:`Phase`). ``busy`` is high
    from the cycle after the first input handshake to the last output handshake; ``done`` pulses
    in the cycle after it. An input element is accepted while idle only when the layer count and
    the sequence length are non-zero and no ``cfg`` write is offered or landing.

    Parameters
    ----------
    config : ESEConfig
    images : eie.spec.ese_image.LSTMImages, optional
        Initialise every SRAM, the layer table and the control registers (bitstream mode; the
        sequence length still comes through ``cfg``).

    Attributes
    ----------
    cfg : In(stream.Signature(cfg_layout(config)))
    i : In(stream.Signature(signed(act_bits)))
    o : Out(stream.Signature(signed(act_bits)))
    busy, done : Out(1)
    step : Out(range(act_depth + 1))
    phase : Out(Phase)

    Raises
    ------
    TypeError
        ``config`` is not an :class:`ESEConfig`.
    ValueError
        ``images`` are not ESE images made for ``config``.
    """

    def __init__(self, *, config, images=None):
        if not isinstance(config, ESEConfig):
            raise TypeError(f"config must be an ESEConfig, not {config!r}")
        check_lstm_images(config, images)
        self._config = config
        self._images = images
        act = signed(config.act_bits)
        super().__init__({
            "cfg": In(stream.Signature(cfg_layout(config))),
            "i": In(stream.Signature(act)),
            "o": Out(stream.Signature(act)),
            "busy": Out(1),
            "done": Out(1),
            "step": Out(bits_for(config.act_depth + 1)),
            "phase": Out(Phase),
        })

    def elaborate(self, platform):
        m = Module()
        c = self._config
        w = Widths(c)
        img = self._images
        n_pe = c.n_pe
        store = bits_for(c.act_depth)
        steps = len(self.step)

        pes = [ESEProcessingElement(config=c, pe_index=p, images=img) for p in range(n_pe)]
        for p, pe in enumerate(pes):
            m.submodules[f"pe{p}"] = pe
        m.submodules.lnzd = lnzd = LeadingNonZeroDetector(n_inputs=n_pe, act_bits=c.act_bits,
                                                          index_width=w.act_index)
        for p, pe in enumerate(pes):
            wiring.connect(m, pe.cand, lnzd.i[p])
        any_busy, all_scanned, all_ready = Signal(), Signal(), Signal()
        m.d.comb += [
            any_busy.eq(Cat(pe.busy for pe in pes).any()),
            all_scanned.eq(Cat(pe.scan_done for pe in pes).all()),
            all_ready.eq(Cat(pe.act.ready for pe in pes).all()),
        ]

        # --- I/O mode: registered cfg writes ------------------------------------------------
        cfg_valid = Signal()
        cfg = Signal(cfg_layout(c))
        m.d.sync += [cfg_valid.eq(self.cfg.valid & self.cfg.ready), cfg.eq(self.cfg.payload)]

        def write_to(space, depth):
            return cfg_valid & (cfg.space == space) & (cfg.addr < depth)

        for p, pe in enumerate(pes):
            for port, space, depth in ((pe.ptr_w, Space.PTR, c.ptr_depth), (pe.mat_w, Space.MAT, c.mat_depth),
                                       (pe.bias_w, Space.BIAS, c.bias_depth)):
                m.d.comb += [port.en.eq(write_to(space, depth) & (cfg.pe == p)),
                             port.addr.eq(cfg.addr), port.data.eq(cfg.data)]
        m.submodules.codebook = cb = CodebookLoader(config=c, init=None if img is None else img.codebook)
        m.d.comb += [cb.w.en.eq(write_to(Space.CODEBOOK, c.max_layers * c.codebook_size)),
                     cb.w.addr.eq(cfg.addr), cb.w.data.eq(cfg.data)]
        for pe in pes:
            m.d.comb += pe.codebook.eq(cb.codebook)

        # Layer table (registers) and control registers.
        table_layout = layer_layout(c)
        init_rows = [] if img is None else img.layers
        table = Array(Signal(table_layout, name=f"table{l}",
                             init={} if l >= len(init_rows) else
                             {name: int(getattr(init_rows[l], name)) for name in _FIELD_NAMES.values()})
                      for l in range(c.max_layers))
        for l in range(c.max_layers):
            for field, name in _FIELD_NAMES.items():
                with m.If(cfg_valid & (cfg.space == Space.LAYER) & (cfg.addr == l * LAYER_STRIDE + field)):
                    m.d.sync += getattr(table[l], name).eq(cfg.data)
        values = {} if img is None else {Control.N_LAYERS: len(img.layers), **lstm_control_values(img)}
        regs = {
            Control.N_LAYERS: Signal(w.n_layers, name="n_layers", init=values.get(Control.N_LAYERS, 0)),
            Control.N_STEPS: Signal(steps, name="n_steps"),
            Control.HIDDEN: Signal(w.count, name="hidden", init=values.get(Control.HIDDEN, 0)),
            Control.FLAGS: Signal(len(Flags), name="flags", init=values.get(Control.FLAGS, 0)),
            Control.H_SHIFT: Signal(bits_for(2 * unit_frac_bits(c.act_bits) + 1), name="h_shift",
                                    init=values.get(Control.H_SHIFT, 1)),
        }
        for addr, name in ((Control.X_BASE, "x_base"), (Control.X_STRIDE, "x_stride"), (Control.H_BASE, "h_base"),
                           (Control.M_BASE, "m_base"), (Control.PING_BASE, "ping_base"),
                           (Control.PONG_BASE, "pong_base")):
            regs[addr] = Signal(store, name=name, init=values.get(addr, 0))
        for addr, reg in regs.items():
            limit = c.max_layers if addr == Control.N_LAYERS else (1 << len(reg)) - 1
            with m.If(cfg_valid & (cfg.space == Space.CONTROL) & (cfg.addr == addr) & (cfg.data <= limit)):
                m.d.sync += reg.eq(cfg.data)
        n_layers, n_steps, hidden, flags = (regs[k] for k in (Control.N_LAYERS, Control.N_STEPS, Control.HIDDEN,
                                                               Control.FLAGS))
        x_base, x_stride, h_base, m_base = (regs[k] for k in (Control.X_BASE, Control.X_STRIDE, Control.H_BASE,
                                                               Control.M_BASE))
        ping_base, pong_base = regs[Control.PING_BASE], regs[Control.PONG_BASE]
        has_proj, every_step, serial = (flags[f.bit_length() - 1] for f in (Flags.PROJ, Flags.EVERY_STEP,
                                                                            Flags.SERIAL))
        first_head = Signal(w.layer)
        n_head = Signal(w.n_layers)
        m.d.comb += [first_head.eq(2 + has_proj), n_head.eq(n_layers - 2 - has_proj)]

        # --- input loading: x_t[j] to PE j % n_pe, word x_base + t·x_stride + j // n_pe -----------
        in_pe = Signal(range(n_pe))
        in_local = Signal(store)
        in_j = Signal(w.count)
        in_t = Signal(steps)
        in_off = Signal(store)              # t·x_stride of the step being loaded
        load_en = Signal()
        load_pe = Signal(range(n_pe))
        load = Signal(data.StructLayout({"addr": store, "data": signed(c.act_bits)}))
        m.d.sync += [load_en.eq(self.i.valid & self.i.ready), load_pe.eq(in_pe),
                     load.addr.eq(x_base + in_off + in_local), load.data.eq(self.i.payload)]
        for p, pe in enumerate(pes):
            m.d.comb += [pe.load.en.eq(load_en & (load_pe == p)), pe.load.addr.eq(load.addr),
                         pe.load.data.eq(load.data)]
        step_end = Signal()
        input_last = Signal()
        m.d.comb += [step_end.eq(in_j == table[0].n_in - 1), input_last.eq(step_end & (in_t == n_steps - 1))]
        with m.If(self.i.valid & self.i.ready):
            with m.If(step_end):
                m.d.sync += [in_j.eq(0), in_pe.eq(0), in_local.eq(0), in_t.eq(in_t + 1),
                             in_off.eq(in_off + x_stride)]
            with m.Else():
                m.d.sync += in_j.eq(in_j + 1)
                _advance_interleaved(m, in_pe, in_local, n_pe)

        # --- broadcast register between the LNZD and the activation queues ------------------
        bcast_valid = Signal()
        bcast = Signal(activation_layout(c.act_bits, w.act_index))
        computing = Signal()
        m.d.comb += lnzd.o.ready.eq(computing & (~bcast_valid | all_ready))
        with m.If(lnzd.o.valid & lnzd.o.ready):
            m.d.sync += [bcast_valid.eq(1), bcast.eq(lnzd.o.payload)]
        with m.Elif(all_ready):
            m.d.sync += bcast_valid.eq(0)
        for pe in pes:
            m.d.comb += [pe.act.valid.eq(bcast_valid & all_ready), pe.act.payload.eq(bcast)]

        # --- outputs -------------------------------------------------------------------------
        m.submodules.output = out = OutputCollector(config=c, addr_width=store, latency=OUT_LATENCY)
        wiring.connect(m, out.o, wiring.flipped(self.o))
        for p, pe in enumerate(pes):
            m.d.comb += [pe.out_addr.eq(out.addr), out.data[p].eq(pe.out_data)]

        # --- the scheduler -------------------------------------------------------------------
        t = Signal(steps)
        x_off = Signal(store)               # t·x_stride: step t's input is at x_base + x_off
        compute = Signal(compute_layout(c))
        wb = Signal(writeback_layout(c))
        op = Signal(w.layer)                # the layer-table row of a projection or head layer
        head_l = Signal(w.n_layers)
        scan_start, wb_start, wb_clear_only = Signal(), Signal(), Signal()
        for pe in pes:
            m.d.comb += [pe.compute.eq(compute), pe.wb.eq(wb), pe.scan_start.eq(scan_start),
                         pe.wb_start.eq(wb_start), pe.wb_clear_only.eq(wb_clear_only)]
        done = Signal()
        m.d.sync += done.eq(0)
        m.d.comb += [self.done.eq(done), self.step.eq(t)]

        idle_q, quiet_q, settled = Signal(), Signal(), Signal()
        m.d.sync += [idle_q.eq(~any_busy), quiet_q.eq(all_scanned & ~bcast_valid & ~any_busy), settled.eq(1)]
        quiet = settled & quiet_q

        cb_layer = Signal(w.layer)

        def codebook_ready(layer):
            """High when ``layer``'s codebook is in the registers; starts the copy otherwise."""
            loaded = Signal()
            m.d.comb += loaded.eq((cb_layer == layer) & ~cb.busy)
            with m.If((cb_layer != layer) & ~cb.busy):
                m.d.comb += [cb.start.eq(1), cb.layer.eq(layer)]
                m.d.sync += cb_layer.eq(layer)
            return loaded

        def products(row, scan_base, bank):
            m.d.sync += [compute.ptr_base.eq(table[row].ptr_base), compute.n_in.eq(table[row].n_in),
                         compute.scan_base.eq(scan_base), compute.bank.eq(bank)]

        def writeback(row, *, gates, dst_base):
            m.d.sync += [wb.n_out.eq(table[row].n_out), wb.bias_base.eq(table[row].bias_base),
                         wb.shift.eq(table[row].shift), wb.relu.eq(0 if gates else table[row].relu), wb.gates.eq(gates),
                         wb.dst_base.eq(dst_base), wb.bank.eq(t[0]), wb.first_step.eq(t == 0),
                         wb.hidden.eq(hidden), wb.h_shift.eq(regs[Control.H_SHIFT])]

        def head_dest(l):
            return Array([ping_base, pong_base])[l[0]]

        last_step, output_now, is_proj = Signal(), Signal(), Signal()
        layer_phase = Signal(Phase)
        m.d.comb += [last_step.eq(t == n_steps - 1), output_now.eq(every_step | last_step),
                     is_proj.eq(has_proj & (op == 2)), layer_phase.eq(Mux(is_proj, Phase.PROJ, Phase.HEAD))]

        def after_recurrence():
            """From the end of a step's gate write-back (or projection): head, outputs or next step."""
            with m.If(output_now & (n_head != 0)):
                m.d.sync += [op.eq(first_head), head_l.eq(0)]
                m.next = "LAYER_SETUP"
            with m.Elif(output_now):
                m.next = "OUTPUT_START"
            with m.Else():
                m.next = "NEXT_STEP"

        with m.FSM(name="control"):
            with m.State("CLEAR_START"):
                m.d.comb += [wb_start.eq(1), wb_clear_only.eq(1)]
                m.d.sync += settled.eq(0)
                m.next = "CLEAR_WAIT"
            with m.State("CLEAR_WAIT"):
                with m.If(settled & idle_q):
                    m.next = "IDLE"
            with m.State("IDLE"):
                m.d.comb += [self.cfg.ready.eq(1),
                             self.i.ready.eq((n_layers != 0) & (n_steps != 0) & ~self.cfg.valid & ~cfg_valid)]
                with m.If(self.i.valid & self.i.ready):
                    m.d.comb += [cb.start.eq(1), cb.layer.eq(0)]    # the gate codebook, while inputs stream
                    m.d.sync += cb_layer.eq(0)
                    with m.If(input_last):
                        m.next = "X_SETUP"
                    with m.Else():
                        m.next = "LOAD"
                with m.Else():
                    m.d.sync += [in_j.eq(0), in_pe.eq(0), in_local.eq(0), in_t.eq(0), in_off.eq(0), t.eq(0),
                                 x_off.eq(0)]
            with m.State("LOAD"):
                m.d.comb += [self.busy.eq(1), self.i.ready.eq(1), self.phase.eq(Phase.LOAD)]
                with m.If(self.i.valid & input_last):
                    m.next = "X_SETUP"
            with m.State("X_SETUP"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(Phase.X)]
                with m.If(codebook_ready(0)):
                    products(0, x_base + x_off, t[0])
                    m.next = "X_START"
            with m.State("X_START"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(Phase.X), scan_start.eq(1)]
                m.d.sync += settled.eq(0)
                m.next = "X_WAIT"
            with m.State("X_WAIT"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(Phase.X), computing.eq(1)]
                with m.If(quiet & (t == 0)):
                    m.next = "GATES_SETUP"
                with m.Elif(quiet):
                    m.next = "H_SETUP"
            with m.State("H_SETUP"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(Phase.H)]
                with m.If(codebook_ready(0)):
                    products(1, h_base, t[0])
                    m.next = "H_START"
            with m.State("H_START"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(Phase.H), scan_start.eq(1)]
                m.d.sync += settled.eq(0)
                m.next = "H_WAIT"
            with m.State("H_WAIT"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(Phase.H), computing.eq(1)]
                with m.If(quiet):
                    m.next = "GATES_SETUP"
            with m.State("GATES_SETUP"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(Phase.GATES)]
                writeback(0, gates=1, dst_base=Array([h_base, m_base])[has_proj])
                products(0, x_base + x_off + x_stride, ~t[0])       # the next step's input products
                m.next = "GATES_START"
            with m.State("GATES_START"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(Phase.GATES), wb_start.eq(1),
                             scan_start.eq(~serial & ~last_step)]
                m.d.sync += settled.eq(0)
                m.next = "GATES_WAIT"
            with m.State("GATES_WAIT"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(Phase.GATES), computing.eq(1)]
                with m.If(quiet):
                    with m.If(has_proj):
                        m.d.sync += op.eq(2)
                        m.next = "LAYER_SETUP"
                    with m.Else():
                        after_recurrence()
            with m.State("LAYER_SETUP"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(layer_phase)]
                with m.If(codebook_ready(op)):
                    source = Array([Array([h_base, head_dest(head_l - 1)])[head_l != 0], m_base])[is_proj]
                    products(op, source, t[0])
                    m.next = "LAYER_START"
            with m.State("LAYER_START"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(layer_phase), scan_start.eq(1)]
                m.d.sync += settled.eq(0)
                m.next = "LAYER_WAIT"
            with m.State("LAYER_WAIT"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(layer_phase), computing.eq(1)]
                with m.If(quiet):
                    m.next = "LAYER_WB_SETUP"
            with m.State("LAYER_WB_SETUP"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(layer_phase)]
                writeback(op, gates=0, dst_base=Array([head_dest(head_l), h_base])[is_proj])
                m.next = "LAYER_WB_START"
            with m.State("LAYER_WB_START"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(layer_phase), wb_start.eq(1)]
                m.d.sync += settled.eq(0)
                m.next = "LAYER_WB_WAIT"
            with m.State("LAYER_WB_WAIT"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(layer_phase)]
                with m.If(quiet):
                    with m.If(is_proj):
                        after_recurrence()
                    with m.Elif(head_l + 1 < n_head):
                        m.d.sync += [op.eq(op + 1), head_l.eq(head_l + 1)]
                        m.next = "LAYER_SETUP"
                    with m.Else():
                        m.next = "OUTPUT_START"
            with m.State("OUTPUT_START"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(Phase.OUTPUT), out.start.eq(1)]
                m.next = "OUTPUT"
            with m.State("OUTPUT"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(Phase.OUTPUT)]
                with m.If(out.last):
                    with m.If(last_step):
                        m.d.sync += done.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "NEXT_STEP"
            with m.State("NEXT_STEP"):
                m.d.comb += [self.busy.eq(1), self.phase.eq(Phase.GATES)]
                m.d.sync += [t.eq(t + 1), x_off.eq(x_off + x_stride)]
                with m.If(serial):
                    m.next = "X_SETUP"
                with m.Else():
                    m.next = "H_SETUP"

        # The collector's vector: the last head layer's output, else h.
        last_head = Signal(w.n_layers)
        m.d.comb += [
            last_head.eq(n_head - 1),
            out.n_out.eq(Array([table[1].n_in, table[first_head + last_head].n_out])[n_head != 0]),
            out.base.eq(Array([h_base, head_dest(last_head)])[n_head != 0]),
        ]
        return m
