# amaranth: UnusedElaboratable=no
"""ESE images: round trip of random LSTMs, refusals between the two formats and of corrupt manifests."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eie.sim.random_lstm import random_lstm
from eie.sim.random_net import random_network
from eie.spec.config import EIEConfig
from eie.spec.emit import FitError, write_images
from eie.spec.errors import ImageError
from eie.spec.ese import ESEConfig, gate_row_order
from eie.spec.ese_image import (
    LSTMImages,
    build_lstm_images,
    image_format,
    load_lstm_images,
    lstm_images_from_bytes,
    open_images,
    write_lstm_images,
)
from eie.spec.image import decode_layer, load_images

CONFIG = ESEConfig(n_pe=3, max_rows_per_pe=32, mat_depth=512, ptr_depth=256, bias_depth=128, act_depth=200,
                   max_layers=6)


def _dense(images, l):
    rows, cols, v = decode_layer(images, l)
    info = images.layers[l]
    w = np.zeros((info.n_out, info.n_in), dtype=np.int64)
    np.add.at(w, (rows, cols), v)
    return w


@given(seed=st.integers(0, 2 ** 16), n_pe=st.integers(1, 9), hidden=st.integers(1, 13), inputs=st.integers(1, 7),
       proj=st.integers(0, 4), head=st.lists(st.integers(1, 9), max_size=3), density=st.sampled_from([0.0, 0.1, 1.0]))
def test_random_lstms_round_trip(seed, n_pe, hidden, inputs, proj, head, density):
    config = CONFIG.replace(n_pe=n_pe, max_rows_per_pe=4 * -(-hidden // n_pe) + 8)
    net = random_lstm(seed, inputs, hidden, config, proj_size=proj, head=tuple(head), density=max(density, 1e-4))
    images = lstm_images_from_bytes(build_lstm_images(net, config), expect_config=config)
    assert isinstance(images, LSTMImages)
    order = gate_row_order(hidden, n_pe)
    gates = np.concatenate([_dense(images, 0), _dense(images, 1)], axis=1)
    assert np.array_equal(gates[order >= 0], net.gates.index[order[order >= 0]])
    assert not gates[order < 0].any()
    for l, layer in enumerate(([net.proj] if proj else []) + list(net.head), start=2):
        assert np.array_equal(_dense(images, l), layer.index)
    assert images.n_in == inputs and images.n_out == net.n_out and images.lstm.h_shift == net.h_shift(16)


@pytest.fixture
def lstm_dir(tmp_path):
    return write_lstm_images(random_lstm(0, 4, 5, CONFIG, head=(3,)), CONFIG, tmp_path / "lstm")


def test_each_format_refuses_the_other(lstm_dir, tmp_path):
    eie_config = EIEConfig(n_pe=3)
    eie_dir = write_images(random_network(0, [6, 4], eie_config), eie_config, tmp_path / "mlp")
    with pytest.raises(ImageError, match=r"^the images in .*lstm are ese-images for the ESE array \(an LSTM\), not "
                                         r"eie-images for the EIE array \(an MLP\); run them on the ESE array"):
        load_images(lstm_dir)
    with pytest.raises(ImageError, match=r"^the images in .*mlp are eie-images for the EIE array \(an MLP\), not "
                                         r"ese-images"):
        load_lstm_images(eie_dir)
    assert image_format(lstm_dir) == "ese-images" and image_format(eie_dir) == "eie-images"
    assert isinstance(open_images(lstm_dir), LSTMImages) and not isinstance(open_images(eie_dir), LSTMImages)
    with pytest.raises(ImageError, match=r"were made for configuration \w+ but the hardware is \w+"):
        load_lstm_images(lstm_dir, expect_config=CONFIG.replace(nl_bits=8))


def test_the_hardware_refuses_the_other_formats_images(lstm_dir, tmp_path):
    from eie.hw.accelerator import EIEAccelerator
    from eie.hw.ese_accelerator import ESEAccelerator
    lstm = load_lstm_images(lstm_dir)
    eie_config = EIEConfig(n_pe=3)
    mlp = load_images(write_images(random_network(0, [6, 4], eie_config), eie_config, tmp_path / "mlp"))
    with pytest.raises(ValueError, match=r"^images were made for configuration \w+ but the hardware configuration"):
        EIEAccelerator(config=EIEConfig(**{k: v for k, v in CONFIG.to_dict().items()
                                           if k not in ("act_depth", "nl_bits")}), images=lstm)
    with pytest.raises(ValueError, match=r"^these are eie-images for the EIE array \(an MLP\); the ESE array runs "
                                         r"ese-images \(an LSTM\)$"):
        ESEAccelerator(config=ESEConfig(n_pe=3), images=mlp)
    with pytest.raises(TypeError, match=r"^config must be an ESEConfig"):
        ESEAccelerator(config=eie_config)


def _edit(path, change):
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("change, match", [
    (lambda m: m["lstm"]["layout"].update(x_base=7), r"^manifest.json: layout .* differs from the format's"),
    (lambda m: m["lstm"].update(h_shift=40), r"^manifest.json: h_shift 40 outside 1\.\.28$"),
    (lambda m: m["lstm"].update(n_head=0), r"^manifest.json: layer roles .* do not match the lstm section"),
    (lambda m: m["lstm"].pop("hidden_size"), r"^manifest.json: missing or malformed lstm field 'hidden_size'$"),
    (lambda m: m["layers"][1].update(shift=m["layers"][1]["shift"] + 1),
     r"^manifest.json: gates_x and gates_h need the same shift and no ReLU$"),
    (lambda m: m["lstm"].update(hidden_size=6), r"^manifest.json: gate layers 24x4 and 24x5; 6 units on 3 PEs need "
                                                r"24x4 and 24x6$"),
])
def test_corrupt_lstm_manifests_are_refused_in_one_line(lstm_dir, change, match):
    _edit(lstm_dir, lambda m: (change(m), m.update(config_hash=m["config_hash"])))
    with pytest.raises(ImageError, match=match):
        load_lstm_images(lstm_dir)


def test_the_lstm_must_fit(tmp_path):
    net = random_lstm(0, 4, 9, CONFIG, density=1.0)
    with pytest.raises(FitError, match=r"^the model does not fit: sparse-matrix SRAM needs \d+ words"):
        write_lstm_images(net, CONFIG.replace(mat_depth=4), tmp_path / "img")
    assert not (tmp_path / "img").exists()


def test_images_are_deterministic(tmp_path):
    net = random_lstm(3, 4, 7, CONFIG, proj_size=2, head=(5, 2), every_step=True)
    a = build_lstm_images(net, CONFIG)
    b = build_lstm_images(random_lstm(3, 4, 7, CONFIG, proj_size=2, head=(5, 2), every_step=True), CONFIG)
    assert a == b
