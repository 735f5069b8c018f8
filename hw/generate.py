"""Verilog generation for :class:`~eie.hw.accelerator.EIEAccelerator` and
:class:`~eie.hw.ese_accelerator.ESEAccelerator`."""

from __future__ import annotations

import contextlib
import re

from amaranth.back import rtlil, verilog

from eie.hw.accelerator import EIEAccelerator
from eie.spec.config import EIEConfig
from eie.spec.ese import ESEConfig

__all__ = ["generate_verilog", "add_preload", "register_reset", "PRELOAD_PLUSARG", "PRELOAD_FILES"]

#: Plus-argument naming the directory a preloading simulation fills the PEs' memories from.
PRELOAD_PLUSARG = "eie_preload"
#: ``{(PE unit, memory): file kind}`` of the memories :func:`add_preload` fills; PE ``p`` reads
#: ``pe<p:03d>.<kind>.hex`` (``$readmemh`` text from address 0, see :func:`eie.tb.runner.write_preload`).
PRELOAD_FILES = {("matrix_read", "mem"): "mat", ("pointer_read", "even_bank"): "ptr_even",
                 ("pointer_read", "odd_bank"): "ptr_odd", ("activation_rw", "bias"): "bias"}


@contextlib.contextmanager
def _no_zero_memory_init():
    """Leave memories whose initial contents are all zero without an initialiser.

    Amaranth 0.5 writes every memory's initial contents bit by bit, zeros included: for the
    64-PE array with EIE-sized SRAMs that is ~110 M bits, six minutes of Python and 118 MB of
    ``initial`` statements, which Verilator then compiles. Verilator's two-state model starts
    every variable at zero anyway, so for a Verilator build the all-zero initialisers say nothing.
    """
    emit = rtlil.ModuleEmitter.emit_memory

    def emit_nonzero(self, cell_idx, cell):
        if any(cell.init):
            emit(self, cell_idx, cell)

    rtlil.ModuleEmitter.emit_memory = emit_nonzero
    try:
        yield
    finally:
        rtlil.ModuleEmitter.emit_memory = emit


def generate_verilog(config: EIEConfig, images=None, name: str = "eie_top", *,
                     zero_init: bool = True) -> str:
    """Verilog of the accelerator for ``config`` (memories initialised from ``images`` if given): the
    EIE array, or the ESE array for an :class:`~eie.spec.ese.ESEConfig`.

    Deterministic: the same configuration and images give byte-identical text on any machine
    (source-location attributes, which would embed the checkout path, are left out).

    ``zero_init=False`` leaves memories whose initial contents are all zero without an
    initialiser: for simulators that start every variable at zero (Verilator), where it makes
    generation several times faster and the text many times smaller. Simulators with four-state
    logic or synthesis need the default.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`EIEConfig`.
    ValueError
        ``images`` were made for another configuration, or ``name`` is not a Verilog identifier.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be a Verilog identifier, not {name!r}")
    if isinstance(config, ESEConfig):       # an ESE array (LSTM images)
        from eie.hw.ese_accelerator import ESEAccelerator
        top = ESEAccelerator(config=config, images=images)
    else:
        top = EIEAccelerator(config=config, images=images)
    with contextlib.nullcontext() if zero_init else _no_zero_memory_init():
        return verilog.convert(top, name=name, emit_src=False)


def add_preload(text: str, name: str = "eie_top", *, n_pe: int) -> str:
    """Verilog ``text`` of the simulated EIE array (:func:`register_reset`'s wrapper ``name``
    around the core instance ``core``) whose PE memories can be filled at time 0 from files.

    The wrapper gets one ``initial`` block that, when the simulation is started with
    ``+eie_preload=DIR``, reads ``DIR/pe<p:03d>.<kind>.hex`` into each memory of
    :data:`PRELOAD_FILES` of each of the ``n_pe`` PEs with ``$readmemh`` (hierarchical
    references: the PE modules stay as generated);
    without the plus-argument nothing happens, so one build serves both ways of loading and the
    images need not be known when building. Only for simulation (``$value$plusargs``, ``string``).

    Raises
    ------
    ValueError
        ``text`` has no wrapper ``name`` instantiating ``core``, the core lacks one of the
        ``n_pe`` PEs, or a PE unit lacks a memory of :data:`PRELOAD_FILES` (the hardware renamed
        it).
    """
    core = _module(text, f"{name}__core")
    wrapper = _module(text, name)
    if core is None or wrapper is None or " core (" not in wrapper.group(0):
        raise ValueError(f"no wrapper {name} around {name}__core (see register_reset)")
    for p in range(n_pe):
        if f" pe{p} (" not in core.group(0):
            raise ValueError(f"{name}__core has no PE instance pe{p}")
    for unit, mem in PRELOAD_FILES:
        pe_unit = re.search(rf"^module \\{re.escape(name)}\.pe\d+\.{unit} .*?^endmodule", text, re.M | re.S)
        if pe_unit is None or not re.search(rf"^  reg \[\d+:0\] {mem} \[\d+:0\];$", pe_unit.group(0), re.M):
            raise ValueError(f"the PEs' {unit} has no memory {mem!r} to preload")
    reads = "".join(f"      $readmemh({{dir, \"/pe{p:03d}.{kind}.hex\"}}, core.pe{p}.{unit}.{mem});\n"
                    for p in range(n_pe) for (unit, mem), kind in PRELOAD_FILES.items())
    block = (f"  initial begin : preload\n"
             f"    string dir;\n"
             f"    if ($value$plusargs(\"{PRELOAD_PLUSARG}=%s\", dir)) begin\n{reads}    end\n"
             f"  end\n")
    at = wrapper.end() - len("endmodule\n")
    return text[:at] + block + text[at:]


def _module(text: str, name: str):
    """The match of module ``name`` (plain identifier) from ``module`` to ``endmodule``."""
    return re.search(rf"^module {re.escape(name)}\(.*?^endmodule\n", text, re.M | re.S)


def register_reset(text: str, name: str = "eie_top") -> str:
    """Verilog ``text`` whose top module ``name`` sees its ``rst`` input through a register.

    The module ``name`` becomes ``<name>__core``, and a new ``name`` with the same ports
    instantiates it, passing ``rst`` through one flip-flop (initially set, so the core is in
    reset until the first clock edge after the testbench releases ``rst``). For Verilator:
    ``rst`` feeds the reset multiplexer of nearly every register, and Verilator re-evaluates
    all logic that depends on a top-level input on every ``eval()`` (twice per clock cycle);
    behind a register it is evaluated once per cycle, after the clock edge. The core leaves
    reset one cycle later; nothing else changes.

    Raises
    ------
    ValueError
        ``text`` has no module ``name`` with a one-bit ``rst`` and a ``clk`` input.
    """
    m = re.search(rf"^module {re.escape(name)}\((.*?)\);\n(.*?)^endmodule\n", text, re.M | re.S)
    if m is None:
        raise ValueError(f"no module {name} in the Verilog")
    decls = re.findall(r"^  (input|output)( \[\d+:0\])? (\S+);$", m.group(2), re.M)
    kinds = {port: (d, width) for d, width, port in decls}
    if kinds.get("rst") != ("input", "") or kinds.get("clk") != ("input", ""):
        raise ValueError(f"module {name} has no one-bit rst and clk inputs")
    core = f"{name}__core"
    lines = [f"module {name}({m.group(1)});"]
    lines += [f"  {d}{width} {port};" for d, width, port in decls]
    lines += ["  reg rst_q = 1'h1;", "  always @(posedge clk)", "    rst_q <= rst;"]
    conns = ", ".join(f".{port}({'rst_q' if port == 'rst' else port})" for _, _, port in decls)
    lines += [f"  {core} core ({conns});", "endmodule", ""]
    return text[:m.start()] + f"module {core}(" + text[m.start() + len(f"module {name}("):] + "\n".join(lines)
