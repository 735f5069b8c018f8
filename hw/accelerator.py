"""The EIE accelerator: central control unit, LNZD tree and the PE array (EIE section III)."""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from eie.hw.activation_rw import OUT_LATENCY
from eie.hw.codebook_loader import CodebookLoader
from eie.hw.io_map import CONTROL_N_LAYERS, LAYER_STRIDE, LayerField, Space, cfg_layout
from eie.hw.layouts import ConfiguredComponent, Widths, activation_layout, check_config, layer_layout
from eie.hw.lnzd import LeadingNonZeroDetector
from eie.hw.pe import ProcessingElement, check_images

__all__ = ["EIEAccelerator"]

OUTPUT_FIFO_DEPTH = 4
#: A layer's write-back overlaps the next layer's set-up, scan and broadcast (the PEs hold their
#: MACs until their own sweep is done); see :class:`EIEAccelerator`.
WRITEBACK_OVERLAP = True

_FIELD_NAMES = {
    LayerField.N_IN: "n_in", LayerField.N_OUT: "n_out", LayerField.PTR_BASE: "ptr_base",
    LayerField.BIAS_BASE: "bias_base", LayerField.SHIFT: "shift", LayerField.RELU: "relu",
}


def _advance_interleaved(m, pe, addr, n_pe):
    """Step ``(pe, addr)`` to the next element ``j`` of an interleaved vector (``j = addr·n_pe + pe``)."""
    if n_pe == 1:
        m.d.sync += addr.eq(addr + 1)
    else:
        with m.If(pe == n_pe - 1):
            m.d.sync += [pe.eq(0), addr.eq(addr + 1)]
        with m.Else():
            m.d.sync += pe.eq(pe + 1)


class EIEAccelerator(ConfiguredComponent):
    """An EIE PE array that runs a whole compressed network, layer after layer, on chip.

    **Modes.** *I/O mode* (idle): ``cfg`` writes the pointer, sparse-matrix and bias SRAMs of
    every PE, the codebook SRAM, the layer table and the number of layers (address map:
    :mod:`eie.hw.io_map`); ``i`` accepts the input vector. *Computing mode* starts when the last
    input element is accepted and runs every layer back to back; the activations stay in the
    PEs' register files (ping-pong). Finally the last layer's outputs leave on ``o`` and the
    accelerator is idle again, images still loaded.

    **A layer.** (1) Set-up: the layer-table row is latched (2 cycles). The layer's codebook is
    copied from the codebook SRAM into the shared codebook registers (``2^weight_bits + 1``
    cycles) in the background: for layer 0 while the input vector streams in, for the next
    layers from the start of the previous layer's write-back; the PEs issue no MAC while the
    copy runs (``hold``).
    (2) Compute: every PE scans its source register file; the LNZD quadtree picks one non-zero
    activation per cycle (lowest PE first) into the broadcast register, which hands it to every
    PE's pointer read at once and stalls only while any PE's queue is full; zero activations
    cost no broadcast cycle. The layer ends when all scans are done, the broadcast register is
    empty and no PE is busy. (3) Write-back: source and destination swap, the layer's
    parameters move to the write-back register (``wb_layer``) and each PE requantises its rows
    (one per cycle) into the new source register file and clears its accumulators. The next
    layer's set-up and compute start at once, overlapped with the write-back: each PE's scan
    follows its write-back row by row, and its MACs wait until its sweep is done. After the last
    layer, the control waits for the write-back to finish before the output phase.

    After reset the control clears every accumulator (``max_rows_per_pe`` cycles); ``cfg`` and
    ``i`` are not ready meanwhile.

    Verilog ports (``hw.generate.generate_verilog``; widths for the default ``EIEConfig()``,
    where ``ADDR_W = 11``, ``DATA_W = 64``, the payload is 86 bits and ``layer`` 3 bits):

    ====================== ====== ==================================================================
    port                   dir    meaning
    ====================== ====== ==================================================================
    ``clk``                in     the ``sync`` domain clock
    ``rst``                in     synchronous reset, active high
    ``cfg__valid``         in     an I/O write is offered
    ``cfg__ready``         out    high only while idle (never during the post-reset clear)
    ``cfg__payload[85:0]`` in     space ``[2:0]``, pe ``[10:3]``, addr ``[21:11]``, data ``[85:22]``
                                  (in general addr ``[10+ADDR_W:11]``, data above it; see
                                  :mod:`eie.hw.io_map`)
    ``i__valid``           in     an input element is offered
    ``i__ready``           out    see below
    ``i__payload[15:0]``   in     input element ``j`` of layer 0 (two's complement)
    ``o__valid``           out    an output element is offered
    ``o__ready``           in     back-pressure, honoured every cycle
    ``o__payload[15:0]``   out    output row ``i`` of the last layer
    ``busy``               out    from the cycle after the first input handshake up to and
                                  including the cycle of the last output handshake
    ``layer[2:0]``         out    the layer being computed (0 while idle)
    ``done``               out    one-cycle pulse in the cycle after the last output handshake
    ====================== ====== ==================================================================

    ``cfg`` writes land one cycle after their handshake; writes to an address outside a space,
    to a PE that does not exist, or of a layer count above ``max_layers`` are ignored. While
    idle, an input element is accepted only when the number of layers is non-zero and no
    ``cfg`` write is offered or landing, so every write is seen by the next input vector.
    Inputs ``j = 0 .. n_in(0)-1`` follow in order (``i__ready`` stays high until the last
    one); outputs ``0 .. n_out-1`` leave in order.

    Parameters
    ----------
    config : EIEConfig
    images : eie.spec.image.Images, optional
        Initialise every SRAM, the layer table and the number of layers from the images
        (bitstream mode). They must be made for ``config``.

    Attributes
    ----------
    cfg : In(stream.Signature(cfg_layout(config)))
    i : In(stream.Signature(signed(act_bits)))
    o : Out(stream.Signature(signed(act_bits)))
    busy, done : Out(1)
    layer : Out(range(max_layers))

    Raises
    ------
    TypeError
        ``config`` is not an :class:`EIEConfig`.
    ValueError
        ``images`` were made for another configuration (the message names both hashes).
    """

    def __init__(self, *, config, images=None):
        config = check_config(config)
        check_images(config, images)
        self._config = config
        self._images = images
        act = signed(config.act_bits)
        super().__init__({
            "cfg": In(stream.Signature(cfg_layout(config))),
            "i": In(stream.Signature(act)),
            "o": Out(stream.Signature(act)),
            "busy": Out(1),
            "layer": Out(Widths(config).layer),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = self._config
        w = Widths(c)
        img = self._images
        n_pe = c.n_pe
        cb_size = c.codebook_size

        pes = [ProcessingElement(config=c, pe_index=p, images=img) for p in range(n_pe)]
        for p, pe in enumerate(pes):
            m.submodules[f"pe{p}"] = pe
        m.submodules.lnzd = lnzd = LeadingNonZeroDetector(
            n_inputs=n_pe, act_bits=c.act_bits, index_width=w.act_index)
        for p, pe in enumerate(pes):
            wiring.connect(m, pe.cand, lnzd.i[p])
        any_busy = Signal()
        all_scanned = Signal()
        all_ready = Signal()
        m.d.comb += [
            any_busy.eq(Cat(pe.busy for pe in pes).any()),
            all_scanned.eq(Cat(pe.scan_done for pe in pes).all()),
            all_ready.eq(Cat(pe.act.ready for pe in pes).all()),
        ]

        # --- I/O mode: registered cfg writes -----------------------------------------------
        cfg_valid = Signal()
        cfg = Signal(cfg_layout(c))
        m.d.sync += [cfg_valid.eq(self.cfg.valid & self.cfg.ready), cfg.eq(self.cfg.payload)]

        def write_to(space, depth):
            return cfg_valid & (cfg.space == space) & (cfg.addr < depth)

        for p, pe in enumerate(pes):
            this_pe = cfg.pe == p
            for port, space, depth in ((pe.ptr_w, Space.PTR, c.ptr_depth),
                                       (pe.mat_w, Space.MAT, c.mat_depth),
                                       (pe.bias_w, Space.BIAS, c.bias_depth)):
                m.d.comb += [port.en.eq(write_to(space, depth) & this_pe),
                             port.addr.eq(cfg.addr), port.data.eq(cfg.data)]

        # Codebook SRAM and the shared codebook registers of the active layer.
        m.submodules.codebook = cb = CodebookLoader(config=c, init=None if img is None else img.codebook)
        m.d.comb += [cb.w.en.eq(write_to(Space.CODEBOOK, c.max_layers * cb_size)),
                     cb.w.addr.eq(cfg.addr), cb.w.data.eq(cfg.data)]
        for pe in pes:
            m.d.comb += pe.codebook.eq(cb.codebook)

        # Layer table: one small SRAM per field, read at the current layer; ``current`` holds
        # the active layer's row, latched at set-up.
        layer_idx = Signal(w.layer)
        current = Signal(layer_layout(c))
        select = Signal()
        wb_layer = Signal(layer_layout(c))
        table = Signal(layer_layout(c))
        table_layout = layer_layout(c)
        field_bits = LAYER_STRIDE.bit_length() - 1
        table_write = cfg_valid & (cfg.space == Space.LAYER) & \
            (cfg.addr[field_bits:] < c.max_layers)
        for field, name in _FIELD_NAMES.items():
            width = table_layout[name].width
            init = [] if img is None else [int(getattr(info, name)) for info in img.layers]
            # A few words each: never worth an iCE40 block RAM (elsewhere Yosys picks distributed RAM).
            ice40 = str(getattr(platform, "device", "")).startswith("iCE40")
            mem = Memory(shape=width, depth=c.max_layers, init=init, attrs={"ram_style": "logic"} if ice40 else {})
            m.submodules[f"table_{name}"] = mem
            wr = mem.write_port()
            rd = mem.read_port(transparent_for=(wr,))
            m.d.comb += [
                wr.en.eq(table_write & (cfg.addr[:field_bits] == field)),
                wr.addr.eq(cfg.addr[field_bits:]), wr.data.eq(cfg.data),
                rd.addr.eq(layer_idx),
                getattr(table, name).eq(rd.data),
            ]
        n_layers = Signal(w.n_layers, reset_less=True,
                          init=0 if img is None else len(img.layers))
        with m.If(cfg_valid & (cfg.space == Space.CONTROL) & (cfg.addr == CONTROL_N_LAYERS)
                  & (cfg.data <= c.max_layers)):
            m.d.sync += n_layers.eq(cfg.data)

        # --- input loading: element j goes to PE j % n_pe, local address j // n_pe -------
        in_pe = Signal(range(n_pe))
        in_addr = Signal(w.row)
        in_count = Signal(w.count)
        load_en = Signal()
        load_pe = Signal(range(n_pe))
        load = Signal(data.StructLayout({"addr": w.row, "data": signed(c.act_bits)}))
        m.d.sync += [load_en.eq(self.i.valid & self.i.ready), load_pe.eq(in_pe),
                     load.addr.eq(in_addr), load.data.eq(self.i.payload)]
        for p, pe in enumerate(pes):
            m.d.comb += [pe.load.en.eq(load_en & (load_pe == p)),
                         pe.load.addr.eq(load.addr), pe.load.data.eq(load.data)]
        input_last = Signal()
        m.d.comb += input_last.eq(in_count == table.n_in - 1)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += in_count.eq(in_count + 1)
            _advance_interleaved(m, in_pe, in_addr, n_pe)

        # --- broadcast register between the LNZD and the activation queues ---------------
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

        # --- output: read the source register files in global order ----------------------
        m.submodules.out_fifo = out_fifo = SyncFIFO(width=c.act_bits, depth=OUTPUT_FIFO_DEPTH)
        out_count = Signal(w.count)
        out_pe = Signal(range(n_pe))
        out_addr = Signal(w.row)
        out_issue = Signal()
        popped = Signal(w.count)
        outputting = Signal()
        # Reads in flight: (valid, pe) per cycle of the register files' read latency.
        flights = [(out_issue, out_pe)]
        for n in range(OUT_LATENCY):
            valid, pe_n = Signal(name=f"out_flight{n}"), Signal(range(n_pe), name=f"out_pe{n}")
            m.d.sync += [valid.eq(flights[-1][0]), pe_n.eq(flights[-1][1])]
            flights.append((valid, pe_n))
        in_flight = sum(valid for valid, _ in flights[1:])
        m.d.comb += out_issue.eq(outputting & (out_count < current.n_out)
                                 & (out_fifo.level + in_flight < OUTPUT_FIFO_DEPTH))
        for pe in pes:
            m.d.comb += pe.out_addr.eq(out_addr)
        arrived, arrived_pe = flights[-1]
        m.d.comb += [
            out_fifo.w_en.eq(arrived),
            out_fifo.w_data.eq(Array(pe.out_data for pe in pes)[arrived_pe]),
            self.o.valid.eq(out_fifo.r_rdy),
            self.o.payload.eq(out_fifo.r_data),
            out_fifo.r_en.eq(self.o.ready),
        ]
        with m.If(out_issue):
            m.d.sync += out_count.eq(out_count + 1)
            _advance_interleaved(m, out_pe, out_addr, n_pe)
        # ``popped == n_out - 1``, registered (it feeds the control's next state).
        last_popped = Signal()
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [popped.eq(popped + 1), last_popped.eq(popped + 2 == current.n_out)]
        with m.Elif(~outputting):
            m.d.sync += last_popped.eq(current.n_out == 1)

        # --- central control ----------------------------------------------------------------
        # Codebook copy (the loader's engine): runs while the inputs stream in (layer 0) or during
        # the previous layer's write-back, when no MAC uses the codebook registers. A copy never
        # starts while one is active, so the shift enable of the (chip-wide) codebook registers
        # depends on registered state only, not on the input handshake.
        done = Signal()
        m.d.sync += done.eq(0)
        for pe in pes:
            m.d.comb += [pe.layer.eq(current), pe.wb_layer.eq(wb_layer), pe.select.eq(select),
                         pe.hold.eq(cb.busy)]
        m.d.comb += [self.layer.eq(layer_idx), self.done.eq(done)]

        # Completion flags gather one bit from every PE across the chip, so they are registered:
        # they describe the previous cycle. ``settled`` is low in the first cycle of a wait
        # state, when the flags still describe the cycle that started the work. Completion is
        # stable (finished work starts nothing new), so acting a cycle late is safe.
        idle_q = Signal()
        quiet_q = Signal()
        settled = Signal()
        m.d.sync += [idle_q.eq(~any_busy), quiet_q.eq(all_scanned & ~bcast_valid & ~any_busy),
                     settled.eq(1)]

        def start_idle():
            m.d.sync += [layer_idx.eq(0), in_count.eq(0), in_pe.eq(0), in_addr.eq(0),
                         out_count.eq(0), out_pe.eq(0), out_addr.eq(0), popped.eq(0)]

        with m.FSM(name="control"):
            with m.State("CLEAR_START"):
                for pe in pes:
                    m.d.comb += [pe.wb_start.eq(1), pe.wb_clear_only.eq(1)]
                m.d.sync += settled.eq(0)
                m.next = "CLEAR_WAIT"
            with m.State("CLEAR_WAIT"):
                with m.If(settled & idle_q):
                    start_idle()
                    m.next = "IDLE"
            with m.State("IDLE"):
                m.d.comb += [
                    self.cfg.ready.eq(1),
                    self.i.ready.eq((n_layers != 0) & ~self.cfg.valid & ~cfg_valid),
                ]
                with m.If(self.i.valid & self.i.ready):
                    m.d.comb += [cb.start.eq(1), cb.layer.eq(0)]
                    with m.If(input_last):
                        m.next = "SETUP"
                    with m.Else():
                        m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += [self.busy.eq(1), self.i.ready.eq(1)]
                with m.If(self.i.valid & input_last):
                    m.next = "SETUP"
            with m.State("SETUP"):
                # ``layer_idx`` has just changed: the layer table is read in this cycle.
                m.d.comb += self.busy.eq(1)
                m.next = "LATCH"
            with m.State("LATCH"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += current.eq(table)
                m.next = "SCAN_START"
            with m.State("SCAN_START"):
                m.d.comb += self.busy.eq(1)
                for pe in pes:
                    m.d.comb += pe.scan_start.eq(1)
                m.d.sync += settled.eq(0)
                m.next = "COMPUTE"
            with m.State("COMPUTE"):
                m.d.comb += [self.busy.eq(1), computing.eq(1)]
                # (A layer without MACs can be quiet while its codebook is still being copied;
                # the next copy starts only after this one.)
                with m.If(settled & quiet_q & ~cb.busy):
                    m.next = "WB_START"
            with m.State("WB_START"):
                m.d.comb += [self.busy.eq(1), cb.start.eq(layer_idx + 1 < n_layers),
                             cb.layer.eq(layer_idx + 1)]
                for pe in pes:
                    m.d.comb += pe.wb_start.eq(1)
                m.d.sync += [settled.eq(0), select.eq(~select), wb_layer.eq(current)]
                with m.If(layer_idx + 1 < n_layers):
                    m.d.sync += layer_idx.eq(layer_idx + 1)
                    m.next = "SETUP"
                with m.Else():
                    m.next = "WB_WAIT"
            with m.State("WB_WAIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(settled & idle_q):
                    m.next = "OUTPUT"
            with m.State("OUTPUT"):
                m.d.comb += [
                    self.busy.eq(1),
                    outputting.eq(1),
                ]
                with m.If(self.o.valid & self.o.ready & last_popped):
                    m.d.sync += done.eq(1)
                    start_idle()
                    m.next = "IDLE"
        return m
