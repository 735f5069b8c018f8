"""compress.model_io: loading models, torch.fx chain extraction and its one-line rejections."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from eie.compress.digits import DigitsMLP
from eie.compress.model_io import extract_layers, load_model, specs_to_module
from eie.spec.errors import CompressError

torch.set_num_threads(1)


class Functional(nn.Module):
    def __init__(self, relu):
        super().__init__()
        self.fc1 = nn.Linear(6, 5)
        self.fc2 = nn.Linear(5, 3, bias=False)
        self.relu = relu

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


@pytest.mark.parametrize("relu", [F.relu, torch.relu, lambda x: x.relu(), nn.ReLU()],
                         ids=["F.relu", "torch.relu", "Tensor.relu", "nn.ReLU"])
def test_every_relu_spelling_is_recognised_and_biasless_linear_gets_zero_bias(relu):
    specs = extract_layers(Functional(relu))
    assert [(s.name, s.relu, s.weight.shape) for s in specs] == [("fc1", True, (5, 6)),
                                                                  ("fc2", False, (3, 5))]
    assert specs[1].bias.dtype == np.float64 and np.array_equal(specs[1].bias, np.zeros(3))
    assert specs[0].weight.dtype == np.float64


def test_digits_model_extracts_and_rebuilds_to_the_same_function():
    torch.manual_seed(0)
    model = DigitsMLP().eval()
    specs = extract_layers(model, n_inputs=64)
    assert [(s.n_in, s.n_out, s.relu) for s in specs] == [(64, 300, True), (300, 100, True), (100, 10, False)]
    x = torch.rand(5, 64)
    with torch.no_grad():
        assert torch.allclose(specs_to_module(specs)(x), model(x), atol=1e-6)


def test_leading_flatten_dropout_identity_and_repeated_relu_are_accepted():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.ReLU(), nn.Dropout(0.5),
                          nn.Identity(), nn.Linear(3, 2))
    specs = extract_layers(model, n_inputs=4)
    assert [s.relu for s in specs] == [True, False]


class Conv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 3)

    def forward(self, x):
        return self.conv(x)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x) + x


class Branch(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        h = self.fc1(x)
        torch.relu(h)
        return self.fc2(h)


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x) if x.sum() > 0 else -self.fc(x)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x, y):
        return self.fc(x)


@pytest.mark.parametrize("model, message", [
    (Conv(), r"^unsupported operation Conv1d at node 'conv'; only Linear, ReLU"),
    (nn.Sequential(nn.Linear(4, 3), nn.Sigmoid()), r"^unsupported operation Sigmoid at node '_1'"),
    (Residual(), r"^unsupported operation add at node 'add'"),
    (Branch(), r"^unsupported graph at node '(fc1|fc2)'.*(branch|previous layer's output)"),
    (DataDependent(), r"^torch.fx cannot trace the model \(TraceError"),
    (TwoInputs(), r"^the model's forward takes more than one input \(node 'y'\)"),
    (nn.Sequential(nn.ReLU(), nn.Linear(4, 3)), r"^ReLU at node '_0' comes before the first Linear"),
    (nn.Sequential(nn.Linear(4, 3), nn.Flatten(), nn.Linear(3, 2)),
     r"^Flatten at node '_1' comes after a Linear layer"),
    (nn.Sequential(nn.Identity()), r"^the model has no nn.Linear layer"),
    (nn.Sequential(nn.Linear(4, 8), nn.Linear(5, 2)),
     r"^layer '1' takes 5 inputs but layer '0' gives 8 outputs"),
])
def test_unsupported_models_are_rejected_with_one_line(model, message):
    with pytest.raises(CompressError, match=message) as info:
        extract_layers(model)
    assert "\n" not in str(info.value)


def test_input_width_must_match_the_data():
    with pytest.raises(CompressError, match=r"^layer '0' takes 4 inputs but the data has 7 features"):
        extract_layers(nn.Sequential(nn.Linear(4, 2)), n_inputs=7)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_rejected_naming_the_layer(bad):
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        model[2].weight[1, 1] = bad
    with pytest.raises(CompressError, match=r"^layer '2' has NaN or infinite weights or biases"):
        extract_layers(model)


def test_load_model_round_trip(tmp_path):
    torch.save(DigitsMLP(), tmp_path / "m.pt")
    model = load_model(tmp_path / "m.pt")
    assert isinstance(model, DigitsMLP) and not model.training


@pytest.mark.parametrize("content, message", [
    (None, r"^model file .*missing.pt does not exist"),
    (b"not a pickle at all", r"^.*bad.pt is not a PyTorch model file"),
    ({"weight": torch.zeros(2)}, r"^.*bad.pt holds a dict \(a state_dict\?\), not an nn.Module"),
    ([1, 2], r"^.*bad.pt holds a list, not an nn.Module"),
])
def test_load_model_errors(tmp_path, content, message):
    path = tmp_path / ("missing.pt" if content is None else "bad.pt")
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(CompressError, match=message):
        load_model(path)
