"""Widths, payload layouts and small signatures shared by the EIE components.

Everything here is derived from an :class:`~eie.spec.config.EIEConfig`; no component invents a width
of its own, so two units that exchange a payload always agree on its layout.
"""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import Out

from eie.spec.config import EIEConfig

__all__ = [
    "check_config", "ConfiguredComponent", "bits_for", "Widths", "activation_layout", "job_layout",
    "entry_layout", "layer_layout", "WritePortSignature",
]


def check_config(config) -> EIEConfig:
    """Return ``config`` if it is an :class:`EIEConfig`; raise :class:`TypeError` otherwise."""
    if not isinstance(config, EIEConfig):
        raise TypeError(f"config must be an EIEConfig, not {config!r}")
    return config


class ConfiguredComponent(wiring.Component):
    """Base of the components built for one :class:`EIEConfig`, exposed read-only as ``config``.

    Subclasses validate with :func:`check_config`, store ``self._config`` and call
    ``super().__init__(signature)`` last.
    """

    @property
    def config(self) -> EIEConfig:
        return self._config


def bits_for(n: int) -> int:
    """Bits of an unsigned signal holding ``0 .. n-1`` (at least 1, so no port is 0 bits wide)."""
    if n < 1:
        raise ValueError(f"bits_for needs a count >= 1, not {n}")
    return max(1, (n - 1).bit_length())


class Widths:
    """The signal widths of one configuration.

    Attributes
    ----------
    act_index : int
        Global activation index ``j`` (``0 .. max_width-1``).
    count : int
        A layer's ``n_in`` or ``n_out`` (``0 .. max_width``).
    scan : int
        The source scanner's running ``j``, which overshoots ``n_in`` by up to ``n_pe``.
    row : int
        A PE-local row or activation address (``0 .. max_rows_per_pe-1``).
    ptr_addr, mat_addr, bias_addr : int
        Addresses of the pointer (both banks together), sparse-matrix and bias SRAMs.
    shift : int
        A requantisation shift (``0 .. max_shift``).
    lane : int
        An entry's position inside a sparse-matrix word.
    layer : int
        A layer number (``0 .. max_layers-1``).
    n_layers : int
        A layer count (``0 .. max_layers``).
    """

    def __init__(self, config: EIEConfig):
        c = config
        self.act_index = bits_for(c.max_width)
        self.count = bits_for(c.max_width + 1)
        self.scan = bits_for(c.max_width + c.n_pe + 1)
        self.row = bits_for(c.max_rows_per_pe)
        self.ptr_addr = bits_for(c.ptr_depth)
        self.mat_addr = bits_for(c.mat_depth)
        self.bias_addr = bits_for(c.bias_depth)
        self.shift = bits_for(c.max_shift + 1)
        self.lane = bits_for(c.entries_per_word)
        self.layer = bits_for(c.max_layers)
        self.n_layers = bits_for(c.max_layers + 1)


def activation_layout(act_bits: int, index_width: int) -> data.StructLayout:
    """A broadcast activation: its value and its global index ``j``."""
    return data.StructLayout({"value": signed(act_bits), "index": unsigned(index_width)})


def job_layout(config: EIEConfig) -> data.StructLayout:
    """A column job: the pointers ``P[j]``, ``P[j+1]`` and the activation ``a_j``."""
    return data.StructLayout({
        "start": unsigned(config.ptr_bits),
        "end": unsigned(config.ptr_bits),
        "value": signed(config.act_bits),
    })


def entry_layout(config: EIEConfig) -> data.StructLayout:
    """One sparse-matrix entry on its way to the arithmetic unit: ``z`` is its relative row index
    with the padding entries before it folded in (see the sparse-matrix read unit), so it is as
    wide as a row address (or ``index_bits``, if wider); the arithmetic unit's row arithmetic is
    modulo ``2**row``, so a wider ``z`` would change nothing."""
    return data.StructLayout({
        "v": unsigned(config.weight_bits),
        "z": unsigned(max(config.index_bits, Widths(config).row)),
        "first": unsigned(1),
        "act": signed(config.act_bits),
    })


def layer_layout(config: EIEConfig) -> data.StructLayout:
    """One row of the layer table, as the control unit hands it to the PEs."""
    w = Widths(config)
    return data.StructLayout({
        "n_in": unsigned(w.count),
        "n_out": unsigned(w.count),
        "ptr_base": unsigned(w.ptr_addr),
        "bias_base": unsigned(w.bias_addr),
        "shift": unsigned(w.shift),
        "relu": unsigned(1),
    })


class WritePortSignature(wiring.Signature):
    """A memory write request: ``en``, ``addr``, ``data`` (all driven by the writer).

    Components take it as ``In(WritePortSignature(...))``: the write lands at the end of the
    cycle in which ``en`` is high.
    """

    def __init__(self, addr_width: int, data_shape):
        super().__init__({"en": Out(1), "addr": Out(addr_width), "data": Out(data_shape)})
