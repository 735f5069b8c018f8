"""The models and data users really bring, end to end through `eie.compress_model` and `eie compress`.

Each test is a defect a new user met (issue: "One eie package, a Python API, and the models users
really bring"): already-pruned models, defaults tuned to the digits model, the bundled data used
silently, labels demanded for calibration, and the data forms of the Python API.
"""

import re

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as prune
from click.testing import CliRunner
from torch import nn

import eie
from eie.cli import main
from eie.compress.digits import load_digits_split
from eie.compress.prune import copy_model
from eie.compress.train import train_epochs
from eie.flow import BudgetError
from eie.spec.image import decode_layer, load_images

FAST = {"prune_steps": 1, "retrain_epochs": 2, "finetune_epochs": 1}
FAST_CLI = ["--prune-steps", "1", "--retrain-epochs", "2", "--finetune-epochs", "1"]


@pytest.fixture(scope="module")
def digits():
    return load_digits_split(0)


def trained(model, data, epochs=30, seed=0):
    torch.manual_seed(seed)
    return train_epochs(model, data, epochs, 3e-3, seed=seed)


@pytest.fixture(scope="module")
def pruned_mlp(digits):
    """A 64-128-64-10 MLP trained on digits, then pruned to 10% per layer with torch.nn.utils.prune."""
    torch.manual_seed(1)
    model = trained(nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)),
                    digits)
    for layer in model[0], model[2], model[4]:
        prune.l1_unstructured(layer, "weight", amount=0.9)
    return model


def masks_of(model):
    return [layer.weight_mask.detach().numpy().astype(bool) for layer in (model[0], model[2], model[4])]


def image_support(images, l):
    """The (row, col) positions whose decoded codebook index is non-zero."""
    info = images.layers[l]
    rows, cols, v = decode_layer(images, l)
    support = np.zeros((info.n_out, info.n_in), dtype=bool)
    support[rows[v > 0], cols[v > 0]] = True
    codebook = images.codebook[l]
    assert np.all(codebook[v[v > 0]] != 0)      # a stored weight is never the zero slot's value
    return support


@pytest.mark.parametrize("removed", [False, True], ids=["mask-attached", "after-prune.remove"])
def test_a_pruned_model_keeps_exactly_its_mask_by_default(pruned_mlp, digits, tmp_path, removed):
    model = copy_model(pruned_mlp)
    masks = masks_of(model)
    if removed:
        for layer in model[0], model[2], model[4]:
            prune.remove(layer, "weight")
    result = eie.compress_model(model, data="digits", pes=4, out=tmp_path / "img", allow_loss=True, **FAST)
    assert result.report["choice"]["mode"] == "keep-sparsity"
    for l, mask in enumerate(masks):
        assert np.array_equal(image_support(result.images, l), mask), l
    assert [layer["input_density"] for layer in result.report["layers"]] == pytest.approx([0.1, 0.1, 0.1], abs=1e-3)


@pytest.mark.parametrize("density", [0.05, 0.1, 0.2], ids=["prune-further", "the-user-density",
                                                             "above-the-user-density"])
def test_a_density_target_never_revives_or_encodes_a_pruned_weight(pruned_mlp, tmp_path, density):
    masks = masks_of(pruned_mlp)
    result = eie.compress_model(pruned_mlp, data="digits", pes=4, density=density, out=tmp_path / "img",
                                allow_loss=True, **FAST)
    for l, mask in enumerate(masks):
        support = image_support(result.images, l)
        assert not np.any(support & ~mask), f"layer {l}: {int(np.sum(support & ~mask))} weights outside the mask"
        if density >= 0.1:
            assert np.array_equal(support, mask)
        else:
            assert support.sum() == round(density * mask.size)


def test_the_api_sizes_the_array_for_a_board_like_the_cli(digits, tmp_path):
    from eie.hw.boards import load_board
    from eie.hw.fit import plan, size_for_device
    model = trained(nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10)), digits, epochs=5)
    device = load_board("ulx3s-25f").device
    most = size_for_device(device, shape=[(64, 48), (48, 10)])
    result = eie.compress_model(model, data="digits", board="ulx3s-25f", density=0.3, allow_loss=True,
                                out=tmp_path / "most", **FAST)
    assert result.images.config == most and plan(most, device).fits
    two = eie.compress_model(model, data="digits", board="ulx3s-25f", pes=2, density=0.3, allow_loss=True,
                             out=tmp_path / "two", **FAST)
    assert two.images.config.n_pe == 2 and two.images.config.mat_depth >= most.mat_depth
    with pytest.raises(eie.FitError, match=rf"^{most.n_pe + 1} PEs do not fit the device: "):
        eie.compress_model(model, data="digits", board="ulx3s-25f", pes=most.n_pe + 1, density=0.3,
                           allow_loss=True, out=tmp_path / "big", **FAST)
    assert not (tmp_path / "big").exists()


def test_defaults_keep_a_dense_classifier_within_the_budget(digits, tmp_path):
    model = trained(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)), digits)
    result = eie.compress_model(model, data="digits", pes=4, out=tmp_path / "img", **FAST)
    report = result.report
    assert report["choice"]["mode"] == "search"
    assert report["loss_points"] <= 0.5
    assert report["compression_ratio"] > 4
    tried = report["choice"]["candidates"]
    assert len(tried) >= 3 and any(not c["within_budget"] for c in tried)
    chosen = report["choice"]["chosen_target_density"]
    passing = [c["target_density"] or 1.0 for c in tried if c["within_budget"]]
    assert chosen is not None and chosen == min(passing)
    assert all(not c["within_budget"] for c in tried if (c["target_density"] or 1.0) < chosen)


def test_a_budget_that_cannot_be_met_writes_nothing(digits, tmp_path):
    model = trained(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)), digits)
    with pytest.raises(BudgetError, match=r"points lost, more than the budget of 0; nothing was written"):
        eie.compress_model(model, data="digits", pes=4, density=0.02, budget=0.0, out=tmp_path / "img", **FAST)
    assert not (tmp_path / "img").exists()


def test_the_bundled_digits_are_used_only_when_asked(tmp_path):
    torch.save(nn.Sequential(nn.Linear(64, 16)), tmp_path / "m.pt")
    result = CliRunner().invoke(main, ["compress", str(tmp_path / "m.pt"), "--out", str(tmp_path / "img")])
    assert result.exit_code == 1
    assert re.search(r"^Error: no data: pass --data FILE .* or --data digits", result.output.strip()), result.output


def test_calibration_inputs_alone_are_enough(tmp_path):
    """A regression model without labels: judged by its fidelity to the input model (R²)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 24), nn.ReLU(), nn.Linear(24, 1))
    x = torch.randn(400, 10)
    np.save(tmp_path / "calib.npy", x.numpy())
    torch.save(model, tmp_path / "m.pt")
    result = CliRunner().invoke(main, ["compress", str(tmp_path / "m.pt"), "--out", str(tmp_path / "img"),
                                       "--calib", str(tmp_path / "calib.npy"), "--budget", "10", *FAST_CLI])
    assert result.exit_code == 0, result.output
    assert "task regression (scored by R²)" in result.output
    assert "no targets: retrained to reproduce the input model's outputs" in result.output
    report = load_images(tmp_path / "img").path / "report.json"
    assert report.is_file()


def test_regression_targets_are_supported(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 8)).astype(np.float32)
    y = (x @ rng.standard_normal((8, 2)) + 0.1 * rng.standard_normal((500, 2))).astype(np.float32)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    result = eie.compress_model(model, data=(x, y), pes=2, density=0.5, allow_loss=True, out=tmp_path / "img",
                                **FAST)
    assert result.report["data"]["task"] == "regression"
    assert result.report["data"]["metric"] == "R²"
    error = result.report["golden_vs_input_model"]
    assert error["mse_golden"] > 0 and error["mse_input_model"] > 0 and error["rms"] > 0
    assert result.golden(x[:3]).shape == (3, 2)


def test_the_api_takes_dataloaders_numpy_labels_and_float64(digits, tmp_path):
    x = digits.x_train.numpy().astype(np.float64)
    y = digits.y_train.numpy().astype(np.int32)
    model = trained(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)), digits, epochs=10)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.as_tensor(x), torch.as_tensor(y)),
                                         batch_size=100)
    a = eie.compress_model(model, data=loader, pes=2, density=0.3, allow_loss=True, out=tmp_path / "a", **FAST)
    b = eie.compress_model(model, data=(x, y), pes=2, density=0.3, allow_loss=True, out=tmp_path / "b", **FAST)
    assert a.report["data"]["task"] == "classification"
    assert a.report["scores"] == b.report["scores"]
    assert (tmp_path / "a" / "pe000.mat.hex").read_bytes() == (tmp_path / "b" / "pe000.mat.hex").read_bytes()


def test_inputs_of_a_flattening_model_keep_their_shape(digits, tmp_path):
    x = digits.x_train.numpy().reshape(-1, 1, 8, 8)
    y = digits.y_train.numpy()
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    result = eie.compress_model(model, data=(x, y), pes=2, density=0.5, allow_loss=True, out=tmp_path / "img",
                                **FAST)
    assert result.report["model"]["input_shape"] == [1, 8, 8]
    assert np.array_equal(result.golden(x[:4]), result.golden(x[:4].reshape(4, 64)))
    with pytest.raises(eie.InputError, match=r"input has shape \(4, 8, 8\) but the network takes \(batch, 64\) "
                                             r"or \(batch, 1, 8, 8\)"):
        result.golden(x[:4, 0])
