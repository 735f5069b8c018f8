"""The I/O address map of :class:`~eie.hw.accelerator.EIEAccelerator` (its ``cfg`` port).

Pure Python apart from the Amaranth enum/layout definitions; the testbenches use it to load an
image directory through ``cfg`` (:func:`image_writes`, :func:`pack_cfg`).

``cfg`` payload (``CfgWrite``, a flat vector ``cfg__payload`` in Verilog), LSB first:

========= ================================ ==========================================
field     bits                             meaning
========= ================================ ==========================================
``space`` ``[0, 3)``                       :class:`Space`
``pe``    ``[3, 11)``                      PE number (PTR, MAT, BIAS; else ignored)
``addr``  ``[11, 11 + ADDR_W)``            address inside the space
``data``  ``[11 + ADDR_W, 11 + ADDR_W + DATA_W)`` the word; signed values as two's complement
                                           in the low bits
========= ================================ ==========================================

``ADDR_W`` = :func:`addr_width` and ``DATA_W`` = :func:`data_width` depend on the
configuration; :func:`cfg_fields` gives the bit positions.
"""

from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data, enum

from eie.hw.layouts import bits_for
from eie.spec.config import EIEConfig

__all__ = [
    "Space", "LayerField", "LAYER_STRIDE", "PE_BITS", "CONTROL_N_LAYERS",
    "addr_width", "data_width", "cfg_layout", "cfg_fields", "pack_cfg", "image_writes",
]


class Space(enum.IntEnum, shape=3):
    """Address spaces of the ``cfg`` port."""

    PTR = 0       #: pointer entry ``addr`` of PE ``pe`` (bank ``addr % 2``, word ``addr // 2``)
    MAT = 1       #: sparse-matrix word ``addr`` of PE ``pe``
    BIAS = 2      #: bias ``addr`` of PE ``pe`` (``acc_bits`` two's complement)
    CODEBOOK = 3  #: entry ``k`` of layer ``l`` at ``addr = l·2^weight_bits + k``
    LAYER = 4     #: layer-table field ``f`` of layer ``l`` at ``addr = l·LAYER_STRIDE + f``
    CONTROL = 5   #: ``addr`` 0 = number of layers


class LayerField(enum.IntEnum, shape=3):
    """Fields of one layer-table row (``Space.LAYER``)."""

    N_IN = 0
    N_OUT = 1
    PTR_BASE = 2
    BIAS_BASE = 3
    SHIFT = 4
    RELU = 5


LAYER_STRIDE = 8
PE_BITS = 8
CONTROL_N_LAYERS = 0


def addr_width(config: EIEConfig) -> int:
    """``ADDR_W``: enough for the deepest space."""
    return bits_for(max(config.ptr_depth, config.mat_depth, config.bias_depth,
                        config.max_layers * config.codebook_size,
                        config.max_layers * LAYER_STRIDE))


def data_width(config: EIEConfig) -> int:
    """``DATA_W = max(word_bits, acc_bits, ptr_bits, act_bits, 32)``."""
    return max(config.word_bits, config.acc_bits, config.ptr_bits, config.act_bits, 32)


def cfg_layout(config: EIEConfig) -> data.StructLayout:
    """The ``CfgWrite`` payload layout."""
    return data.StructLayout({
        "space": Space,
        "pe": unsigned(PE_BITS),
        "addr": unsigned(addr_width(config)),
        "data": unsigned(data_width(config)),
    })


def cfg_fields(config: EIEConfig) -> dict[str, tuple[int, int]]:
    """``{field: (lsb, width)}`` of the ``cfg`` payload."""
    layout = cfg_layout(config)
    return {name: (field.offset, field.width) for name, field in layout}


def pack_cfg(config: EIEConfig, space, pe: int, addr: int, data: int) -> int:
    """The ``cfg__payload`` integer of one write.

    ``data`` must already be non-negative (signed values as two's complement at their width).

    Raises
    ------
    ValueError
        A field does not fit.
    """
    fields = cfg_fields(config)
    out = 0
    for name, value in (("space", int(space)), ("pe", pe), ("addr", addr), ("data", data)):
        lsb, width = fields[name]
        if not 0 <= value < (1 << width):
            raise ValueError(f"cfg {name} {value} does not fit {width} unsigned bits")
        out |= value << lsb
    return out


def _twos(value: int, width: int) -> int:
    return int(value) & ((1 << width) - 1)


def image_writes(images, *, pe_memories: bool = True) -> list[tuple[Space, int, int, int]]:
    """Every ``cfg`` write that loads ``images`` (a :class:`eie.spec.image.Images`).

    Returns ``(space, pe, addr, data)`` tuples, data already in two's complement: per PE its
    pointers, sparse-matrix words and biases, then the codebooks, the layer table and finally
    the number of layers. With ``pe_memories=False`` the PEs' memories are left out (a simulation
    that initialised them from the image files, see :func:`eie.tb.runner.write_preload`).
    """
    c = images.config
    writes = []
    for p in range(c.n_pe if pe_memories else 0):
        writes += [(Space.PTR, p, a, int(x)) for a, x in enumerate(images.ptr[p])]
        writes += [(Space.MAT, p, a, int(x)) for a, x in enumerate(images.mat[p])]
        writes += [(Space.BIAS, p, a, _twos(x, c.acc_bits)) for a, x in enumerate(images.bias[p])]
    for l, row in enumerate(images.codebook):
        writes += [(Space.CODEBOOK, 0, l * c.codebook_size + k, _twos(x, c.act_bits))
                   for k, x in enumerate(row)]
    for l, info in enumerate(images.layers):
        fields = {LayerField.N_IN: info.n_in, LayerField.N_OUT: info.n_out,
                  LayerField.PTR_BASE: info.ptr_base, LayerField.BIAS_BASE: info.bias_base,
                  LayerField.SHIFT: info.shift, LayerField.RELU: int(bool(info.relu))}
        writes += [(Space.LAYER, 0, l * LAYER_STRIDE + int(f), int(v)) for f, v in fields.items()]
    writes.append((Space.CONTROL, 0, CONTROL_N_LAYERS, len(images.layers)))
    return writes
