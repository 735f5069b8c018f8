"""LSTM models: import, the refusals of unsupported recurrent variants, pruning, sharing, calibration."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from eie.compress.lstm import (
    LSTMNet,
    calibrate_lstm,
    gate_mask,
    pe_balance,
    run_lstm_pipeline,
)
from eie.compress.lstm_data import prepare_sequences
from eie.compress.lstm_io import is_recurrent, lstm_forward, read_lstm_model
from eie.compress.pipeline import CompressOptions
from eie.spec.errors import CompressError, InputError
from eie.spec.ese import ESEConfig, check_lstm_fits, gate_row_order

SUPPORTED = r"; the ESE array runs one unidirectional single-layer nn.LSTM \(proj_size optional, batch_first " \
            r"either way\) followed by Linear layers$"


class Seq(nn.Module):
    """An LSTM and a head, in the forms users write."""

    def __init__(self, *, batch_first=True, proj=0, head=True, select="out", relu_head=False):
        super().__init__()
        torch.manual_seed(0)
        self.lstm = nn.LSTM(4, 6, batch_first=batch_first, proj_size=proj)
        width = proj or 6
        self.fc = nn.Linear(width, 5) if head else None
        self.fc2 = nn.Linear(5, 3) if relu_head else None
        self.drop = nn.Dropout(0.1)
        self.batch_first, self.select = batch_first, select

    def forward(self, x):
        out, (h, c) = self.lstm(x)
        if self.select == "every":
            y = self.drop(out)
        elif self.select == "h_n":
            y = h[-1]
        elif self.select == "squeeze":
            y = h.squeeze(0)
        else:
            y = out[:, -1, :] if self.batch_first else out[-1]
        if self.fc is None:
            return y
        y = self.fc(y)
        return self.fc2(F.relu(y)) if self.fc2 is not None else y


@pytest.mark.parametrize("kw", [{}, {"batch_first": False}, {"proj": 3}, {"head": False}, {"select": "every"},
                                {"select": "every", "batch_first": False}, {"select": "h_n"}, {"select": "squeeze"},
                                {"relu_head": True}])
def test_lstm_models_are_read_and_rebuilt_exactly(kw):
    model = Seq(**kw).eval()
    spec = read_lstm_model(model)
    assert is_recurrent(model) and not is_recurrent(nn.Linear(2, 2))
    assert spec.input_size == 4 and spec.hidden_size == 6 and spec.proj_size == kw.get("proj", 0)
    assert spec.every_step == (kw.get("select") == "every")
    assert len(spec.head) == (0 if kw.get("head") is False else 1 + bool(kw.get("relu_head")))
    x = torch.randn(7, 5, 4)
    want = lstm_forward(model, spec, x)
    got = LSTMNet.from_spec(spec)(x)
    assert torch.allclose(got, want.to(got.dtype), atol=1e-5)


class Cell(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(4, 6)

    def forward(self, x):
        h = c = torch.zeros(x.shape[0], 6)
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], (h, c))
        return h


class Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.LSTM(4, 6, batch_first=True), nn.LSTM(6, 6, batch_first=True)

    def forward(self, x):
        return self.b(self.a(x)[0])[0][:, -1]


class State(nn.Module):
    def __init__(self, use):
        super().__init__()
        self.lstm, self.use = nn.LSTM(4, 6, batch_first=True), use

    def forward(self, x):
        if self.use == "h0":
            out, _ = self.lstm(x, (torch.zeros(1, x.shape[0], 6), torch.zeros(1, x.shape[0], 6)))
            return out[:, -1]
        out, (h, c) = self.lstm(x)
        return c[-1] if self.use == "c" else out[:, 0]


@pytest.mark.parametrize("model, match", [
    (nn.Sequential(nn.GRU(4, 6)), r"^unsupported recurrent layer \(layer '0' is a GRU\)" + SUPPORTED),
    (nn.LSTM(4, 6, bidirectional=True), r"^unsupported recurrent layer \(the model is a bidirectional LSTM\)" +
     SUPPORTED),
    (nn.LSTM(4, 6, num_layers=2), r"^unsupported recurrent layer \(the model is a 2-layer LSTM \(num_layers=2\)\)" +
     SUPPORTED),
    (nn.RNN(4, 6), r"^unsupported recurrent layer \(the model is a vanilla RNN \(nonlinearity=tanh\)\)" + SUPPORTED),
    (Cell(), r"^unsupported recurrent layer \(layer 'cell' is an LSTMCell stepped by the model's own loop\)" +
     SUPPORTED),
    (Two(), r"^unsupported recurrent layers 'a', 'b': 2 LSTMs \(stacked or side by side\)" + SUPPORTED),
    (State("h0"), r"^the LSTM 'lstm' is given an initial state \(h0, c0\); only a zero initial state is supported$"),
    (State("c"), r"^the model uses the LSTM's cell state c_n at node '\w+' \(call_function getitem\); only h_n"),
    (State("first"), r"^the LSTM output is indexed with .* only the last step \(out\[:, -1\]\) or every step is "
                     r"supported$"),
])
def test_unsupported_recurrent_models_are_refused_in_one_line(model, match):
    with pytest.raises(CompressError, match=match) as e:
        read_lstm_model(model)
    assert "\n" not in str(e.value)


def test_torchscript_lstms_are_refused():
    scripted = torch.jit.script(Seq().eval())
    assert is_recurrent(scripted)
    with pytest.raises(CompressError, match=r"^a TorchScript model with a recurrent layer cannot be read; save the "
                                            r"nn.Module"):
        read_lstm_model(scripted)


def _gates(rng, hidden=10, inputs=5):
    w = rng.normal(size=(4 * hidden, inputs + hidden))
    w[: hidden] *= 4.0                                   # the i gates much larger: plain pruning loads some PEs
    w[:, ::3] *= 0.1
    return w


@pytest.mark.parametrize("n_pe", [3, 8])
def test_load_balance_aware_pruning_gives_every_pe_the_same_nonzeros(n_pe):
    rng = np.random.default_rng(n_pe)
    hidden, inputs = 10, 5
    w = _gates(rng, hidden, inputs)
    n_keep = 83
    plain = gate_mask(w, n_keep, input_size=inputs, hidden_size=hidden)
    balanced = gate_mask(w, n_keep, input_size=inputs, hidden_size=hidden, n_pe=n_pe)
    assert plain.sum() == balanced.sum() == n_keep
    assert balanced[:, :inputs].sum() == plain[:, :inputs].sum()          # the same split between x and h
    order = gate_row_order(hidden, n_pe)
    for cols in (slice(0, inputs), slice(inputs, None)):
        per_pe = np.zeros(n_pe, dtype=int)
        for row, torch_row in enumerate(order):
            if torch_row >= 0:
                per_pe[row % n_pe] += balanced[torch_row, cols].sum()
        assert per_pe.max() - per_pe.min() <= 1, per_pe
    assert pe_balance(balanced, hidden, n_pe) > pe_balance(plain, hidden, n_pe)


def _toy(every_step=False, seed=0):
    """A small sequence task: the sign of a weighted running sum (per sequence or per step)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(240, 6, 3)).astype(np.float32)
    s = np.cumsum(x @ np.array([1.0, -0.5, 0.25]), axis=1)
    y = (s > 0).astype(np.int64)
    return x, (y if every_step else y[:, -1])


class Toy(nn.Module):
    def __init__(self, every_step=False):
        super().__init__()
        torch.manual_seed(1)
        self.lstm, self.fc, self.every = nn.LSTM(3, 5, batch_first=True), nn.Linear(5, 2), every_step

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out if self.every else out[:, -1])


@pytest.mark.parametrize("every_step, balance", [(False, 3), (True, None)])
def test_the_pipeline_prunes_shares_and_calibrates(every_step, balance):
    model = Toy(every_step).eval()
    spec = read_lstm_model(model)
    x, y = _toy(every_step)
    prepared = prepare_sequences((x, y), spec=spec, seed=0)
    assert prepared.task.kind == "classification" and prepared.input_shape == (6, 3)
    options = CompressOptions(densities=(0.4,), balance_pes=balance, prune_steps=2, retrain_epochs=2,
                              finetune_epochs=1)
    result = run_lstm_pipeline(spec, prepared.dataset, options)
    gates = result.shared.gates
    assert gates.index.shape == (20, 8) and gates.nnz == round(0.4 * 160)
    assert np.array_equal(gates.index != 0, result.masks[0])
    assert gates.centroids[0] == 0.0 and np.all(gates.centroids[np.unique(gates.index[gates.index > 0])] != 0)
    assert result.gate_storage.ratio > 1 and result.storage.ratio > 1
    config = ESEConfig(n_pe=3, max_rows_per_pe=16, mat_depth=64, ptr_depth=64, bias_depth=64, act_depth=128)
    net, reference = calibrate_lstm(result.shared, prepared.calibration, config)
    check_lstm_fits(net, config)
    assert net.every_step == every_step and net.h_frac_bits <= 14
    assert set(reference) == {"gates", "head"}


def test_sequence_data_is_checked():
    spec = read_lstm_model(Toy().eval())
    x, y = _toy()
    with pytest.raises(InputError, match=r"^x has shape \(240, 18\) but the LSTM takes sequences \(batch, steps, "
                                         r"3\), samples first$"):
        prepare_sequences((x.reshape(240, 18), y), spec=spec)
    with pytest.raises(InputError, match=r"^y_train has shape \(192, 6\); class labels of a sequence are integers"):
        prepare_sequences((x, np.zeros((240, 6), dtype=np.int64)), spec=spec)
    with pytest.raises(InputError, match=r"^--data digits gives sequences of 8 rows of 8 pixels"):
        prepare_sequences("digits", spec=spec)
    agreement = prepare_sequences(None, x, spec=spec, model=Toy().eval())
    assert agreement.task.kind == "agreement" and agreement.dataset.y_train.shape == (192, 2)


def test_an_already_sparse_lstm_keeps_its_support():
    model = Toy().eval()
    with torch.no_grad():
        model.lstm.weight_hh_l0[:, ::2] = 0.0
    spec = read_lstm_model(model)
    assert spec.is_sparse and spec.gate_mask[:, 3::2].sum() == 0
    x, y = _toy()
    prepared = prepare_sequences((x, y), spec=spec, seed=0)
    result = run_lstm_pipeline(spec, prepared.dataset, CompressOptions(finetune_epochs=1))
    assert np.array_equal(result.shared.gates.index != 0, spec.gate_mask)
