"""Images round-trip: matrices and codebooks -> images -> decode -> identical matrices."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eie.spec.config import EIEConfig
from eie.spec.emit import write_images
from eie.spec.image import decode_layer, encode_layer, load_images, pack_entries, unpack_entries
from eie.spec.network import QuantizedLayer, QuantizedNetwork


def _net(index_mats, config, seed=0):
    rng = np.random.default_rng(seed)
    layers = []
    for l, idx in enumerate(index_mats):
        cb = np.concatenate(([0], rng.integers(1, 200, config.codebook_size - 1)))
        layers.append(QuantizedLayer(index=idx.astype(np.uint8), codebook=cb,
                                     bias=rng.integers(-1000, 1000, idx.shape[0]), shift=4,
                                     relu=l < len(index_mats) - 1))
    return QuantizedNetwork(layers=tuple(layers))


def _decoded_index(images, l):
    info = images.layers[l]
    rows, cols, v = decode_layer(images, l)
    out = np.zeros((info.n_out, info.n_in), dtype=np.int64)
    stored = v > 0
    assert np.all(out[rows[stored], cols[stored]] == 0), "a weight decoded twice"
    out[rows[stored], cols[stored]] = v[stored]
    return out


def test_paper_example_column_encodes_with_one_padding_entry():
    config = EIEConfig(n_pe=1)
    column = np.zeros((23, 1), dtype=np.uint8)
    column[2], column[3], column[22] = 1, 2, 3
    enc = encode_layer(column, config)[0]
    assert enc.v.tolist() == [1, 2, 0, 3]
    assert enc.z.tolist() == [2, 0, 15, 2]
    assert enc.ptr.tolist() == [0, 4]


@pytest.mark.parametrize("gap", [15, 16, 31, 32, 33, 47, 48, 100])
def test_zero_runs_beyond_index_range_pad_exactly(gap):
    config = EIEConfig(n_pe=1, max_rows_per_pe=256)
    col = np.zeros((gap + 1, 1), dtype=np.uint8)
    col[gap] = 5
    enc = encode_layer(col, config)[0]
    assert enc.v.tolist() == [0] * (gap // 16) + [5]
    assert enc.z.tolist() == [15] * (gap // 16) + [gap % 16]


def test_pack_unpack_inverse_for_wide_words():
    config = EIEConfig(n_pe=1, entries_per_word=16, weight_bits=5, index_bits=5, mat_depth=64)
    assert config.word_bits > 64
    rng = np.random.default_rng(1)
    v, z = rng.integers(0, 32, 37), rng.integers(0, 32, 37)
    entries = unpack_entries(pack_entries(v, z, config), config)
    assert entries[:37].tolist() == ((z << 5) | v).tolist()
    assert not entries[37:].any()


@given(n_pe=st.integers(1, 64), n_in=st.integers(1, 24), n_out=st.integers(1, 90),
       density=st.sampled_from([0.0, 0.02, 0.1, 0.5, 1.0]), index_bits=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_random_sparse_layers_roundtrip_through_images(tmp_path_factory, n_pe, n_in, n_out, density,
                                                      index_bits, seed):
    config = EIEConfig(n_pe=n_pe, index_bits=index_bits, max_rows_per_pe=max(90 // n_pe + 1, 24),
                       mat_depth=512, ptr_depth=256, bias_depth=256)
    rng = np.random.default_rng(seed)
    a = np.where(rng.random((n_out, n_in)) < density, rng.integers(1, 16, (n_out, n_in)), 0)
    b = np.where(rng.random((7, n_out)) < density, rng.integers(1, 16, (7, n_out)), 0)
    a[:, rng.random(n_in) < 0.3] = 0           # empty columns
    net = _net([a, b], config, seed)
    out = write_images(net, config, tmp_path_factory.mktemp("img") / "img")
    images = load_images(out, expect_config=config)
    assert np.array_equal(_decoded_index(images, 0), a)
    assert np.array_equal(_decoded_index(images, 1), b)
    assert np.array_equal(images.codebook[0], net.layers[0].codebook)


def test_pes_without_rows_get_empty_slices(tmp_path):
    config = EIEConfig(n_pe=64)
    a = np.ones((3, 5), dtype=np.uint8)        # rows for PEs 0..2 only
    images = load_images(write_images(_net([a], config), config, tmp_path / "img"))
    assert images.manifest["layers"][0]["entries_per_pe"][3:] == [0] * 61
    assert np.array_equal(_decoded_index(images, 0), a)


def test_emission_is_byte_identical_for_identical_inputs(tmp_path):
    config = EIEConfig(n_pe=3)
    rng = np.random.default_rng(5)
    a = np.where(rng.random((40, 30)) < 0.2, rng.integers(1, 16, (40, 30)), 0)
    first = write_images(_net([a], config), config, tmp_path / "a")
    second = write_images(_net([a], config), config, tmp_path / "b")
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
