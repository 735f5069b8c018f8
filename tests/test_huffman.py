"""compress.huffman: Kraft equality, optimality bounds, deterministic ties, what is counted."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eie.compress.huffman import code_lengths, fixed_length_bits, huffman_bits, table_bits

frequencies = st.dictionaries(st.integers(0, 255), st.integers(1, 10_000), min_size=2, max_size=40)


@given(frequencies)
def test_code_lengths_satisfy_kraft_with_equality(freqs):
    lengths = code_lengths(freqs)
    assert set(lengths) == set(freqs)
    assert sum(Fraction(1, 2 ** l) for l in lengths.values()) == 1


@given(frequencies)
def test_average_length_is_within_one_bit_of_the_entropy(freqs):
    lengths = code_lengths(freqs)
    total = sum(freqs.values())
    p = np.array([freqs[s] / total for s in freqs])
    average = sum(freqs[s] * lengths[s] for s in freqs) / total
    entropy = float(-(p * np.log2(p)).sum())
    assert entropy - 1e-9 <= average < entropy + 1


def test_known_code_and_bit_count():
    # a:45 b:13 c:12 d:16 e:9 f:5 (CLRS): lengths 1,3,3,3,4,4 -> 224 bits
    symbols = np.repeat(np.arange(6), [45, 13, 12, 16, 9, 5])
    freqs = dict(enumerate([45, 13, 12, 16, 9, 5]))
    assert code_lengths(freqs) == {0: 1, 1: 3, 2: 3, 3: 3, 4: 4, 5: 4}
    assert huffman_bits(symbols) == 224
    assert table_bits(symbols, 16) == 16 * 3     # 16 lengths of 3 bits (longest code 4 = 0b100)


def test_skewed_stream_beats_fixed_length():
    symbols = np.random.default_rng(0).geometric(0.5, size=10_000).clip(max=15)
    assert huffman_bits(symbols) + table_bits(symbols, 16) < 0.6 * fixed_length_bits(symbols, 16)


def test_ties_are_broken_deterministically():
    freqs = {3: 5, 1: 5, 2: 5, 0: 5, 7: 5}
    assert code_lengths(freqs) == code_lengths(dict(reversed(list(freqs.items()))))
    assert code_lengths(freqs) == {0: 3, 1: 3, 2: 2, 3: 2, 7: 2}


@pytest.mark.parametrize("symbols, bits", [([], 0), ([4, 4, 4], 3)])
def test_degenerate_streams(symbols, bits):
    assert huffman_bits(symbols) == bits
