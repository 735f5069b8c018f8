"""Storage accounting: Deep Compression's per-stage sizes and the EIE image footprint.

Paper-style stages (:func:`storage_report`), each for the whole network, biases included:

1. ``dense``: every weight and bias as fp32.
2. ``pruned``: the sparse matrix in compressed sparse column form with relative row indices
   (Deep Compression section 2): per stored entry an fp32 weight and an ``r``-bit relative index
   (the number of rows skipped since the previous entry of the column). A gap longer than
   ``2**r - 1`` is bridged by filler entries (a zero weight with relative index ``2**r - 1``), as in
   ``docs/image-format.md``. Each column has a pointer to its first entry (``n_in + 1`` per layer).
3. ``shared``: the same entries with a ``b``-bit codebook index instead of the fp32 weight, plus each
   layer's codebook of ``2**b`` fp32 values (slot 0, the zero, is counted too).
4. ``huffman``: the weight-index stream and the relative-index stream of each layer Huffman-coded
   separately, each with its canonical Huffman table (see :mod:`eie.compress.huffman`).

Biases are fp32 (32 bits) in every stage. Pointers are ``ptr_bits`` wide when given, otherwise the
fewest bits that hold the layer's entry count (``entries.bit_length()``, at least one).

Coarse granularities (Mao et al.) store one relative index per kept block: the matrix is treated as
a matrix of ``gh × gw`` blocks, columns are block columns, and every entry (filler or not) holds
``gh · gw`` weights (edge blocks padded to full size). With load-balance-aware pruning the rows are
taken PE by PE (PE ``p``'s rows ``p, p + n_pe, ...`` in order, blocks laid on each PE's rows, as the
pruning did); the stored matrix is the same, its rows relabelled.

:func:`eie_footprint` gives the bytes of the SRAM images for a given :class:`~eie.spec.config.EIEConfig`:
the used sparse-matrix words of every PE, every PE's pointers (``ptr_bits``), every PE's bias slots
(``acc_bits``) and the codebooks (``act_bits`` per slot), i.e. what the hardware really holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eie.compress.huffman import huffman_bits, table_bits
from eie.compress.prune import block_view, pe_rows
from eie.compress.quantize import SharedLayer
from eie.spec.config import EIEConfig
from eie.spec.errors import CompressError

__all__ = ["FLOAT_BITS", "Stage", "LayerStats", "StorageReport", "EIEFootprint", "encode_entries",
           "storage_report", "eie_footprint", "dense_bits"]

FLOAT_BITS = 32


@dataclass(frozen=True)
class Stage:
    """Bits of the whole network at one stage, by component."""

    name: str
    weight_bits: int
    sparse_index_bits: int
    pointer_bits: int
    codebook_bits: int
    huffman_table_bits: int
    bias_bits: int
    dense_bits: int

    @property
    def total_bits(self) -> int:
        return (self.weight_bits + self.sparse_index_bits + self.pointer_bits + self.codebook_bits
                + self.huffman_table_bits + self.bias_bits)

    @property
    def total_bytes(self) -> float:
        return self.total_bits / 8

    @property
    def ratio(self) -> float:
        """Compression ratio against the dense fp32 network."""
        return self.dense_bits / self.total_bits


@dataclass(frozen=True)
class LayerStats:
    """Sparse structure of one layer.

    Attributes
    ----------
    name : str
    n_weights : int
        ``out × in``.
    nnz : int
        Unpruned weights.
    blocks : int
        Stored blocks (``nnz`` for fine granularity).
    fillers : int
        Filler entries bridging long gaps.
    pointer_width : int
        Bits of one column pointer.
    """

    name: str
    n_weights: int
    nnz: int
    blocks: int
    fillers: int
    pointer_width: int

    @property
    def density(self) -> float:
        return self.nnz / self.n_weights

    @property
    def entries(self) -> int:
        return self.blocks + self.fillers


@dataclass(frozen=True)
class StorageReport:
    """Paper-style storage of a compressed network: stages ``dense, pruned, shared, huffman``."""

    stages: list[Stage]
    layers: list[LayerStats]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    @property
    def ratio(self) -> float:
        """Final (Huffman-coded) compression ratio against fp32."""
        return self.stages[-1].ratio

    def rows(self) -> list[dict]:
        """One dict per stage (name, component bits, total bytes, ratio) for printing as a table."""
        return [{"stage": s.name, "weights": s.weight_bits, "indices": s.sparse_index_bits,
                 "pointers": s.pointer_bits, "codebooks": s.codebook_bits,
                 "huffman tables": s.huffman_table_bits, "biases": s.bias_bits,
                 "bytes": s.total_bytes, "ratio": s.ratio} for s in self.stages]


@dataclass(frozen=True)
class Entries:
    """A layer in block-CSC form: weight-index and relative-index symbols of every stored entry."""

    v: np.ndarray
    z: np.ndarray
    blocks: int
    fillers: int
    n_columns: int


def encode_entries(index: np.ndarray, index_bits: int, group: tuple[int, int] = (1, 1),
                   n_pe: int | None = None) -> Entries:
    """Block-CSC symbols of one layer (order within the streams is irrelevant to their size).

    Parameters
    ----------
    index : numpy.ndarray
        ``(out, in)`` codebook indices, 0 = pruned.
    index_bits : int
        ``r``: relative indices up to ``2**r - 1``.
    group : (int, int)
        Block shape; a block is stored when any of its weights is unpruned.
    n_pe : int, optional
        Take rows PE by PE (load-balance-aware pruning).

    Returns
    -------
    Entries
        ``v`` holds ``gh · gw`` symbols per entry (fillers: zeros), ``z`` one per entry.
    """
    if not isinstance(index_bits, int) or index_bits < 1:
        raise CompressError(f"index_bits must be a positive integer, not {index_bits!r}")
    index = np.asarray(index)
    views = [block_view(index[rows], group) for rows in pe_rows(index.shape[0], n_pe)]
    blocks = np.concatenate(views, axis=0)
    stored = blocks.any(axis=2)
    cols, rows = np.nonzero(stored.T)
    first = np.ones(cols.size, dtype=bool)
    first[1:] = cols[1:] != cols[:-1]
    prev = np.concatenate(([-1], rows[:-1]))
    prev[first] = -1
    gap = rows - prev - 1
    period = 2 ** index_bits
    fillers = int((gap // period).sum())
    g = group[0] * group[1]
    v = np.concatenate((blocks[rows, cols].reshape(-1), np.zeros(fillers * g, dtype=blocks.dtype)))
    z = np.concatenate((gap % period, np.full(fillers, period - 1)))
    return Entries(v=v, z=z, blocks=int(rows.size), fillers=fillers, n_columns=stored.shape[1])


def dense_bits(layers: Sequence[SharedLayer]) -> int:
    """Bits of the network with every weight and bias in fp32."""
    return sum((layer.index.size + layer.index.shape[0]) * FLOAT_BITS for layer in layers)


def _weight_bits_of(layers: Sequence[SharedLayer]) -> int:
    sizes = {layer.centroids.size for layer in layers}
    b = int(np.log2(max(sizes)))
    if len(sizes) != 1 or 2 ** b != sizes.pop():
        raise CompressError("layers have codebooks of different or non-power-of-two sizes; quantise every "
                            "layer with the same weight_bits")
    return b


def storage_report(layers: Sequence[SharedLayer], *, index_bits: int = 4, group: tuple[int, int] = (1, 1),
                   n_pe: int | None = None, ptr_bits: int | None = None) -> StorageReport:
    """Deep Compression's storage of a pruned, weight-shared network at every stage.

    Parameters
    ----------
    layers : sequence of SharedLayer
    index_bits : int
        ``r``, bits of a relative index.
    group : (int, int)
        Pruning block shape (``(1, 1)`` for fine-grained).
    n_pe : int, optional
        PE count of load-balance-aware pruning (only changes the row order).
    ptr_bits : int, optional
        Width of a column pointer; default the fewest bits that hold the layer's entry count.

    Returns
    -------
    StorageReport
    """
    b = _weight_bits_of(layers)
    g = group[0] * group[1]
    dense = dense_bits(layers)
    bias = sum(layer.bias.size for layer in layers) * FLOAT_BITS
    codebooks = len(layers) * 2 ** b * FLOAT_BITS
    stats, entries, pointers, v_huff, z_huff, tables = [], 0, 0, 0, 0, 0
    for layer in layers:
        enc = encode_entries(layer.index, index_bits, group, n_pe)
        width = ptr_bits if ptr_bits is not None else max(1, (enc.blocks + enc.fillers).bit_length())
        stats.append(LayerStats(name=layer.name, n_weights=layer.index.size, nnz=layer.nnz,
                                blocks=enc.blocks, fillers=enc.fillers, pointer_width=width))
        entries += enc.blocks + enc.fillers
        pointers += (enc.n_columns + 1) * width
        v_huff += huffman_bits(enc.v)
        z_huff += huffman_bits(enc.z)
        tables += table_bits(enc.v, 2 ** b) + table_bits(enc.z, 2 ** index_bits)
    stages = [
        Stage("dense", dense - bias, 0, 0, 0, 0, bias, dense),
        Stage("pruned", entries * g * FLOAT_BITS, entries * index_bits, pointers, 0, 0, bias, dense),
        Stage("shared", entries * g * b, entries * index_bits, pointers, codebooks, 0, bias, dense),
        Stage("huffman", v_huff, z_huff, pointers, codebooks, tables, bias, dense),
    ]
    return StorageReport(stages=stages, layers=stats)


@dataclass(frozen=True)
class EIEFootprint:
    """Bits of the SRAM images of a network for one hardware configuration.

    Attributes
    ----------
    n_pe : int
    entries_per_pe : list of int
        Sparse-matrix entries (padding included) of each PE, all layers.
    matrix_bits, pointer_bits, codebook_bits, bias_bits : int
        Used bits of each memory, all PEs together.
    dense_bits : int
        The fp32 network, for :attr:`ratio`.
    """

    n_pe: int
    entries_per_pe: list[int]
    matrix_bits: int
    pointer_bits: int
    codebook_bits: int
    bias_bits: int
    dense_bits: int

    @property
    def total_bits(self) -> int:
        return self.matrix_bits + self.pointer_bits + self.codebook_bits + self.bias_bits

    @property
    def total_bytes(self) -> float:
        return self.total_bits / 8

    @property
    def ratio(self) -> float:
        return self.dense_bits / self.total_bits

    @property
    def load_balance(self) -> float:
        """Mean over max entries per PE (1.0 = every PE has the same work)."""
        return float(np.mean(self.entries_per_pe) / max(1, max(self.entries_per_pe)))


def eie_footprint(layers: Sequence[SharedLayer], config: EIEConfig) -> EIEFootprint:
    """Used bits of the EIE SRAM images of ``layers`` for ``config`` (see ``docs/image-format.md``)."""
    from eie.spec.image import encode_layer

    b = _weight_bits_of(layers)
    if b != config.weight_bits:
        raise CompressError(f"the network was quantised with weight_bits={b} but the hardware has "
                            f"weight_bits={config.weight_bits}; compress with the hardware's weight_bits")
    n = config.n_pe
    per_pe = np.zeros(n, dtype=np.int64)
    for layer in layers:
        per_pe += [enc.v.size for enc in encode_layer(np.asarray(layer.index), config)]
    words = -(-per_pe // config.entries_per_word)
    return EIEFootprint(
        n_pe=n,
        entries_per_pe=[int(e) for e in per_pe],
        matrix_bits=int(words.sum()) * config.word_bits,
        pointer_bits=n * sum(layer.index.shape[1] + 1 for layer in layers) * config.ptr_bits,
        codebook_bits=len(layers) * config.codebook_size * config.act_bits,
        bias_bits=n * sum(config.rows_per_pe(layer.index.shape[0]) for layer in layers) * config.acc_bits,
        dense_bits=dense_bits(layers))
