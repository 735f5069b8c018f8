"""The EIE PE array in Amaranth HDL: one component per unit of the paper.

================================= =========================================================
module                            unit
================================= =========================================================
(:mod:`eie.spec.config`)          :class:`EIEConfig`, the parameters shared with the images
:mod:`eie.hw.layouts`             widths and payload layouts derived from a configuration
:mod:`eie.hw.activation_queue`    activation FIFO of an ESE PE
:mod:`eie.hw.lnzd`                leading non-zero detector quadtree
:mod:`eie.hw.pointer_read`        even/odd pointer SRAM banks
:mod:`eie.hw.sparse_matrix_read`  queue of column jobs, sparse-matrix SRAM, padding folder
:mod:`eie.hw.arithmetic_unit`     codebook, address accumulation, MAC, hazard bypass
:mod:`eie.hw.requantize`          bias, rounding shift, saturation, ReLU
:mod:`eie.hw.activation_rw`       ping-pong activation register files, scanner, biases
:mod:`eie.hw.pe`                  one processing element
:mod:`eie.hw.accelerator`         central control, LNZD, broadcast, I/O mode: the top level
:mod:`eie.hw.io_map`              ``cfg`` address map and image loading writes
:mod:`eie.hw.source_scanner`      a PE's scan of one vector, non-zeros only (ESE)
:mod:`eie.hw.activation_store`    an ESE PE's activations: every vector in one memory
:mod:`eie.hw.elementwise`         ESE element-wise unit: table sigmoid/tanh, c_t and h_t
:mod:`eie.hw.codebook_loader`     codebook SRAM and the active layer's codebook registers
:mod:`eie.hw.output_collector`    an interleaved vector out of the PEs onto a stream
:mod:`eie.hw.ese_pe`              one ESE PE: the EIE units, two accumulator banks
:mod:`eie.hw.ese_accelerator`     the ESE array: the LSTM's step scheduler, the top level
:mod:`eie.hw.ese_io_map`          the ESE array's control registers and image writes
:mod:`eie.hw.generate`            Verilog generation
:mod:`eie.hw.synth`               ECP5 synthesis smoke check
:mod:`eie.hw.testing`             simulator helpers for the tests
================================= =========================================================

Data path of one layer (register stages in parentheses)::

    source scan: SRAM read (1) + data register (1) -> candidate FIFO (1) -> LNZD (comb)
      -> broadcast register (1) -> pointer read (1) -> job register (1)
      -> queue of non-empty column jobs (``queue_depth``; 2, 1 when depth <= 2) -> issue
      -> sparse-matrix SRAM (1) -> word register (1) -> unit FIFO (1) -> padding folder (1)
      -> arithmetic unit: decode/address (1), multiply ∥ read (1), register (1), add + write
    write-back: clear through the arithmetic unit (4) -> requantiser (2) -> write into the
      next layer's source register file, overlapped with the next layer's set-up, scan and
      broadcast (the scan follows the written rows; the PE's MACs wait for its sweep)

Each PE sustains one MAC per cycle while its queue holds jobs. Unlike EIE, the PE looks a
broadcast activation's pointers up *before* queueing it, so empty columns take neither a queue
slot nor a cycle (with dense inputs and few rows per PE, EIE's activation queue feeds a front end
that runs exactly at the broadcast rate and never drains), and padding entries are folded into
the next entry's relative index instead of costing a MAC slot (the issue stage reads two
entries of a word per cycle). The broadcast delivers one non-zero activation per cycle and
costs nothing for zeros.

The ESE array (LSTMs, :mod:`eie.hw.ese_accelerator`) builds its PEs from the same activation
queue, pointer read, sparse-matrix read and arithmetic units, requantiser and leading non-zero
detector (its queue holds activations, as in EIE).
"""
