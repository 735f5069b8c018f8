"""The EIE PE array in Amaranth HDL: one component per unit of the paper.

==================================== =========================================================
module                               unit
==================================== =========================================================
:mod:`hw.config`                     :class:`EIEConfig`, the parameters shared with the images
:mod:`hw.layouts`                    widths and payload layouts derived from a configuration
:mod:`hw.activation_queue`           activation FIFO of a PE
:mod:`hw.lnzd`                       leading non-zero detector quadtree
:mod:`hw.pointer_read`               even/odd pointer SRAM banks
:mod:`hw.sparse_matrix_read`         job FIFO and sparse-matrix SRAM, one entry per cycle
:mod:`hw.arithmetic_unit`            codebook, address accumulation, MAC, hazard bypass
:mod:`hw.requantize`                 bias, rounding shift, saturation, ReLU
:mod:`hw.activation_rw`              ping-pong activation register files, scanner, biases
:mod:`hw.pe`                         one processing element
:mod:`hw.accelerator`                central control, LNZD, broadcast, I/O mode: the top level
:mod:`hw.io_map`                     ``cfg`` address map and image loading writes
:mod:`hw.generate`, :mod:`hw.synth`  Verilog generation, ECP5 synthesis smoke check
:mod:`hw.testing`                    simulator helpers for the tests
==================================== =========================================================

Data path of one layer (latencies in cycles)::

    source scan (1 read/cycle/PE, zeros dropped) -> LNZD (comb) -> broadcast register (1)
      -> activation queue (2) -> pointer read (1) -> job FIFO (1) -> issue (1)
      -> sparse-matrix SRAM + lane register (2) -> arithmetic unit (write at +3)
    write-back: clear/read accumulator (4) -> requantiser (2) -> destination write (1)

Each PE sustains one MAC per cycle while its queue holds activations whose columns are not
empty; the broadcast delivers one non-zero activation per cycle and costs nothing for zeros.
"""
