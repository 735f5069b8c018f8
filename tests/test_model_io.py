"""compress.model_io: loading models, torch.fx chain extraction and its one-line rejections.

Loading (state dicts, --arch, __main__ classes, TorchScript) is in ``test_model_io_load.py``.
"""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize, prune

from eie.compress.digits import DigitsMLP
from eie.compress.model_io import LinearSpec, ModelSpec, extract_layers, load_model, read_model, specs_to_module
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
    (Conv(), r"^unsupported operation Conv1d at layer 'conv' before the first Linear; only Linear, ReLU"),
    (nn.Sequential(nn.Linear(4, 3), nn.Sigmoid()),
     r"^unsupported operation Sigmoid at layer '1' after layer '0'; only Linear, ReLU, Dropout, Identity, "
     r"BatchNorm1d, a leading flatten/view/reshape and a trailing softmax/log_softmax are supported$"),
    (Residual(), r"^unsupported operation add at node 'add' after layer 'fc'"),
    (Branch(), r"^unsupported graph at node '(fc1|fc2)'.*(branch|previous layer's output)"),
    (DataDependent(), r"^torch.fx cannot trace the model \(TraceError"),
    (TwoInputs(), r"^the model's forward takes more than one input \(node 'y'\)"),
    (nn.Sequential(nn.ReLU(), nn.Linear(4, 3)), r"^ReLU at layer '0' comes before the first Linear"),
    (nn.Sequential(nn.Linear(4, 3), nn.Flatten(), nn.Linear(3, 2)),
     r"^Flatten at layer '1' after layer '0' flattens the output of a Linear layer"),
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
    ({"weight": torch.zeros(2)}, r"^.*bad.pt holds a state_dict \(weights only\), not a model; pass --arch "
                                 r"module:Class \(or FILE.py:Class\)"),
    ([1, 2], r"^.*bad.pt holds a list, not an nn.Module"),
])
def test_load_model_errors(tmp_path, content, message):
    path = tmp_path / ("missing.pt" if content is None else "bad.pt")
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(CompressError, match=message) as info:
        load_model(path)
    assert "\n" not in str(info.value)


# --- helpers for the forms below ------------------------------------------------------------------


def rebuilt_and_original(model, x):
    """Outputs of ``specs_to_module(read_model(model).layers)`` and of ``model``, in float64."""
    spec = read_model(model)
    original = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        rebuilt = specs_to_module(spec.layers, torch.float64)(x.double().flatten(1) if spec.flatten else x.double())
        return spec, rebuilt, original(x.double())


def raises_one_line(model, message):
    with pytest.raises(CompressError, match=message) as info:
        read_model(model)
    assert "\n" not in str(info.value)
    return str(info.value)


class Head(nn.Module):
    """``fc2(relu(fc1(form(x))))`` for a flatten / view / reshape ``form`` of 8x8 images."""

    def __init__(self, form):
        super().__init__()
        self.form = form
        self.fc1, self.fc2 = nn.Linear(64, 6), nn.Linear(6, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(self.form(x))))


class FunctionalParameters(nn.Module):
    """``F.linear`` on the module's own parameters (get_attr nodes), no bias on the second layer."""

    def __init__(self):
        super().__init__()
        self.w1, self.b1 = nn.Parameter(torch.randn(5, 4)), nn.Parameter(torch.randn(5))
        self.w2 = nn.Parameter(torch.randn(3, 5))

    def forward(self, x):
        return F.linear(torch.relu(F.linear(x, self.w1, self.b1)), self.w2)


def randomise_bn(*bns):
    with torch.no_grad():
        for bn in bns:
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2.0)
            if bn.affine:
                bn.weight.normal_()
                bn.bias.normal_()


# --- accepted graph forms -----------------------------------------------------------------------


def test_read_model_gives_a_model_spec_and_extract_layers_is_its_list():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    spec = read_model(model)
    assert isinstance(spec, ModelSpec) and isinstance(spec.layers, tuple)
    assert (spec.n_in, spec.n_out, spec.is_sparse, spec.flatten, spec.notes, spec.kind) == \
        (4, 2, False, False, (), "nn.Module")
    assert all(isinstance(layer, LinearSpec) and layer.mask is None for layer in spec.layers)
    assert [(s.name, s.relu) for s in extract_layers(model)] == [(s.name, s.relu) for s in spec.layers]


def test_a_bare_linear_is_a_model():
    torch.manual_seed(0)
    spec, rebuilt, original = rebuilt_and_original(nn.Linear(4, 3), torch.randn(5, 4))
    assert [(s.name, s.relu) for s in spec.layers] == [("linear", False)]
    assert torch.allclose(rebuilt, original)


def test_functional_linear_on_own_parameters():
    torch.manual_seed(0)
    spec, rebuilt, original = rebuilt_and_original(FunctionalParameters(), torch.randn(5, 4))
    assert [(s.name, s.relu, s.n_in, s.n_out) for s in spec.layers] == [("w1", True, 4, 5), ("w2", False, 5, 3)]
    assert np.array_equal(spec.layers[1].bias, np.zeros(3))
    assert torch.allclose(rebuilt, original)


@pytest.mark.parametrize("form", [
    nn.Flatten(), lambda x: torch.flatten(x, 1), lambda x: x.flatten(1), lambda x: x.flatten(start_dim=1),
    lambda x: x.view(x.size(0), -1), lambda x: x.view(x.shape[0], -1), lambda x: x.reshape(x.size(0), -1),
    lambda x: x.view(-1, 64), lambda x: x.reshape(-1, 64), lambda x: torch.reshape(x, (x.size(0), 64)),
    lambda x: x.contiguous().view(x.size()[0], -1), lambda x: x.reshape(x.shape[0], x.shape[1] * x.size(2) * 8),
], ids=["nn.Flatten", "torch.flatten", "x.flatten", "x.flatten(start_dim)", "view(size(0))", "view(shape[0])",
        "reshape(size(0))", "view(-1,N)", "reshape(-1,N)", "torch.reshape", "contiguous.view(size()[0])",
        "reshape(b,c*h*w)"])
def test_every_leading_flatten_spelling_is_accepted(form):
    torch.manual_seed(0)
    spec, rebuilt, original = rebuilt_and_original(Head(form), torch.randn(7, 1, 8, 8))
    assert spec.flatten and spec.n_in == 64 and [s.name for s in spec.layers] == ["fc1", "fc2"]
    assert torch.allclose(rebuilt, original)


@pytest.mark.parametrize("build, notes", [
    (lambda: nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3)),
     ["folded BatchNorm1d '1' into Linear '0'"]),
    (lambda: nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.BatchNorm1d(6), nn.Dropout(), nn.Linear(6, 3)),
     ["folded BatchNorm1d '2' into the inputs of Linear '4'"]),
    (lambda: nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3), nn.BatchNorm1d(3)),
     ["folded BatchNorm1d '0' into the inputs of Linear '1'", "folded BatchNorm1d '4' into Linear '3'"]),
    (lambda: nn.Sequential(nn.Flatten(), nn.BatchNorm1d(4, affine=False), nn.Linear(4, 3)),
     ["folded BatchNorm1d '1' into the inputs of Linear '2'"]),
    (lambda: nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.BatchNorm1d(6), nn.BatchNorm1d(6), nn.Linear(6, 3)),
     ["folded BatchNorm1d '2' into the inputs of Linear '4'", "folded BatchNorm1d '3' into the inputs of Linear '4'"]),
], ids=["linear-bn-relu", "relu-bn-linear", "input-bn-and-last-bn", "flatten-bn-no-affine", "two-bns"])
def test_batchnorm_is_folded_exactly(build, notes):
    torch.manual_seed(0)
    model = build().eval()
    randomise_bn(*[m for m in model if isinstance(m, nn.BatchNorm1d)])
    spec, rebuilt, original = rebuilt_and_original(model, torch.randn(9, 4))
    assert list(spec.notes) == notes
    assert len(spec.layers) == sum(isinstance(m, nn.Linear) for m in model)
    assert torch.allclose(rebuilt, original, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("last, fname", [
    (nn.Softmax(dim=1), "softmax"), (nn.LogSoftmax(dim=-1), "log_softmax"),
    (lambda x: F.softmax(x, dim=1), "softmax"), (lambda x: F.log_softmax(x, 1), "log_softmax"),
    (lambda x: torch.softmax(x, -1), "softmax"), (lambda x: torch.log_softmax(x, dim=1), "log_softmax"),
    (lambda x: x.softmax(1), "softmax"), (lambda x: x.log_softmax(dim=-1), "log_softmax"),
    (lambda x: F.dropout(F.softmax(x, 1), 0.3, False), "softmax"),
], ids=["nn.Softmax", "nn.LogSoftmax", "F.softmax", "F.log_softmax", "torch.softmax", "torch.log_softmax",
        "Tensor.softmax", "Tensor.log_softmax", "softmax-then-dropout"])
def test_a_trailing_softmax_is_dropped_keeping_the_argmax(last, fname):
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 5)
            self.last = last

        def forward(self, x):
            return self.last(self.fc2(torch.relu(self.fc1(x))))

    spec, logits, original = rebuilt_and_original(Net(), torch.randn(20, 4))
    assert spec.notes == (f"dropped the trailing {fname}: outputs are logits, argmax unchanged",)
    assert torch.equal(logits.argmax(1), original.argmax(1))
    normalise = torch.log_softmax if fname == "log_softmax" else torch.softmax
    assert torch.allclose(normalise(logits, 1), original)


# --- sparsity the model already has -------------------------------------------------------------


def pruned_mlp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 4))
    prune.l1_unstructured(model[0], "weight", amount=0.9)
    return model


def test_prune_mask_is_read_exactly_while_attached_and_after_remove(tmp_path):
    model = pruned_mlp()
    kept = model[0].weight_mask.bool().numpy()
    torch.save(model, tmp_path / "pruned.pt")
    spec = read_model(load_model(tmp_path / "pruned.pt"))
    assert spec.is_sparse and np.array_equal(spec.layers[0].mask, kept) and spec.layers[1].mask is None
    assert kept.sum() == 60 and np.all(spec.layers[0].weight[~kept] == 0.0)
    assert np.all(np.signbit(spec.layers[0].weight[~kept]) == 0)                     # +0.0, not -0.0
    x = torch.randn(6, 20)
    with torch.no_grad():
        assert torch.allclose(specs_to_module(spec.layers)(x), model(x), atol=1e-6)
    prune.remove(model[0], "weight")
    removed = read_model(model)
    assert np.array_equal(removed.layers[0].mask, kept)
    assert np.array_equal(removed.layers[0].weight, spec.layers[0].weight)


def test_stale_pruned_weight_attribute_is_not_trusted():
    """After load_state_dict the ``weight`` attribute is stale until a forward; weight_orig * mask is used."""
    model = pruned_mlp()
    with torch.no_grad():
        model[0].weight_orig.add_(1.0)
    spec = read_model(model)
    expected = (model[0].weight_orig * model[0].weight_mask).detach().double().numpy()
    assert np.array_equal(spec.layers[0].weight, expected)


class KeepMask(nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, w):
        return w * self.mask


def test_parametrization_mask_is_read_and_the_weight_evaluated():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    mask = torch.rand(4, 6) > 0.5
    with torch.no_grad():
        model[1].weight[0, 0] = 0.0
    mask[0, 0] = True                                            # kept by the mask but exactly zero: not live
    parametrize.register_parametrization(model[1], "weight", KeepMask(mask.float()))
    spec = read_model(model)
    expected = mask.numpy().copy()
    expected[0, 0] = False
    assert np.array_equal(spec.layers[0].mask, expected) and spec.layers[0].name == "1"
    assert np.array_equal(spec.layers[0].weight, model[1].weight.detach().double().numpy())
    x = torch.randn(3, 6)
    with torch.no_grad():
        assert torch.allclose(specs_to_module(spec.layers)(x), model(x), atol=1e-6)


def test_exact_zeros_make_a_mask_and_a_dense_layer_has_none():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [-0.0, 3.0, 4.0]]))
        model[1].weight.fill_(0.5)
    spec = read_model(model)
    assert np.array_equal(spec.layers[0].mask, [[True, False, True], [False, True, True]])
    assert spec.layers[1].mask is None and spec.is_sparse


def test_specs_to_module_zeroes_weights_outside_the_mask():
    spec = LinearSpec(weight=np.ones((2, 3)), bias=np.zeros(2), relu=False, name="fc",
                      mask=np.array([[True, False, True], [False, True, False]]))
    weight = specs_to_module([spec])[0].weight.detach().numpy()
    assert np.array_equal(weight, [[1, 0, 1], [0, 1, 0]])


# --- rejected graph forms -----------------------------------------------------------------------


@pytest.mark.parametrize("form, message", [
    (lambda x: x.view(-1), r"^view at node 'view' before the first Linear reshapes to \(-1,\), which does not "
                           r"keep the batch dimension as \(batch, features\); only flattening each sample"),
    (lambda x: x.view(7, -1), r"^view at node 'view' before the first Linear reshapes to \(7, -1\)"),
    (lambda x: x.reshape(x.size(0), 8, 8), r"^reshape at node 'reshape' before the first Linear reshapes to "
                                           r"\(batch, 8, 8\)"),
    (lambda x: x.flatten(), r"^flatten at node 'flatten' before the first Linear has start_dim=0, end_dim=-1: "
                            r"it also flattens the batch dimension"),
    (nn.Flatten(1, 2), r"^Flatten at layer 'form' before the first Linear has start_dim=1, end_dim=2: it "
                       r"flattens dims 1..2"),
    (lambda x: x.view(-1, 63), r"^view at node 'view' makes vectors of 63 values but layer 'fc1' takes 64 inputs"),
    (lambda x: x.view(x.size(1), -1), r"^view at node 'view' before the first Linear reshapes to \(\?, -1\)"),
], ids=["view(-1)", "view(7,-1)", "reshape-3d", "flatten()", "Flatten(1,2)", "view(-1,63)", "view(size(1))"])
def test_reshapes_that_do_not_keep_the_batch_dimension_are_rejected(form, message):
    raises_one_line(Head(form), message)


class LateView(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 3), nn.Linear(3, 2)

    def forward(self, x):
        return self.fc2(self.fc1(x).view(x.size(0), -1))


def test_a_flatten_after_the_first_linear_is_rejected():
    raises_one_line(LateView(), r"^view at node 'view' after layer 'fc1' flattens the output of a Linear layer, "
                                r"which is already \(batch, features\); remove it")


@pytest.mark.parametrize("build, message", [
    (lambda: nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.BatchNorm1d(3)),
     r"^BatchNorm1d '2' after layer '0' follows a ReLU and no Linear comes after it, so it cannot be folded"),
    (lambda: nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3, track_running_stats=False), nn.Linear(3, 2)),
     r"^BatchNorm1d '1' normalises with batch statistics \(no running statistics: track_running_stats=False\)"),
    (lambda: nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2)),
     r"^BatchNorm1d '2' after layer '0' sits between two ReLUs"),
    (lambda: nn.Sequential(nn.BatchNorm1d(4), nn.Flatten(), nn.Linear(4, 2)),
     r"^BatchNorm1d '0' comes before the flatten at layer '1'"),
    (lambda: nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(5)),
     r"^BatchNorm1d '1' has 5 features but layer '0' gives 3 outputs"),
    (lambda: nn.Sequential(nn.Linear(4, 3), nn.BatchNorm2d(3)),
     r"^unsupported operation BatchNorm2d at layer '1' after layer '0'"),
], ids=["bn-after-relu-at-end", "no-running-stats", "between-relus", "before-flatten", "size", "2d"])
def test_batchnorms_that_cannot_be_folded_are_rejected(build, message):
    raises_one_line(build().eval(), message)


@pytest.mark.parametrize("model, message", [
    (nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1), nn.Linear(3, 2)),
     r"^Softmax at layer '1' is not the last operation \(Linear at layer '2' follows it\); a softmax/log_softmax "
     r"is only supported at the end of the model"),
    (nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(dim=0)),
     r"^LogSoftmax at layer '1' after layer '0' normalises over dim 0, not over the classes"),
    (nn.Sequential(nn.Softmax(dim=1), nn.Linear(4, 3)), r"^Softmax at layer '0' comes before the first Linear"),
    (nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1), nn.ReLU()),
     r"^Softmax at layer '1' is not the last operation \(ReLU at layer '2' follows it\)"),
], ids=["middle", "dim0", "first", "then-relu"])
def test_a_softmax_anywhere_but_the_end_is_rejected(model, message):
    raises_one_line(model, message)


def test_read_model_rejects_what_is_not_a_module():
    with pytest.raises(CompressError, match=r"^expected a PyTorch nn.Module, got a dict; load the model"):
        read_model({"weight": torch.zeros(2)})


def test_root_parametrization_is_read_and_tracing_leaves_the_model_unchanged():
    class Parametrized(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(3, 4))

        def forward(self, x):
            return F.linear(x, self.weight)

    torch.manual_seed(0)
    model = Parametrized()
    mask = torch.rand(3, 4) > 0.5
    parametrize.register_parametrization(model, "weight", KeepMask(mask.float()))
    before = set(vars(model))
    spec = read_model(model)
    assert set(vars(model)) == before
    assert spec.layers[0].name == "linear" and np.array_equal(spec.layers[0].mask, mask.numpy())
    assert np.array_equal(spec.layers[0].weight, model.weight.detach().double().numpy())
