"""Huffman coding of a symbol stream (Deep Compression's last stage): code lengths and bit counts.

Only sizes are needed, so no bit string is produced. Ties between equal frequencies are broken
deterministically: leaves rank by symbol value, merged nodes after all leaves in creation order.

What is counted: :func:`huffman_bits` is the payload, ``Σ frequency × code length``.
:func:`table_bits` is the cost of sending the code itself as a canonical Huffman code, which the
decoder rebuilds from the code length of every symbol of the alphabet: one fixed-width field per
symbol (0 = unused symbol), the field ``max_length.bit_length()`` bits wide.

A stream with a single distinct symbol gets a 1-bit code (a real bit stream needs one bit per
symbol to be decodable without a separate count).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

import numpy as np

__all__ = ["code_lengths", "huffman_bits", "table_bits", "fixed_length_bits"]


def code_lengths(frequencies: Mapping[int, int]) -> dict[int, int]:
    """Huffman code length of every symbol with a positive frequency.

    Parameters
    ----------
    frequencies : mapping of int to int
        Symbol → count. Symbols with count 0 are ignored.

    Returns
    -------
    dict of int to int
        Symbol → code length in bits (empty for an empty input).
    """
    symbols = sorted(s for s, f in frequencies.items() if f > 0)
    if len(symbols) <= 1:
        return {s: 1 for s in symbols}
    lengths = dict.fromkeys(symbols, 0)
    heap = [(int(frequencies[s]), rank, [s]) for rank, s in enumerate(symbols)]
    heapq.heapify(heap)
    next_rank = len(symbols)
    while len(heap) > 1:
        f1, _, leaves1 = heapq.heappop(heap)
        f2, _, leaves2 = heapq.heappop(heap)
        for s in leaves1 + leaves2:
            lengths[s] += 1
        heapq.heappush(heap, (f1 + f2, next_rank, leaves1 + leaves2))
        next_rank += 1
    return lengths


def _frequencies(symbols) -> dict[int, int]:
    values, counts = np.unique(np.asarray(symbols).reshape(-1), return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


def huffman_bits(symbols) -> int:
    """Total bits of ``symbols`` (any integer array-like) Huffman-coded, table excluded."""
    freqs = _frequencies(symbols)
    lengths = code_lengths(freqs)
    return sum(freqs[s] * lengths[s] for s in freqs)


def table_bits(symbols, alphabet_size: int) -> int:
    """Bits of the canonical Huffman table for ``symbols`` over an alphabet of ``alphabet_size``."""
    lengths = code_lengths(_frequencies(symbols))
    if not lengths:
        return 0
    return alphabet_size * max(lengths.values()).bit_length()


def fixed_length_bits(symbols, alphabet_size: int) -> int:
    """Bits of ``symbols`` at a fixed ``ceil(log2(alphabet_size))`` bits each (at least one)."""
    return int(np.asarray(symbols).size) * max(1, (alphabet_size - 1).bit_length())
