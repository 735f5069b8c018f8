"""compress.model_io.load_model: state dicts with --arch, __main__ classes, TorchScript, and their errors."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from eie.compress.digits import DigitsMLP
from eie.compress.model_io import load_model, read_model, specs_to_module
from eie.spec.errors import CompressError

torch.set_num_threads(1)

MODELS_PY = textwrap.dedent("""
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(6, 5)
            self.fc2 = nn.Linear(5, 3)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))


    class NeedsArgs(nn.Module):
        def __init__(self, width):
            super().__init__()


    NOT_A_CLASS = 3
""")

TRAIN_PY = textwrap.dedent("""
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(6, 5)
            self.fc2 = nn.Linear(5, 3)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))


    class Other(Net):
        pass


    if __name__ == "__main__":
        import os
        import sys
        here = os.path.dirname(os.path.abspath(__file__))
        torch.manual_seed(0)
        model = Net().eval()
        x = torch.randn(4, 6)
        torch.save(model, os.path.join(here, "model.pt"))
        torch.save({"x": x, "y": model(x).detach()}, os.path.join(here, "io.pt"))
        torch.save(Other(), os.path.join(here, "other.pt"))
        sys.path.insert(0, os.path.join(here, "pkgdir"))
        from mymodels import Net as Imported
        torch.save(Imported(), os.path.join(here, "imported.pt"))
        open(os.path.join(here, "main-ran"), "w").close()
""")


@pytest.fixture(scope="module")
def saved_by_script(tmp_path_factory):
    """Models pickled by ``train.py`` run as ``__main__`` (one subprocess for the module)."""
    folder = tmp_path_factory.mktemp("script")
    (folder / "train.py").write_text(TRAIN_PY)
    (folder / "pkgdir").mkdir()
    (folder / "pkgdir" / "mymodels.py").write_text(MODELS_PY)
    subprocess.run([sys.executable, "train.py"], cwd=folder, check=True, capture_output=True)
    (folder / "main-ran").unlink()
    return folder


def same_function(model, other, x) -> bool:
    with torch.no_grad():
        return torch.allclose(model(x), other(x), atol=1e-6)


def load_error(path, arch=None) -> str:
    with pytest.raises(CompressError) as info:
        load_model(path, arch=arch)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.fixture
def models_py(tmp_path):
    path = tmp_path / "models.py"
    path.write_text(MODELS_PY)
    return path


def test_whole_model_round_trip(tmp_path):
    torch.manual_seed(0)
    model = DigitsMLP().eval()
    torch.save(model, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert isinstance(loaded, DigitsMLP) and not loaded.training
    assert same_function(loaded, model, torch.rand(3, 64))


@pytest.mark.parametrize("wrap", [None, "state_dict", "model_state_dict", "model"])
def test_state_dict_with_module_arch(tmp_path, wrap):
    torch.manual_seed(0)
    model = DigitsMLP().eval()
    state = model.state_dict()
    torch.save(state if wrap is None else {wrap: state, "epoch": 3}, tmp_path / "sd.pt")
    loaded = load_model(tmp_path / "sd.pt", arch="eie.compress.digits:DigitsMLP")
    assert isinstance(loaded, DigitsMLP) and not loaded.training
    assert same_function(loaded, model, torch.rand(3, 64))


def test_state_dict_with_file_arch(tmp_path, models_py):
    torch.manual_seed(0)
    model = nn.Sequential()        # the keys of models.Net, built here to compare
    model.fc1, model.fc2 = nn.Linear(6, 5), nn.Linear(5, 3)
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    loaded = load_model(tmp_path / "sd.pt", arch=f"{models_py}:Net")
    assert type(loaded).__name__ == "Net" and type(loaded).__module__.startswith("_eie_arch_")
    assert torch.equal(loaded.fc1.weight, model.fc1.weight) and torch.equal(loaded.fc2.bias, model.fc2.bias)


def test_state_dict_of_a_pruned_model_keeps_its_mask(tmp_path):
    torch.manual_seed(0)
    model = DigitsMLP().eval()
    prune.l1_unstructured(model[0], "weight", amount=0.9)
    kept = model[0].weight_mask.bool().numpy()
    assert "0.weight_orig" in model.state_dict()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    spec = read_model(load_model(tmp_path / "sd.pt", arch="eie.compress.digits:DigitsMLP"))
    assert np.array_equal(spec.layers[0].mask, kept) and spec.layers[1].mask is None
    x = torch.rand(5, 64)
    assert same_function(specs_to_module(spec.layers), model, x)


def test_state_dict_without_arch_says_to_pass_it(tmp_path):
    torch.save(DigitsMLP().state_dict(), tmp_path / "sd.pt")
    assert load_error(tmp_path / "sd.pt").endswith(
        "sd.pt holds a state_dict (weights only), not a model; pass --arch module:Class (or FILE.py:Class) "
        "naming the model class to load it into")


def test_state_dict_that_does_not_match_the_arch(tmp_path, models_py):
    state = {"fc1.weight": torch.zeros(5, 6), "fc1.bias": torch.zeros(5), "head.weight": torch.zeros(3, 5)}
    torch.save(state, tmp_path / "sd.pt")
    message = load_error(tmp_path / "sd.pt", arch=f"{models_py}:Net")
    assert message.startswith("the state_dict in ") and message.endswith(
        f"sd.pt does not match {models_py}:Net: missing keys fc2.weight, fc2.bias; unexpected keys head.weight; "
        f"pass the --arch class the weights were saved from")
    state = {"fc1.weight": torch.zeros(5, 7), "fc1.bias": torch.zeros(5), "fc2.weight": torch.zeros(3, 5),
             "fc2.bias": torch.zeros(3)}
    torch.save(state, tmp_path / "sd.pt")
    assert "fc1.weight has shape (5, 7) in the file but (5, 6) in the model" in \
        load_error(tmp_path / "sd.pt", arch=f"{models_py}:Net")


@pytest.mark.parametrize("arch, message", [
    ("Net", r"^--arch 'Net' is not MODULE:Class or FILE.py:Class"),
    ("nowhere.py:Net", r"^nowhere.py named by --arch nowhere.py:Net does not exist"),
    ("no_such_module_xyz:Net", r"^cannot import module no_such_module_xyz named by --arch"),
    ("{models}:Missing", r"^.*models.py does not define Missing \(named by --arch"),
    ("{models}:NOT_A_CLASS", r"^NOT_A_CLASS in .*models.py \(named by --arch .*\) is not an nn.Module class"),
    ("{models}:NeedsArgs", r"^cannot instantiate .*models.py:NeedsArgs with no arguments \(TypeError: "),
    ("{broken}:Net", r"^importing .*broken.py \(named by --arch .*\) failed \(ZeroDivisionError: division by "
                     r"zero\); fix the file"),
])
def test_arch_errors(tmp_path, models_py, arch, message):
    (tmp_path / "broken.py").write_text("1 / 0\n")
    torch.save(DigitsMLP().state_dict(), tmp_path / "sd.pt")
    arch = arch.format(models=models_py, broken=tmp_path / "broken.py")
    with pytest.raises(CompressError, match=message) as info:
        load_model(tmp_path / "sd.pt", arch=arch)
    assert "\n" not in str(info.value)


def test_class_from_the_saving_script_main(saved_by_script):
    path = saved_by_script / "model.pt"
    assert load_error(path) == (
        f"{path} holds class Net defined in the script that saved it (__main__); pass --arch FILE.py:Net naming "
        f"the file that defines it, or save model.state_dict() / torch.jit.script(model)")
    model = load_model(path, arch=f"{saved_by_script / 'train.py'}:Net")
    io = torch.load(saved_by_script / "io.pt")
    with torch.no_grad():
        assert torch.allclose(model(io["x"]), io["y"])
    assert not (saved_by_script / "main-ran").exists()        # importing train.py did not run its main block


def test_main_class_missing_from_the_arch_file(saved_by_script, models_py):
    assert load_error(saved_by_script / "other.pt", arch=f"{models_py}:Net").endswith(
        f"holds class Other defined in the script that saved it (__main__), but {models_py} does not define "
        f"Other; pass --arch FILE.py:Other naming the file that defines it")


class ScriptNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(64)
        self.fc1, self.fc2 = nn.Linear(64, 10), nn.Linear(10, 4)

    def forward(self, x):
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(self.bn(x)))
        x = F.dropout(x, 0.5, self.training)
        return F.log_softmax(self.fc2(x), dim=1)


def script_models():
    torch.manual_seed(0)
    net = ScriptNet().eval()
    with torch.no_grad():
        net.bn.running_mean.normal_()
        net.bn.running_var.uniform_(0.5, 2.0)
    seq = nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.ReLU(), nn.Dropout(), nn.Linear(10, 4)).eval()
    x = torch.randn(6, 1, 8, 8)
    return {"scripted-custom": torch.jit.script(net), "traced-custom": torch.jit.trace(net, x),
            "scripted-sequential": torch.jit.script(seq), "traced-sequential": torch.jit.trace(seq, x)}, x


@pytest.mark.parametrize("which", ["scripted-custom", "traced-custom", "scripted-sequential", "traced-sequential"])
def test_torchscript_files_are_read_without_warnings(tmp_path, which):
    models, x = script_models()
    torch.jit.save(models[which], tmp_path / "ts.pt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model(tmp_path / "ts.pt")
        spec = read_model(model)
    assert not caught, [str(w.message) for w in caught]
    assert spec.kind == "TorchScript" and spec.flatten and spec.n_in == 64 and spec.n_out == 4
    custom = which.endswith("custom")
    assert [s.name for s in spec.layers] == (["fc1", "fc2"] if custom else ["1", "4"])
    with torch.no_grad():
        logits = specs_to_module(spec.layers)(x.flatten(1))
        expected = model(x)
    if custom:
        assert spec.notes == ("folded BatchNorm1d 'bn' into the inputs of Linear 'fc1'",
                              "dropped the trailing log_softmax: outputs are logits, argmax unchanged")
        assert torch.allclose(torch.log_softmax(logits, 1), expected, atol=1e-5)
    else:
        assert spec.notes == () and torch.allclose(logits, expected, atol=1e-6)


class Unpack(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 3)

    def forward(self, x):
        b, c, h, w = x.shape
        return torch.softmax(self.fc(x.reshape(b, c * h * w)), dim=-1)


def test_torchscript_reshape_from_unpacked_shape():
    torch.manual_seed(0)
    x = torch.randn(5, 1, 8, 8)
    for module in (torch.jit.script(Unpack()), torch.jit.trace(Unpack(), x)):
        spec = read_model(module)
        assert spec.flatten and [s.name for s in spec.layers] == ["fc"]
        with torch.no_grad():
            assert torch.allclose(torch.softmax(specs_to_module(spec.layers)(x.flatten(1)), 1), module(x), atol=1e-6)


def test_torchscript_zeros_become_the_mask(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 2))
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    kept = model[0].weight_mask.bool().numpy()
    prune.remove(model[0], "weight")
    torch.jit.save(torch.jit.script(model), tmp_path / "ts.pt")
    spec = read_model(load_model(tmp_path / "ts.pt"))
    assert np.array_equal(spec.layers[0].mask, kept) and spec.layers[1].mask is None


class Sigmoid(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return torch.sigmoid(self.fc(x))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x) + x


@pytest.mark.parametrize("model, message", [
    (Sigmoid(), r"^unsupported operation aten::sigmoid at node '%\S+' after layer 'fc'; only Linear, ReLU"),
    (Residual(), r"^unsupported operation aten::add at node '%\S+' after layer 'fc'"),
    (nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.BatchNorm1d(3)),
     r"^BatchNorm1d '2' after layer '0' follows a ReLU and no Linear comes after it"),
], ids=["sigmoid", "residual", "bn-at-end"])
def test_torchscript_rejections_name_the_op(tmp_path, model, message):
    for module in (torch.jit.script(model.eval()), torch.jit.trace(model.eval(), torch.randn(2, 4))):
        torch.jit.save(module, tmp_path / "ts.pt")
        with pytest.raises(CompressError, match=message) as info:
            read_model(load_model(tmp_path / "ts.pt"))
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("content, message", [
    (b"PK\x03\x04 truncated zip", r"^.*bad.pt is not a PyTorch model file \("),
    ({"epoch": 3, "lr": 0.1}, r"^.*bad.pt holds a dict that is not a state_dict \(keys 'epoch', 'lr'\); save the"),
    ({}, r"^.*bad.pt holds a dict that is not a state_dict \(keys none\)"),
    (torch.zeros(3), r"^.*bad.pt holds a Tensor, not an nn.Module"),
])
def test_load_errors(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(CompressError, match=message) as info:
        load_model(path)
    assert "\n" not in str(info.value)


def test_class_that_cannot_be_imported(saved_by_script):
    assert "imported.pt holds class mymodels.Net, which cannot be imported (No module named 'mymodels'); make its " \
           "module importable (PYTHONPATH) or pass --arch FILE.py:Net" in load_error(saved_by_script / "imported.pt")
    model = load_model(saved_by_script / "imported.pt", arch=f"{saved_by_script / 'pkgdir' / 'mymodels.py'}:Net")
    assert type(model).__name__ == "Net"


def test_a_directory_is_not_a_model_file(tmp_path):
    assert load_error(tmp_path) == (f"model file {tmp_path} is a directory, not a file; give the path of a model "
                                    f"saved with torch.save(model, path), a state_dict (with --arch) or a "
                                    f"TorchScript file")
