"""Bad configurations, models that do not fit, corrupt and mismatched images: one-line errors."""

import json

import numpy as np
import pytest

from eie.sim.random_net import random_network
from eie.spec.config import ConfigError, EIEConfig
from eie.spec.emit import FitError, write_images
from eie.spec.image import ImageError, load_images


@pytest.fixture
def images_dir(tmp_path):
    config = EIEConfig(n_pe=3)
    return write_images(random_network(0, [20, 30, 5], config), config, tmp_path / "img")


@pytest.mark.parametrize("kw, match", [
    ({"n_pe": 0}, r"^n_pe must be in 1\.\.256, not 0$"),
    ({"n_pe": 2.5}, r"^n_pe must be an integer, not 2\.5$"),
    ({"ptr_depth": 7}, r"^ptr_depth must be even"),
    ({"acc_bits": 20}, r"^acc_bits must be in 32\.\.62, not 20$"),
    ({"mat_depth": 9000}, r"cannot be addressed by 16-bit pointers; raise ptr_bits to 17"),
])
def test_invalid_configurations_are_rejected(kw, match):
    with pytest.raises((ConfigError, TypeError), match=match):
        EIEConfig(**kw)


def test_unknown_configuration_key_is_named():
    with pytest.raises(ConfigError, match=r"unknown hardware configuration key\(s\) n_pes"):
        EIEConfig.from_dict({"n_pes": 4})


def test_model_too_big_for_sram_reports_needed_and_available(tmp_path):
    config = EIEConfig(n_pe=2, mat_depth=16, ptr_depth=64, ptr_bits=16)
    net = random_network(0, [30, 40], config, density=0.9)
    with pytest.raises(FitError, match=r"the model does not fit: sparse-matrix SRAM needs \d+ words in "
                                       r"PE \d but mat_depth=16: raise mat_depth to \d+"):
        write_images(net, config, tmp_path / "img")
    assert not (tmp_path / "img").exists()
    assert list(tmp_path.iterdir()) == []


def test_layer_wider_than_register_files_is_rejected(tmp_path):
    config = EIEConfig(n_pe=2, max_rows_per_pe=8)
    with pytest.raises(ConfigError, match=r"need 10 rows per PE but max_rows_per_pe=8; raise "
                                          r"max_rows_per_pe to 10 or n_pe to 3"):
        write_images(random_network(0, [20, 4], config.replace(max_rows_per_pe=64)), config,
                     tmp_path / "img")


def test_existing_non_image_directory_is_not_overwritten(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "notes.txt").write_text("mine")
    config = EIEConfig(n_pe=1)
    with pytest.raises(FileExistsError, match=r"exists and is not an image directory"):
        write_images(random_network(0, [4, 4], config), config, tmp_path / "img")
    assert (tmp_path / "img" / "notes.txt").read_text() == "mine"


def test_rewriting_replaces_an_image_directory_completely(images_dir):
    config = EIEConfig(n_pe=1)
    write_images(random_network(1, [20, 5], config), config, images_dir)
    assert load_images(images_dir).config.n_pe == 1
    assert not (images_dir / "pe002.mat.hex").exists()


def test_corrupt_hex_file_is_named(images_dir):
    path = images_dir / "pe001.mat.hex"
    path.write_bytes(path.read_bytes().replace(b"0", b"1", 1))
    with pytest.raises(ImageError, match=r"^pe001\.mat\.hex: checksum [0-9a-f]{16}… does not match the "
                                         r"manifest"):
        load_images(images_dir)


def test_missing_file_is_named(images_dir):
    (images_dir / "pe002.bias.hex").unlink()
    with pytest.raises(ImageError, match=r"^pe002\.bias\.hex is missing"):
        load_images(images_dir)


def test_images_for_another_configuration_are_refused(images_dir):
    with pytest.raises(ImageError, match=r"were made for configuration [0-9a-f]{16} but the hardware is "
                                         r"[0-9a-f]{16}"):
        load_images(images_dir, expect_config=EIEConfig(n_pe=4))


def test_edited_manifest_configuration_is_detected(images_dir):
    m = json.loads((images_dir / "manifest.json").read_text())
    m["config"]["n_pe"] = 4
    (images_dir / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ImageError, match=r"config_hash [0-9a-f]{16} does not match its configuration"):
        load_images(images_dir)


def test_pointer_outside_layer_rows_is_detected(tmp_path):
    # A hand-made image whose relative indices walk past the PE's rows, with valid checksums.
    config = EIEConfig(n_pe=1)
    net = random_network(0, [3, 2], config, density=1.0)
    out = write_images(net, config, tmp_path / "img")
    m = json.loads((out / "manifest.json").read_text())
    import hashlib
    mat = out / "pe000.mat.hex"
    words = [int(x, 16) for x in mat.read_text().split()]
    words[0] |= 0xF0                       # z = 15 on the first entry: row 15 of a 2-row layer
    data = "".join(f"{w:016x}\n" for w in words).encode()
    mat.write_bytes(data)
    m["files"]["pe000.mat.hex"]["sha256"] = hashlib.sha256(data).hexdigest()
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ImageError, match=r"^pe000\.mat\.hex: layer 0 column 0 addresses local row 15 but "
                                         r"PE 0 has 2 rows in this layer$"):
        load_images(out)


def test_not_an_image_directory(tmp_path):
    with pytest.raises(ImageError, match=r"has no manifest\.json; it is not an image directory"):
        load_images(tmp_path)
    with pytest.raises(ImageError, match=r"does not exist; run eie compress first"):
        load_images(tmp_path / "nope")


def test_nan_free_but_mismatched_codebook_size_is_rejected(tmp_path):
    config = EIEConfig(n_pe=1)
    net = random_network(0, [4, 4], config)
    layer = net.layers[0]
    bad = type(net)(layers=(type(layer)(index=layer.index, codebook=np.zeros(8, dtype=np.int64),
                                        bias=layer.bias, shift=0, relu=False),))
    with pytest.raises(ConfigError, match=r"codebook has 8 entries, the hardware expects 16"):
        write_images(bad, config, tmp_path / "img")


def test_fit_config_sizes_memories_exactly_for_the_network(tmp_path):
    from eie.spec.emit import fit_config
    config = EIEConfig(n_pe=3, index_bits=2)
    net = random_network(2, [50, 70, 9], config, density=0.2)
    fitted = fit_config(net, config)
    load_images(write_images(net, fitted, tmp_path / "img"))
    with pytest.raises(FitError, match=r"raise mat_depth to"):
        write_images(net, fitted.replace(mat_depth=fitted.mat_depth - 1), tmp_path / "img2")
