"""The ``eie`` command on LSTM models: compress, golden, sim, verify and rtl like an MLP, and the refusals."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from eie.cli import main
from eie.lstm_flow import digits_lstm_config
from eie.spec.ese_image import load_lstm_images

FAST = ["--prune-steps", "1", "--retrain-epochs", "2", "--finetune-epochs", "1", "--allow-loss"]


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


class Sign(nn.Module):
    """Classifies a sequence by the sign of a weighted running sum."""

    def __init__(self, proj=0):
        super().__init__()
        torch.manual_seed(2)
        self.lstm = nn.LSTM(3, 7, batch_first=False, proj_size=proj)
        self.fc = nn.Linear(proj or 7, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[-1])


@pytest.fixture(scope="module")
def lstm_images(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli-lstm")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5, 3)).astype(np.float32)
    y = (np.cumsum(x @ np.array([1.0, -0.5, 0.25]), axis=1)[:, -1] > 0).astype(np.int64)
    np.savez(tmp / "data.npz", x=x, y=y)
    np.save(tmp / "x.npy", x[:12])
    np.save(tmp / "labels.npy", y[:12])
    torch.save(Sign(proj=4), tmp / "model.pt")
    (tmp / "hw.json").write_text(json.dumps(digits_lstm_config().to_dict()))
    code, text = run("compress", tmp / "model.pt", "--data", tmp / "data.npz", "--out", tmp / "img", "--config",
                     tmp / "hw.json", "--density", "0.5", "--balance", *FAST)
    assert code == 0, text
    return tmp, text


def test_compress_writes_lstm_images_and_the_report(lstm_images):
    tmp, text = lstm_images
    assert "LSTM 3 → 7, projection 4 → 2 (last step)" in text and "storage in bytes, gate matrices" in text
    images = load_lstm_images(tmp / "img", expect_config=digits_lstm_config())
    assert images.lstm.proj_size == 4 and [r["role"] for r in images.manifest["layers"]] == \
        ["gates_x", "gates_h", "proj", "head"]
    report = json.loads((tmp / "img" / "report.json").read_text())
    assert report["kind"] == "lstm" and report["matrices"][0]["density"] == 0.5
    # 7 units on 8 PEs: PE 7 holds none, the others the same number of weights (to one per half).
    assert report["options"]["balance_pes"] == 8 and report["matrices"][0]["pe_balance"] >= 0.8


def test_golden_runs_sequences_and_reports_against_float(lstm_images):
    tmp, _ = lstm_images
    code, text = run("golden", tmp / "img", "--input", tmp / "x.npy", "--out", tmp / "y.npy", "--labels",
                     tmp / "labels.npy")
    assert code == 0, text
    assert "golden: 12 sequences" in text and "golden model accuracy" in text
    assert np.load(tmp / "y.npy").shape == (12, 2)
    code, text = run("golden", tmp / "img", "--input", tmp / "labels.npy", "--out", tmp / "bad.npy")
    assert code == 1 and text.startswith("Error: input has shape (12,) but the LSTM takes sequences (batch, steps, "
                                         "3)") and not (tmp / "bad.npy").exists()


@pytest.mark.rtl
def test_sim_verify_and_rtl_run_the_ese_array(lstm_images):
    tmp, _ = lstm_images
    code, text = run("verify", tmp / "img", "--input", tmp / "x.npy")
    assert code == 0, text
    assert "bit-exact: 12 sequences" in text and "per time step" in text
    code, text = run("sim", tmp / "img", "--input", tmp / "x.npy", "--out", tmp / "y_rtl.npy", "--json")
    assert code == 0, text
    report = json.loads(text)
    assert report["bit_exact"] and report["steps"] == 5 and report["cycles_per_step"] > 0
    code, _ = run("golden", tmp / "img", "--input", tmp / "x.npy", "--out", tmp / "y.npy")
    assert np.array_equal(np.load(tmp / "y_rtl.npy"), np.load(tmp / "y.npy"))
    code, text = run("rtl", "--images", tmp / "img", "--out", tmp / "rtl")
    assert code == 0, text
    assert "eie_top.v" in text
    verilog = (tmp / "rtl" / "eie_top.v").read_text()
    assert "pe7.elementwise" in verilog and "pe0.bank1" in verilog        # the ESE array, with its images


@pytest.mark.parametrize("model, match", [
    (nn.GRU(3, 4), "Error: unsupported recurrent layer (the model is a GRU); the ESE array runs one unidirectional "
                   "single-layer nn.LSTM"),
    (nn.LSTM(3, 4, bidirectional=True), "Error: unsupported recurrent layer (the model is a bidirectional LSTM)"),
    (nn.LSTM(3, 4, num_layers=3), "Error: unsupported recurrent layer (the model is a 3-layer LSTM (num_layers=3))"),
])
def test_unsupported_recurrent_variants_are_refused(tmp_path, model, match):
    torch.save(model, tmp_path / "model.pt")
    np.savez(tmp_path / "data.npz", x=np.zeros((10, 4, 3), np.float32), y=np.zeros(10, np.int64))
    code, text = run("compress", tmp_path / "model.pt", "--data", tmp_path / "data.npz", "--out", tmp_path / "img")
    assert code == 1 and text.strip().startswith(match) and len(text.strip().splitlines()) == 1, text
    assert not (tmp_path / "img").exists()


def test_an_mlp_is_refused_on_an_ese_configuration(tmp_path):
    torch.save(nn.Sequential(nn.Linear(64, 10)), tmp_path / "mlp.pt")
    (tmp_path / "hw.json").write_text(json.dumps(digits_lstm_config().to_dict()))
    code, text = run("compress", tmp_path / "mlp.pt", "--data", "digits", "--out", tmp_path / "img", "--config",
                     tmp_path / "hw.json")
    assert code == 1 and text.strip().startswith("Error: an ESE configuration (with act_depth, nl_bits) is for an LSTM")


def test_the_python_api_compresses_and_runs_an_lstm(tmp_path):
    import eie
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4, 3)).astype(np.float32)
    y = (x.sum(axis=(1, 2)) > 0).astype(np.int64)
    result = eie.compress_model(Sign(), data=(x, y), config=digits_lstm_config(), density=0.5, prune_steps=1,
                                retrain_epochs=1, finetune_epochs=0, allow_loss=True, out=tmp_path / "api")
    assert result.is_lstm and repr(result).startswith("<Compressed LSTM 3 → 7 → 2 on 8 PEs, gate matrices")
    assert result.golden(x[:5]).shape == (5, 2)
    assert np.array_equal(result.golden(x[:5]), eie.load(tmp_path / "api").golden(x[:5]))
    with pytest.raises(eie.InputError, match=r"^input has shape \(5, 12\) but the LSTM takes sequences"):
        result.golden(x[:5].reshape(5, 12))
