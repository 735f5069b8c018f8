"""`eie compress` on real (small) PyTorch models, and every way it refuses bad input."""

import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from eie.cli import main
from eie.spec.image import load_images

FAST = ["--prune-steps", "1", "--retrain-epochs", "1", "--finetune-epochs", "1", "--allow-loss"]
DIGITS = ["--data", "digits"]


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def save(tmp_path, model, name="model.pt"):
    path = tmp_path / name
    torch.save(model, path)
    return path


@pytest.fixture
def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 24), nn.ReLU(), nn.Linear(24, 10))


def test_compress_writes_verified_images_and_is_deterministic(tmp_path, small_model):
    path = save(tmp_path, small_model)
    for out in ("a", "b"):
        code, text = run("compress", path, "--out", tmp_path / out, "--pes", 3, "--density", "0.3,0.5",
                         *DIGITS, *FAST)
        assert code == 0, text
    assert "golden model (16-bit fixed point)" in text and "huffman" in text
    images = load_images(tmp_path / "a")
    assert images.config.n_pe == 3 and [l.n_out for l in images.layers] == [24, 10]
    for f in sorted((tmp_path / "a").iterdir()):
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes(), f.name


def test_board_sizes_the_array_with_the_most_pes_or_the_ones_asked_for(tmp_path, small_model):
    from eie.hw.boards import load_board
    from eie.hw.fit import plan, size_for_device
    path = save(tmp_path, small_model)
    device = load_board("ulx3s-25f").device
    most = size_for_device(device, shape=[(64, 24), (24, 10)]).n_pe
    for pes, expect in ((None, most), (2, 2)):
        out = tmp_path / f"img{pes}"
        args = [] if pes is None else ["--pes", pes]
        code, text = run("compress", path, "--out", out, "--board", "ulx3s-25f", *args, "--density", "0.3,0.5",
                         *DIGITS, *FAST)
        assert code == 0, text
        config = load_images(out).config
        assert config.n_pe == expect and plan(config, device).fits, (pes, config.n_pe)
    assert most > 2
    code, text = run("compress", path, "--out", tmp_path / "big", "--board", "ulx3s-25f", "--pes", most + 1,
                     "--density", "0.3,0.5", *DIGITS, *FAST)
    assert code == 1 and re.search(rf"^Error: {most + 1} PEs do not fit the device", text.strip()), text
    assert not (tmp_path / "big").exists()


def test_balanced_pruning_gives_every_pe_the_same_work(tmp_path, small_model):
    code, text = run("compress", save(tmp_path, small_model), "--out", tmp_path / "img", "--pes", 4,
                     "--density", "0.25,0.5", "--balance", "--index-bits", "8", *DIGITS, *FAST)
    assert code == 0, text
    for layer in load_images(tmp_path / "img").manifest["layers"]:
        assert len(set(layer["entries_per_pe"])) == 1, layer["entries_per_pe"]


class Conv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 3)
        self.fc = nn.Linear(62, 10)

    def forward(self, x):
        return self.fc(self.conv(x[:, None, :])[:, 0, :])


class Sigmoid(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return torch.sigmoid(self.fc(x))


def _nan_model():
    m = nn.Sequential(nn.Linear(64, 10))
    with torch.no_grad():
        m[0].weight[3, 5] = float("nan")
    return m


@pytest.mark.parametrize("make, message", [
    (Conv, r"Error: unsupported operation getitem at node 'getitem' before the first Linear; only Linear, ReLU"),
    (lambda: nn.Sequential(nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, 10)), r"Error: .*Tanh"),
    (Sigmoid, r"Error: .*sigmoid"),
    (_nan_model, r"Error: .*(NaN|nan)"),
    (lambda: {"weight": torch.zeros(2)}, r"Error: .*holds a state_dict \(weights only\), not a model; pass --arch"),
])
def test_unsupported_models_fail_with_one_line_and_write_nothing(tmp_path, make, message):
    code, text = run("compress", save(tmp_path, make()), "--out", tmp_path / "img", *DIGITS, *FAST)
    assert code == 1, text
    assert len(text.strip().splitlines()) == 1 and re.search(message, text), text
    assert not (tmp_path / "img").exists()


def test_model_that_does_not_fit_the_srams_names_the_numbers(tmp_path, small_model):
    code, text = run("compress", save(tmp_path, small_model), "--out", tmp_path / "img", "--pes", 2,
                     "--mat-depth", 4, "--density", "0.5,0.5", *DIGITS, *FAST)
    assert code == 1
    assert re.search(r"Error: the model does not fit: sparse-matrix SRAM needs \d+ words in PE \d but "
                     r"mat_depth=4: raise mat_depth to \d+", text), text
    assert not (tmp_path / "img").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


@pytest.mark.parametrize("args, message", [
    (["--pes", "0"], r"Error: n_pe must be in 1\.\.256, not 0"),
    (["--density", "0.1,0.2,0.3"], r"Error: 3 densities given but the model has 2 layers; give one per layer, or one "
                                   r"for all"),
    (["--density", "abc"], r"Error: --density takes comma-separated fractions"),
    (["--ptr-depth", "7"], r"Error: ptr_depth must be even"),
])
def test_bad_options_fail_with_one_line(tmp_path, small_model, args, message):
    code, text = run("compress", save(tmp_path, small_model), "--out", tmp_path / "img", *args, *DIGITS, *FAST)
    assert code == 1 and re.search(message, text), text
    assert not (tmp_path / "img").exists()


def test_data_problems_are_named(tmp_path):
    wide = nn.Sequential(nn.Linear(5, 3))
    code, text = run("compress", save(tmp_path, wide), "--out", tmp_path / "img", *FAST)
    assert code == 1 and "Error: no data: pass --data FILE" in text
    code, text = run("compress", save(tmp_path, wide), "--out", tmp_path / "img", *DIGITS, *FAST)
    assert code == 1 and re.search(r"x_train has shape \(1347, 64\) but the model takes \(batch, 5\)", text), text
    np.savez(tmp_path / "d.npz", x_train=np.zeros((4, 5)), y_train=np.zeros(4, dtype=np.int64))
    code, text = run("compress", save(tmp_path, wide), "--out", tmp_path / "img", "--data",
                     tmp_path / "d.npz", *FAST)
    assert code == 1 and "data must hold x_train and x_test, or x alone" in text, text
    code, text = run("compress", tmp_path / "missing.pt", "--out", tmp_path / "img", *DIGITS)
    assert code == 1 and "does not exist" in text
