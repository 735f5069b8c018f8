"""`eie golden`: outputs, accuracy report, and one-line errors that leave nothing written."""

import re

import numpy as np
import pytest
from click.testing import CliRunner

from eie.cli import main
from eie.sim.golden import run_golden
from eie.sim.random_net import random_inputs, random_network
from eie.spec.config import EIEConfig
from eie.spec.emit import write_images


@pytest.fixture
def images_dir(tmp_path):
    config = EIEConfig(n_pe=3)
    net = random_network(0, [12, 20, 5], config)
    reference = {"layers": [{"centroids": [float(c) / 2 ** 10 for c in layer.codebook],
                             "bias": [0.0] * layer.n_out} for layer in net.layers]}
    return write_images(net, config, tmp_path / "img", reference=reference)


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_raw_golden_run_writes_int16_outputs_equal_to_golden_model(images_dir, tmp_path):
    from eie.spec.image import load_images
    x = random_inputs(1, 6, 12, EIEConfig())
    np.save(tmp_path / "x.npy", x)
    code, out = run("golden", images_dir, "--input", tmp_path / "x.npy", "--out", tmp_path / "y.npy", "--raw")
    assert code == 0, out
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.int16
    assert np.array_equal(y, run_golden(load_images(images_dir), x))


def test_float_golden_run_prints_both_accuracies(images_dir, tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((8, 12)))
    np.save(tmp_path / "l.npy", np.arange(8) % 5)
    code, out = run("golden", images_dir, "--input", tmp_path / "x.npy", "--out", tmp_path / "y.npy",
                    "--labels", tmp_path / "l.npy")
    assert code == 0, out
    assert "float reference accuracy" in out and "golden model accuracy" in out


BAD_INPUTS = [
    (np.zeros((2, 7)), [], r"^Error: input has shape \(2, 7\) but the network takes \(batch, 12\)$"),
    (np.zeros(12), [], r"^Error: input has shape \(12,\); give a batch \(batch, 12\) \(x\[None, :\] for a single "
                       r"input\)$"),
    (np.zeros((0, 12)), [], r"^Error: input is an empty batch \(shape \(0, 12\)\); give at least one input$"),
    (np.zeros((2, 12), dtype=np.complex64), [], r"^Error: input is complex \(complex64\); the network takes real"),
    (np.array([["a"] * 12]), [], r"^Error: input has dtype <U1; give real numbers"),
    (np.full((2, 12), np.nan), [], r"^Error: input contains NaN or infinite values$"),
    (np.zeros((2, 12)), ["--raw"], r"^Error: --raw expects integer activations, not float64"),
    (np.full((2, 12), 70000), ["--raw"], r"^Error: input activations must fit 16-bit signed \(-32768..32767\); the "
                                         r"smallest is 70000"),
]


@pytest.mark.parametrize("command", ["golden", "sim", "verify"])
@pytest.mark.parametrize("x, extra, message", BAD_INPUTS, ids=[
    "width", "one-dimensional", "empty", "complex", "strings", "nan", "raw-float", "raw-range"])
def test_bad_inputs_fail_with_one_line_and_write_nothing(images_dir, tmp_path, command, x, extra, message):
    np.save(tmp_path / "x.npy", x)
    out_args = ["--out", tmp_path / "y.npy"] if command != "verify" else []
    code, out = run(command, images_dir, "--input", tmp_path / "x.npy", *out_args, *extra)
    assert code == 1
    assert len(out.strip().splitlines()) == 1, out
    assert re.search(message, out.strip()), out
    assert not (tmp_path / "y.npy").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("labels, message", [
    (np.arange(8) % 7, r"^Error: labels lie in 0..6 but the network has 5 outputs \(labels 0..4\)$"),
    (np.zeros(3, dtype=np.int64), r"^Error: labels have shape \(3,\), expected \(8,\): one per input$"),
    (np.full(8, 0.5), r"^Error: labels have dtype float64; give integer class indices$"),
])
def test_bad_labels_fail_before_anything_is_written(images_dir, tmp_path, labels, message):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((8, 12)))
    np.save(tmp_path / "l.npy", labels)
    code, out = run("golden", images_dir, "--input", tmp_path / "x.npy", "--out", tmp_path / "y.npy",
                    "--labels", tmp_path / "l.npy")
    assert code == 1 and re.search(message, out.strip()), out
    assert not (tmp_path / "y.npy").exists()


def test_saturated_inputs_are_counted_in_a_warning(images_dir, tmp_path):
    from eie.spec.image import load_images
    limit = 2.0 ** (15 - load_images(images_dir).input_frac_bits)
    x = np.zeros((4, 12))
    x[0, :3] = 10 * limit
    x[1, 0] = -10 * limit
    np.save(tmp_path / "x.npy", x.astype(np.int64))
    code, out = run("golden", images_dir, "--input", tmp_path / "x.npy", "--out", tmp_path / "y.npy")
    assert code == 0, out
    assert re.search(r"warning: 4 of 48 input values lie outside the calibrated input range", out), out


def test_outputs_are_written_with_the_usual_permissions(images_dir, tmp_path):
    import os
    np.save(tmp_path / "x.npy", np.zeros((2, 12)))
    umask = os.umask(0o022)
    try:
        code, out = run("golden", images_dir, "--input", tmp_path / "x.npy", "--out", tmp_path / "y.npy")
    finally:
        os.umask(umask)
    assert code == 0, out
    assert (tmp_path / "y.npy").stat().st_mode & 0o777 == 0o644


def test_json_report_goes_to_stdout(images_dir, tmp_path):
    import json
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((8, 12)))
    np.save(tmp_path / "l.npy", np.arange(8) % 5)
    result = CliRunner().invoke(main, ["golden", str(images_dir), "--input", str(tmp_path / "x.npy"), "--out",
                                       str(tmp_path / "y.npy"), "--labels", str(tmp_path / "l.npy"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["inputs"] == 8 and 0 <= report["golden_accuracy"] <= 100 and report["score_unit"] == "percent"


def test_missing_images_and_corrupt_input_are_reported(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 3)))
    code, out = run("golden", tmp_path / "nope", "--input", tmp_path / "x.npy", "--out", tmp_path / "y.npy")
    assert code == 1 and "does not exist; run eie compress first" in out
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    (tmp_path / "img").mkdir()
    code, out = run("golden", tmp_path / "img", "--input", tmp_path / "bad.npy", "--out", tmp_path / "y.npy")
    assert code == 1 and "has no manifest.json" in out


def test_every_command_has_help():
    for cmd in ["compress", "golden", "rtl", "sim", "verify", "synth", "digits"]:
        code, out = run(cmd, "--help")
        assert code == 0 and "Usage: main " + cmd in out.replace("eie", "main"), cmd
