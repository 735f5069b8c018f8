"""compress.storage: paper-style stage sizes and EIE footprint on hand-computed examples."""

import numpy as np
import pytest

from eie.compress.quantize import SharedLayer
from eie.compress.storage import eie_footprint, encode_entries, storage_report
from eie.spec.config import EIEConfig
from eie.spec.errors import CompressError

# 6 x 2 layer, 2-bit weights, 2-bit relative indices (M = 3). Column 0: rows 0 and 5 (gap 4 > 3:
# one filler); column 1: row 2.
INDEX = np.array([[1, 0], [0, 0], [0, 2], [0, 0], [0, 0], [3, 0]], dtype=np.uint8)
LAYER = SharedLayer(index=INDEX, centroids=np.array([0.0, -0.5, 0.25, 0.75]), bias=np.zeros(6), relu=False,
                    name="fc")


def test_entries_of_the_hand_example():
    enc = encode_entries(INDEX, index_bits=2)
    assert (enc.blocks, enc.fillers, enc.n_columns) == (3, 1, 2)
    assert sorted(enc.v.tolist()) == [0, 1, 2, 3]
    assert sorted(enc.z.tolist()) == [0, 0, 2, 3]


def test_paper_example_column():
    column = np.array([0, 0, 1, 2] + [0] * 18 + [3], dtype=np.uint8)[:, None]
    enc = encode_entries(column, index_bits=4)
    assert sorted(enc.v.tolist()) == sorted([1, 2, 0, 3])
    assert sorted(enc.z.tolist()) == sorted([2, 0, 15, 2])


def test_stage_sizes_of_the_hand_example():
    report = storage_report([LAYER], index_bits=2)
    by_name = {s.name: s for s in report.stages}
    dense = (12 + 6) * 32
    # 4 entries (3 + 1 filler); pointers: 3 of bit_length(4) = 3 bits; biases 6 x 32.
    assert by_name["dense"].total_bits == dense
    assert by_name["pruned"].total_bits == 4 * 32 + 4 * 2 + 3 * 3 + 192
    assert by_name["shared"].total_bits == 4 * 2 + 4 * 2 + 3 * 3 + 4 * 32 + 192
    # v = {0,1,2,3} once each: 2 bits each; z = {0: 2, 2: 1, 3: 1}: lengths 1, 2, 2.
    # Tables: 4 symbols x 2 bits (longest code 2) for each stream.
    huffman = by_name["huffman"]
    assert (huffman.weight_bits, huffman.sparse_index_bits, huffman.huffman_table_bits) == (8, 6, 16)
    assert huffman.total_bits == 8 + 6 + 16 + 9 + 128 + 192
    assert report.ratio == pytest.approx(dense / huffman.total_bits)
    assert [(l.nnz, l.blocks, l.fillers, l.pointer_width) for l in report.layers] == [(3, 3, 1, 3)]
    assert report.rows()[0]["stage"] == "dense"


def test_fixed_pointer_width():
    assert storage_report([LAYER], index_bits=2, ptr_bits=16).stage("pruned").pointer_bits == 3 * 16


def test_vector_granularity_stores_one_index_per_block():
    index = np.zeros((2, 8), dtype=np.uint8)
    index[0, :4] = [1, 2, 3, 1]
    index[1, 4:] = [2, 2, 1, 3]
    enc = encode_entries(index, index_bits=2, group=(1, 4))
    assert (enc.blocks, enc.fillers, enc.n_columns) == (2, 0, 2)
    assert enc.v.size == 8 and sorted(enc.z.tolist()) == [0, 1]
    layer = SharedLayer(index=index, centroids=np.arange(4.0), bias=np.zeros(2), relu=False, name="v")
    assert storage_report([layer], index_bits=2, group=(1, 4)).stage("shared").sparse_index_bits == 2 * 2


def test_load_balanced_rows_are_taken_pe_by_pe():
    index = np.array([[1], [0], [1], [0]], dtype=np.uint8)
    assert sorted(encode_entries(index, 2).z.tolist()) == [0, 1]
    assert sorted(encode_entries(index, 2, n_pe=2).z.tolist()) == [0, 0]


def test_eie_footprint_of_the_hand_example():
    config = EIEConfig(n_pe=2, weight_bits=2, index_bits=2, entries_per_word=4)
    fp = eie_footprint([LAYER], config)
    # PE 0 (rows 0, 2, 4): 2 entries; PE 1 (rows 1, 3, 5): row 5 is local row 2, no padding.
    assert fp.entries_per_pe == [2, 1]
    assert fp.matrix_bits == 2 * 16           # one 16-bit word per PE
    assert fp.pointer_bits == 2 * 3 * 16      # n_in + 1 pointers per PE
    assert fp.codebook_bits == 4 * 16
    assert fp.bias_bits == 2 * 3 * 40         # ceil(6 / 2) bias slots per PE
    assert fp.total_bytes == (32 + 96 + 64 + 240) / 8
    assert fp.ratio == pytest.approx(576 / 432)
    assert fp.load_balance == pytest.approx(0.75)


def test_footprint_rejects_other_weight_bits():
    with pytest.raises(CompressError, match=r"^the network was quantised with weight_bits=2 but the hardware "
                                            r"has weight_bits=4"):
        eie_footprint([LAYER], EIEConfig())
