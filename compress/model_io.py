"""Loading a PyTorch model and reducing it to the chain of fully-connected layers EIE runs.

EIE evaluates ``y = ReLU?(W x + b)`` layer after layer, so the models accepted are chains

``input → [flatten] → [BatchNorm1d] → Linear → [ReLU] → [BatchNorm1d] → Linear → ... → [softmax] → output``

read from an ``nn.Module`` with ``torch.fx`` or from a TorchScript module by walking its graph:

- Linear: ``nn.Linear`` (also pruned with ``torch.nn.utils.prune`` or parametrized with
  ``torch.nn.utils.parametrize``), or ``F.linear`` on a module's own parameters.
- ReLU: ``nn.ReLU``, ``F.relu``, ``torch.relu``, ``Tensor.relu`` (and in-place forms); two in a row are
  one ReLU.
- Identities at inference, accepted anywhere: ``nn.Identity``, ``nn.Dropout``, ``F.dropout``.
- A flatten of each sample before the first Linear: ``nn.Flatten()``, ``torch.flatten(x, 1)``,
  ``x.view(x.size(0), -1)``, ``x.reshape(-1, N)``, ...; the model then reads ``(N, H, W, ...)`` inputs.
- ``nn.BatchNorm1d`` with running statistics, folded exactly (float64) into the Linear before it, or,
  after a ReLU or at the input, into the inputs of the Linear after it.
- A trailing softmax or log-softmax, dropped (outputs become logits; the argmax is unchanged).

Everything else (convolutions, other activations, branches, residual additions, a ReLU before the
first Linear, a flatten after it) is rejected with a one-line :class:`~eie.spec.errors.CompressError`
that names the operation, where it is and what is supported.

Sparsity the model already has is kept as :attr:`LinearSpec.mask`: from a ``prune`` mask, a
parametrization's ``mask`` tensor, or exact zeros in the weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import itertools
import operator
import pickle
import sys
import types
import warnings
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize, prune

from eie.spec.errors import CompressError

__all__ = ["LinearSpec", "ModelSpec", "load_model", "read_model", "extract_layers", "specs_to_module"]

_SUPPORTED = ("only Linear, ReLU, Dropout, Identity, BatchNorm1d, a leading flatten/view/reshape and a trailing "
              "softmax/log_softmax are supported")
_FLATTEN_HELP = ("only flattening each sample to a vector before the first Linear is supported (nn.Flatten(), "
                 "x.flatten(1), x.view(x.size(0), -1) or x.reshape(-1, N))")


@dataclass(frozen=True)
class LinearSpec:
    """One fully-connected layer ``y = W x + b``, optionally followed by ReLU.

    Attributes
    ----------
    weight : numpy.ndarray
        ``float64`` ``(out, in)``; exactly ``0.0`` where ``mask`` is False.
    bias : numpy.ndarray
        ``float64`` ``(out,)``; zeros for a Linear without bias.
    relu : bool
        Whether ReLU follows the layer.
    name : str
        Qualified module name in the source model (``"fc1"``, ``"0"``, ...).
    mask : numpy.ndarray or None
        Boolean ``(out, in)``: the weights the model keeps (its pruning mask, or its non-zero weights),
        or None when the layer is dense.
    """

    weight: np.ndarray
    bias: np.ndarray
    relu: bool
    name: str
    mask: np.ndarray | None = None

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]


@dataclass(frozen=True)
class ModelSpec:
    """A model reduced to the layers EIE runs, with what was done to get there.

    Attributes
    ----------
    layers : tuple of LinearSpec
        In evaluation order.
    flatten : bool
        The model begins by flattening each sample, so it takes ``(N, H, W, ...)`` inputs as well as
        ``(N, n_in)``.
    notes : tuple of str
        One sentence per transformation applied (a folded BatchNorm, a dropped softmax, ...).
    kind : str
        ``"nn.Module"`` or ``"TorchScript"``.
    """

    layers: tuple[LinearSpec, ...]
    flatten: bool = False
    notes: tuple[str, ...] = ()
    kind: str = "nn.Module"

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    @property
    def is_sparse(self) -> bool:
        """Whether any layer has a mask (the model is already pruned)."""
        return any(layer.mask is not None for layer in self.layers)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _few(keys, n: int = 4) -> str:
    keys = list(keys)
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


# --- loading ------------------------------------------------------------------------------------

_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")


class _MainClass(Exception):
    """Unpickling met a class defined in the saving script's ``__main__``."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class _MissingClass(Exception):
    """Unpickling met a class that cannot be imported."""

    def __init__(self, module: str, name: str, reason: str):
        super().__init__(f"{module}.{name}")
        self.module, self.name, self.reason = module, name, reason


def load_model(path, *, arch: str | None = None) -> nn.Module:
    """Load a model saved by PyTorch.

    Parameters
    ----------
    path : str or os.PathLike
        One of: a whole pickled module (``torch.save(model, path)``); a ``state_dict`` (or a checkpoint
        dict holding one under ``"state_dict"``, ``"model_state_dict"`` or ``"model"``), which needs
        ``arch``; a TorchScript file (``torch.jit.save``).
    arch : str, optional
        ``"package.module:ClassName"`` or ``"path/to/file.py:ClassName"``. For a state dict, the class
        to instantiate (with no arguments) and load it into; for a whole model pickled from a script
        run as ``__main__``, the file that defines its classes.

    Returns
    -------
    torch.nn.Module
        The model in evaluation mode, on the CPU (a ``torch.jit.ScriptModule`` for TorchScript).

    Raises
    ------
    CompressError
        The file is missing or not a PyTorch file, holds something other than a model or state dict,
        refers to classes that cannot be imported, or does not match ``arch``.
    """
    path = Path(path)
    if not path.is_file():
        problem = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise CompressError(f"model file {path} {problem}; give the path of a model saved with "
                            f"torch.save(model, path), a state_dict (with --arch) or a TorchScript file")
    if _is_torchscript(path):
        return _load_torchscript(path)
    arch_module, arch_cls = _import_arch(arch) if arch is not None else (None, None)
    obj = _torch_load(path, arch, arch_module)
    if isinstance(obj, nn.Module):
        return obj.cpu().eval()
    if isinstance(obj, dict):
        state = _state_dict_in(obj)
        if state is None:
            if isinstance(obj.get("model"), nn.Module):
                return obj["model"].cpu().eval()
            keys = _few([repr(k) for k in obj]) or "none"
            raise CompressError(f"{path} holds a dict that is not a state_dict (keys {keys}); save the model "
                                f"with torch.save(model, path) or its weights with "
                                f"torch.save(model.state_dict(), path)")
        if arch is None:
            raise CompressError(f"{path} holds a state_dict (weights only), not a model; pass --arch "
                                f"module:Class (or FILE.py:Class) naming the model class to load it into")
        return _load_state_dict(path, arch, arch_cls, state)
    raise CompressError(f"{path} holds a {type(obj).__name__}, not an nn.Module; save the model with "
                        f"torch.save(model, path)")


def _import_arch(arch: str) -> tuple[types.ModuleType, type]:
    """The module and class named by ``arch`` (``"pkg.mod:Class"`` or ``"file.py:Class"``)."""
    where, _, name = str(arch).rpartition(":")
    if not where or not name.isidentifier():
        raise CompressError(f"--arch {arch!r} is not MODULE:Class or FILE.py:Class; give e.g. --arch "
                            f"mypackage.models:Net or --arch train.py:Net")
    if where.endswith(".py") or "/" in where or "\\" in where:
        module = _import_file(Path(where), arch)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as e:
            raise CompressError(f"cannot import module {where} named by --arch {arch} ({_first_line(e)}); make "
                                f"it importable (PYTHONPATH) or give --arch FILE.py:{name}") from None
        except Exception as e:  # the user's module may raise anything on import
            raise CompressError(f"importing module {where} named by --arch {arch} failed "
                                f"({type(e).__name__}: {_first_line(e)}); fix the module") from None
    cls = getattr(module, name, None)
    if cls is None:
        raise CompressError(f"{where} does not define {name} (named by --arch {arch}); give the class that "
                            f"defines the model")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise CompressError(f"{name} in {where} (named by --arch {arch}) is not an nn.Module class; give the "
                            f"model's class")
    return module, cls


def _import_file(file: Path, arch: str) -> types.ModuleType:
    """Import a Python file by path under a private module name (its ``__main__`` block does not run)."""
    if not file.is_file():
        raise CompressError(f"{file} named by --arch {arch} does not exist; give the Python file that defines "
                            f"the model class")
    resolved = file.resolve()
    name = "_eie_arch_" + hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, resolved)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module          # dataclasses, pickling and typing look classes up there
    folder = str(resolved.parent)
    sys.path.insert(0, folder)          # so that the file can import its neighbours
    try:
        spec.loader.exec_module(module)
    except BaseException as e:  # noqa: B036 - a script may call sys.exit at import time
        sys.modules.pop(name, None)
        if isinstance(e, KeyboardInterrupt):
            raise
        raise CompressError(f"importing {file} (named by --arch {arch}) failed ({type(e).__name__}: "
                            f"{_first_line(e)}); fix the file, or move the code that runs at import time "
                            f"under if __name__ == '__main__':") from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
    return module


def _is_torchscript(path: Path) -> bool:
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any(n.rsplit("/", 1)[-1] == "constants.pkl" or "/code/" in f"/{n}" for n in names)


def _load_torchscript(path: Path) -> torch.jit.ScriptModule:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # torch.jit.load raises RuntimeError and friends with long messages
        raise CompressError(f"{path} looks like a TorchScript file but torch.jit.load cannot read it "
                            f"({_first_line(e)}); save it again with torch.jit.save") from None
    return module.eval()


def _pickle_module(arch_module: types.ModuleType | None) -> types.ModuleType:
    """A ``pickle_module`` for ``torch.load`` that resolves ``__main__`` classes from ``arch_module``."""

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "__main__":
                if arch_module is None or not hasattr(arch_module, name):
                    raise _MainClass(name)
                return getattr(arch_module, name)
            try:
                return super().find_class(module, name)
            except (ImportError, AttributeError) as e:
                if arch_module is not None and hasattr(arch_module, name):
                    return getattr(arch_module, name)
                raise _MissingClass(module, name, _first_line(e)) from None

    mod = types.ModuleType("_eie_pickle")
    mod.Unpickler = Unpickler
    mod.load = lambda file, **kwargs: Unpickler(file, **kwargs).load()
    return mod


def _torch_load(path: Path, arch: str | None, arch_module: types.ModuleType | None):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, weights_only=False, map_location="cpu",
                              pickle_module=_pickle_module(arch_module))
    except _MainClass as e:
        if arch is None:
            raise CompressError(f"{path} holds class {e.name} defined in the script that saved it (__main__); "
                                f"pass --arch FILE.py:{e.name} naming the file that defines it, or save "
                                f"model.state_dict() / torch.jit.script(model)") from None
        raise CompressError(f"{path} holds class {e.name} defined in the script that saved it (__main__), but "
                            f"{arch.rpartition(':')[0]} does not define {e.name}; pass --arch FILE.py:{e.name} "
                            f"naming the file that defines it") from None
    except _MissingClass as e:
        raise CompressError(f"{path} holds class {e.module}.{e.name}, which cannot be imported ({e.reason}); "
                            f"make its module importable (PYTHONPATH) or pass --arch FILE.py:{e.name} naming "
                            f"the file that defines it") from None
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError, TypeError,
            UnicodeDecodeError, OSError) as e:
        raise CompressError(f"{path} is not a PyTorch model file ({_first_line(e)}); save the model with "
                            f"torch.save(model, path), torch.save(model.state_dict(), path) or "
                            f"torch.jit.save") from None
    except (AttributeError, ImportError) as e:
        raise CompressError(f"{path} refers to something that cannot be imported ({_first_line(e)}); make the "
                            f"model's module importable (PYTHONPATH) or pass --arch FILE.py:Class") from None


def _is_state_dict(obj) -> bool:
    return (isinstance(obj, dict) and len(obj) > 0 and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, torch.Tensor) or k.endswith("_extra_state") for k, v in obj.items())
            and any(isinstance(v, torch.Tensor) for v in obj.values()))


def _state_dict_in(obj: dict):
    if _is_state_dict(obj):
        return obj
    for key in _CHECKPOINT_KEYS:
        if _is_state_dict(obj.get(key)):
            return obj[key]
    return None


def _load_state_dict(path: Path, arch: str, cls: type, state: dict) -> nn.Module:
    try:
        model = cls()
    except Exception as e:  # the user's constructor may raise anything
        raise CompressError(f"cannot instantiate {arch} with no arguments ({type(e).__name__}: {_first_line(e)}); "
                            f"give a class whose __init__ needs no arguments (wrap it in a subclass that "
                            f"fixes them)") from None
    state = OrderedDict(state)
    expected = model.state_dict()
    if all(k.startswith("module.") for k in state) and not any(k.startswith("module.") for k in expected):
        state = OrderedDict((k[len("module."):], v) for k, v in state.items())   # saved from DataParallel
    _reprune(model, state, expected)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = ([f"missing keys {_few(missing)}"] if missing else []) + \
                ([f"unexpected keys {_few(unexpected)}"] if unexpected else [])
        raise CompressError(f"the state_dict in {path} does not match {arch}: {'; '.join(parts)}; pass the "
                            f"--arch class the weights were saved from")
    for key, value in expected.items():
        got = state[key]
        if isinstance(value, torch.Tensor) and isinstance(got, torch.Tensor) and got.shape != value.shape:
            raise CompressError(f"the state_dict in {path} does not match {arch}: {key} has shape "
                                f"{tuple(got.shape)} in the file but {tuple(value.shape)} in the model; pass the "
                                f"--arch class (and sizes) the weights were saved from")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CompressError(f"cannot load the state_dict in {path} into {arch} ({_first_line(e)}); pass the "
                            f"--arch class the weights were saved from") from None
    return model.cpu().eval()


def _reprune(model: nn.Module, state: dict, expected: dict) -> None:
    """Re-create ``torch.nn.utils.prune`` masks for ``X_orig`` / ``X_mask`` pairs of a pruned state dict."""
    for key in list(state):
        if not key.endswith("_orig") or key in expected:
            continue
        stem = key[:-len("_orig")]
        mask = state.get(stem + "_mask")
        if mask is None or stem not in expected or expected[stem].shape != mask.shape:
            continue
        prefix, _, attr = stem.rpartition(".")
        try:
            owner = model.get_submodule(prefix)
        except AttributeError:
            continue
        prune.custom_from_mask(owner, attr, mask=mask)


# --- reading a model ----------------------------------------------------------------------------


@dataclass
class _Op:
    """One element of the chain, before BatchNorm folding and softmax removal."""

    kind: str                   # linear, relu, identity, flatten, bn, softmax
    what: str                   # the operation as the user wrote it ("ReLU", "view", "aten::relu")
    where: str                  # "layer 'fc1'" or "node 'view'"
    name: str = ""              # linear, bn: the layer's name
    weight: np.ndarray | None = None    # linear: W; bn: the scale a of BN(x) = a x + c
    bias: np.ndarray | None = None      # linear: b; bn: the shift c
    mask: np.ndarray | None = None
    features: int | None = None         # flatten: the vector length, when the shape says so
    extra: dict = field(default_factory=dict)


def _position(names: list[str]) -> str:
    return f"after layer '{names[-1]}'" if names else "before the first Linear"


def read_model(model) -> ModelSpec:
    """Reduce ``model`` to the chain of fully-connected layers EIE runs.

    Parameters
    ----------
    model : torch.nn.Module
        An ``nn.Module`` (read with ``torch.fx``) or a TorchScript module (its graph is read).

    Returns
    -------
    ModelSpec

    Raises
    ------
    CompressError
        The model cannot be traced, contains an operation other than those in the module docstring, is
        not a single chain, has no Linear layer, has NaN/inf parameters, or its layer shapes do not chain.
    """
    if isinstance(model, torch.jit.ScriptModule):
        ops, kind = _script_ops(model), "TorchScript"
    elif isinstance(model, nn.Module):
        ops, kind = _fx_ops(model), "nn.Module"
    else:
        raise CompressError(f"expected a PyTorch nn.Module, got a {type(model).__name__}; load the model with "
                            f"load_model")
    layers, flatten, notes = _reduce(ops)
    _check_chain(layers, None)
    return ModelSpec(layers=tuple(layers), flatten=flatten, notes=tuple(notes), kind=kind)


def extract_layers(model, n_inputs: int | None = None) -> list[LinearSpec]:
    """The layers of :func:`read_model`, checked against the data's feature count.

    Parameters
    ----------
    model : torch.nn.Module
    n_inputs : int, optional
        If given, the first layer must take this many inputs (the data set's feature count).

    Returns
    -------
    list of LinearSpec
        In evaluation order; ``relu`` is set on a layer followed by a ReLU.

    Raises
    ------
    CompressError
        As :func:`read_model`, or the first layer does not take ``n_inputs`` inputs.
    """
    specs = list(read_model(model).layers)
    _check_chain(specs, n_inputs)
    return specs


def _check_chain(specs: list[LinearSpec], n_inputs: int | None) -> None:
    if n_inputs is not None and specs[0].n_in != n_inputs:
        raise CompressError(f"layer '{specs[0].name}' takes {specs[0].n_in} inputs but the data has "
                            f"{n_inputs} features; use data that matches the model")
    for prev, nxt in itertools.pairwise(specs):
        if nxt.n_in != prev.n_out:
            raise CompressError(f"layer '{nxt.name}' takes {nxt.n_in} inputs but layer '{prev.name}' gives "
                                f"{prev.n_out} outputs; fix the model's layer sizes")


# --- parameters ---------------------------------------------------------------------------------


def _effective(owner: nn.Module, attr: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The tensor ``owner.attr`` the forward pass uses, and the user's mask on it (or None)."""
    if parametrize.is_parametrized(owner, attr):
        value = getattr(owner, attr)
        masks = [p.mask for p in owner.parametrizations[attr] if isinstance(getattr(p, "mask", None), torch.Tensor)]
        mask = None
        for m in masks:
            m = m.detach().cpu() != 0
            mask = m if mask is None else mask & m
        return value, mask
    orig, mask = getattr(owner, attr + "_orig", None), getattr(owner, attr + "_mask", None)
    if isinstance(orig, torch.Tensor) and isinstance(mask, torch.Tensor):     # torch.nn.utils.prune
        return orig * mask, mask.detach().cpu() != 0
    return getattr(owner, attr, None), None


def _as_array(t) -> np.ndarray:
    return t.detach().cpu().to(torch.float64).numpy().copy()


def _sparsify(weight: np.ndarray, mask: np.ndarray | None, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply the mask rules: ``mask &= weight != 0``; zeros alone make a mask; all-true is dense."""
    if mask is not None:
        try:
            mask = np.broadcast_to(np.asarray(mask, dtype=bool), weight.shape)
        except ValueError:
            raise CompressError(f"layer '{name}' has a mask of shape {np.shape(mask)} for weights of shape "
                                f"{weight.shape}; fix the model's pruning mask") from None
        mask = mask & (weight != 0)
    elif np.any(weight == 0):
        mask = weight != 0
    if mask is None:
        return weight, None
    weight = np.where(mask, weight, 0.0)
    return weight, (None if mask.all() else mask.copy())


def _linear_op(name: str, what: str, where: str, weight, bias, mask) -> _Op:
    if isinstance(weight, nn.parameter.UninitializedParameter):
        raise CompressError(f"layer '{name}' is an uninitialised LazyLinear; run one forward pass before "
                            f"saving the model")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise CompressError(f"{what} at {where} has no 2-D weight tensor; only Linear layers with their own "
                            f"weight parameter are supported")
    w = _as_array(weight)
    b = np.zeros(w.shape[0]) if bias is None else _as_array(bias).reshape(-1)
    if b.shape != (w.shape[0],):
        raise CompressError(f"layer '{name}' has {b.size} biases for {w.shape[0]} outputs; fix the model")
    w, m = _sparsify(w, None if mask is None else np.asarray(mask), name)
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
        raise CompressError(f"layer '{name}' has NaN or infinite weights or biases; retrain or repair the "
                            f"model before compressing")
    return _Op("linear", what, where, name=name, weight=w, bias=b, mask=m)


def _bn_op(name: str, what: str, where: str, weight, bias, mean, var, eps: float, training: bool = False) -> _Op:
    if mean is None or var is None or training:
        raise CompressError(f"{what} '{name}' normalises with batch statistics (no running statistics: "
                            f"track_running_stats=False), so it cannot be folded into a Linear; train it with "
                            f"track_running_stats=True or remove it")
    if isinstance(mean, nn.parameter.UninitializedBuffer):
        raise CompressError(f"{what} '{name}' is uninitialised; run one forward pass before saving the model")
    mean, var = _as_array(mean), _as_array(var)
    gamma = np.ones_like(mean) if weight is None else _as_array(weight)
    beta = np.zeros_like(mean) if bias is None else _as_array(bias)
    a = gamma / np.sqrt(var + float(eps))
    c = beta - mean * a
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(c))):
        raise CompressError(f"{what} '{name}' has NaN or infinite parameters or statistics; retrain or repair "
                            f"the model")
    return _Op("bn", what, where, name=name, weight=a, bias=c)


def _softmax_op(what: str, where: str, fname: str, dim, position: str) -> _Op:
    if dim is not None and dim not in (1, -1) and isinstance(dim, int):
        raise CompressError(f"{what} at {where} {position} normalises over dim {dim}, not over the classes; "
                            f"only a softmax/log_softmax over dim 1 (or -1) is supported")
    return _Op("softmax", what, where, extra={"fname": fname})


# --- folding the chain --------------------------------------------------------------------------


def _reduce(ops: list[_Op]) -> tuple[list[LinearSpec], bool, list[str]]:
    """Fold BatchNorms, drop a trailing softmax, apply ReLUs; check flatten and softmax positions."""
    layers: list[dict] = []
    notes: list[str] = []
    flatten = False
    features = None             # (op, n) of a flatten that fixes the vector length
    pending = None              # a BatchNorm waiting for the next Linear: [a, c, names, op]
    softmax = None
    names: list[str] = []
    for op in ops:
        position = _position(names)
        if softmax is not None and op.kind != "identity":
            raise CompressError(f"{softmax.what} at {softmax.where} is not the last operation ({op.what} at "
                                f"{op.where} follows it); a softmax/log_softmax is only supported at the end of "
                                f"the model, where it is dropped")
        if op.kind == "identity":
            continue
        if op.kind == "flatten":
            if layers:
                raise CompressError(f"{op.what} at {op.where} {position} flattens the output of a Linear layer, "
                                    f"which is already (batch, features); remove it: {_FLATTEN_HELP}")
            if pending is not None:
                raise CompressError(f"{pending[3].what} '{pending[3].name}' comes before the flatten at "
                                    f"{op.where}, so it normalises channels, not features; move it after the "
                                    f"flatten or remove it")
            flatten = True
            if op.features is not None:
                features = (op, op.features)
        elif op.kind == "relu":
            if not layers:
                raise CompressError(f"{op.what} at {op.where} comes before the first Linear; EIE applies ReLU to "
                                    f"layer outputs only, so remove it or make the inputs non-negative")
            if pending is not None:
                raise CompressError(f"{pending[3].what} '{pending[3].name}' {position} sits between two ReLUs, so "
                                    f"it cannot be folded into a Linear; move it before the ReLU that precedes it "
                                    f"or remove it")
            layers[-1]["relu"] = True
        elif op.kind == "bn":
            if layers and not layers[-1]["relu"] and pending is None:
                last = layers[-1]
                if op.weight.size != last["weight"].shape[0]:
                    raise CompressError(f"{op.what} '{op.name}' has {op.weight.size} features but layer "
                                        f"'{last['name']}' gives {last['weight'].shape[0]} outputs; fix the "
                                        f"model's sizes")
                last["weight"] = op.weight[:, None] * last["weight"]
                last["bias"] = op.weight * last["bias"] + op.bias
                last["folded"] = True
                notes.append(f"folded {op.what} '{op.name}' into Linear '{last['name']}'")
            elif pending is None:
                pending = [op.weight, op.bias, [op.name], op]
            else:                           # BN after BN: compose a2 (a1 x + c1) + c2
                if op.weight.size != pending[0].size:
                    raise CompressError(f"{op.what} '{op.name}' has {op.weight.size} features but "
                                        f"'{pending[2][-1]}' before it has {pending[0].size}; fix the model")
                pending = [op.weight * pending[0], op.weight * pending[1] + op.bias, pending[2] + [op.name],
                           pending[3]]
        elif op.kind == "linear":
            layer = {"name": op.name, "weight": op.weight, "bias": op.bias, "mask": op.mask, "relu": False,
                     "folded": False}
            if not layers and features is not None and features[1] != op.weight.shape[1]:
                fl = features[0]
                raise CompressError(f"{fl.what} at {fl.where} makes vectors of {features[1]} values but layer "
                                    f"'{op.name}' takes {op.weight.shape[1]} inputs; fix the reshape")
            if pending is not None:
                a, c, bn_names, bn = pending
                if a.size != op.weight.shape[1]:
                    raise CompressError(f"{bn.what} '{bn_names[-1]}' has {a.size} features but layer "
                                        f"'{op.name}' takes {op.weight.shape[1]} inputs; fix the model's sizes")
                layer["bias"] = op.bias + op.weight @ c
                layer["weight"] = op.weight * a[None, :]
                layer["folded"] = True
                notes.extend(f"folded {bn.what} '{n}' into the inputs of Linear '{op.name}'" for n in bn_names)
                pending = None
            layers.append(layer)
            names.append(op.name)
        elif op.kind == "softmax":
            if not layers:
                raise CompressError(f"{op.what} at {op.where} comes before the first Linear; a softmax/log_softmax "
                                    f"is only supported at the end of the model")
            softmax = op
    if pending is not None:
        bn = pending[3]
        raise CompressError(f"{bn.what} '{pending[2][0]}' {_position(names)} follows a ReLU and no Linear comes "
                            f"after it, so it cannot be folded into a Linear; move it before the ReLU or remove it")
    if not layers:
        raise CompressError("the model has no nn.Linear layer; EIE compresses fully-connected networks")
    if softmax is not None:
        notes.append(f"dropped the trailing {softmax.extra['fname']}: outputs are logits, argmax unchanged")
    specs = []
    for layer in layers:
        weight, mask = layer["weight"], layer["mask"]
        if layer["folded"]:
            weight, mask = _sparsify(weight, mask, layer["name"])
            if not (np.all(np.isfinite(weight)) and np.all(np.isfinite(layer["bias"]))):
                raise CompressError(f"layer '{layer['name']}' has NaN or infinite weights after folding its "
                                    f"BatchNorm; repair the model")
        specs.append(LinearSpec(weight=weight, bias=layer["bias"], relu=layer["relu"], name=layer["name"],
                                mask=mask))
    return specs, flatten, notes


# --- torch.fx -----------------------------------------------------------------------------------

_RELU_FUNCTIONS = (F.relu, torch.relu, F.relu_, torch.relu_)
_DROPOUT_FUNCTIONS = (F.dropout, F.alpha_dropout, torch.dropout, torch.alpha_dropout)
_LINEAR_FUNCTIONS = (F.linear, torch._C._nn.linear)
_SOFTMAX_FUNCTIONS = {F.softmax: "softmax", torch.softmax: "softmax", F.log_softmax: "log_softmax",
                      torch.log_softmax: "log_softmax"}
_IDENTITY_MODULES = (nn.Identity, nn.Dropout, nn.AlphaDropout)
_SIZE_ARITHMETIC = (operator.mul, operator.floordiv, operator.add, operator.sub)
_LEAF_MODULES = (nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Flatten, nn.Softmax, nn.LogSoftmax, *_IDENTITY_MODULES)


def _stock(module: nn.Module, bases) -> type | None:
    """The base class in ``bases`` whose forward ``module`` uses unchanged, if any."""
    for base in bases:
        if isinstance(module, base) and type(module).forward is base.forward:
            return base
    return None


class _Tracer(torch.fx.Tracer):
    """Keeps the supported layers (also pruned or parametrized ones) as leaves of the graph."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return _stock(m, _LEAF_MODULES) is not None or super().is_leaf_module(m, module_qualified_name)


def _trace(model: nn.Module) -> torch.fx.Graph:
    try:
        return _Tracer().trace(model)
    except Exception as e:  # fx raises many types (TraceError, TypeError, NotImplementedError, ...)
        raise CompressError(f"torch.fx cannot trace the model ({type(e).__name__}: {_first_line(e)}); use a "
                            f"model whose forward is a plain chain of Linear and ReLU layers") from None


def _arg(node: torch.fx.Node, index: int, name: str, default=None):
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


class _FxReader:
    """Turns the ``torch.fx`` graph of a model into a list of :class:`_Op`."""

    def __init__(self, model: nn.Module):
        base = _stock(model, (nn.Linear,))
        # The root module is never a leaf; wrap a bare Linear so that it is read like any other layer.
        self.root = nn.Sequential(OrderedDict(linear=model)) if base is not None else model
        before = set(vars(self.root))
        try:
            self.graph = _trace(self.root)
        finally:
            added = set(vars(self.root)) - before     # fx stores tensors computed while tracing on the root
            self.constants = {key: vars(self.root)[key] for key in added}
            for key in added:
                delattr(self.root, key)
        self.nodes = list(self.graph.nodes)
        self.aux: set[torch.fx.Node] = set()

    # -- naming and classification

    def module(self, node):
        return self.root.get_submodule(node.target)

    def what(self, node) -> str:
        if node.op == "call_module":
            return type(self.module(node)).__name__.removeprefix("Parametrized")
        if node.op in ("call_function", "call_method"):
            target = node.target
            return target if isinstance(target, str) else getattr(target, "__name__", repr(target))
        return node.op

    def where(self, node) -> str:
        return f"layer '{node.target}'" if node.op == "call_module" else f"node '{node.name}'"

    def linear_name(self, node) -> str:
        if node.op == "call_module":
            return str(node.target)
        weight = _arg(node, 1, "weight")
        if isinstance(weight, torch.fx.Node) and (weight.op == "get_attr" or self.is_parametrized_attr(weight)):
            prefix, _, attr = str(weight.target).replace("parametrizations.", "").rpartition(".")
            if prefix:
                return prefix
            if attr != "weight" and attr not in self.constants:
                return attr
        return node.name

    def is_parametrized_attr(self, node) -> bool:
        """A parametrized attribute of a traced (non-leaf) module: fx calls its ``ParametrizationList``."""
        return (node.op == "call_module" and ".parametrizations." in f".{node.target}"
                and isinstance(self.module(node), parametrize.ParametrizationList))

    def is_shape(self, node) -> bool:
        """``x.size(...)``, ``x.shape`` and items of them: arguments of a view, not part of the chain."""
        if node.op == "call_method" and node.target == "size":
            return True
        if node.op == "call_function" and node.target is getattr and len(node.args) == 2 \
                and node.args[1] == "shape":
            return True
        if node.op == "call_function" and node.target is operator.getitem:
            return isinstance(node.args[0], torch.fx.Node) and node.args[0] in self.aux
        inputs = node.all_input_nodes                    # arithmetic on sizes: c * h * w
        return (node.op == "call_function" and node.target in _SIZE_ARITHMETIC and len(inputs) > 0
                and all(n in self.aux and n.op != "get_attr" for n in inputs))

    def classify(self, node) -> str:
        """``linear``, ``relu``, ``identity``, ``flatten``, ``view``, ``bn``, ``softmax`` or ``unsupported``."""
        if node.op == "call_module":
            mod = self.module(node)
            base = _stock(mod, _LEAF_MODULES)
            if base is nn.Linear:
                return "linear"
            if base is nn.ReLU:
                return "relu"
            if base is nn.Flatten:
                return "flatten"
            if base is nn.BatchNorm1d:
                return "bn"
            if base in (nn.Softmax, nn.LogSoftmax):
                return "softmax"
            if base in _IDENTITY_MODULES:
                return "identity"
        elif node.op == "call_function":
            target = node.target
            if target in _RELU_FUNCTIONS:
                return "relu"
            if target in _DROPOUT_FUNCTIONS:
                return "identity"
            if target in _LINEAR_FUNCTIONS:
                return "linear"
            if target in _SOFTMAX_FUNCTIONS:
                return "softmax"
            if target is torch.flatten:
                return "flatten"
            if target is torch.reshape:
                return "view"
        elif node.op == "call_method":
            kinds = {"relu": "relu", "relu_": "relu", "flatten": "flatten", "view": "view", "reshape": "view",
                     "softmax": "softmax", "log_softmax": "softmax", "contiguous": "identity"}
            if node.target in kinds:
                return kinds[node.target]
        return "unsupported"

    # -- reading

    def ops(self) -> list[_Op]:
        names: list[str] = []
        kinds = {}
        for node in self.nodes:                  # pass 1: every operation must be one we know
            if node.op in ("placeholder", "output"):
                continue
            if node.op == "get_attr" or self.is_shape(node) or self.is_parametrized_attr(node):
                self.aux.add(node)
                continue
            kind = kinds[node] = self.classify(node)
            if kind == "unsupported":
                raise CompressError(f"unsupported operation {self.what(node)} at {self.where(node)} "
                                    f"{_position(names)}; {_SUPPORTED}")
            if kind == "linear":
                names.append(self.linear_name(node))
        ops: list[_Op] = []
        names = []
        chain: list[torch.fx.Node] = []
        current = None
        for node in self.nodes:                  # pass 2: a single chain from the input to the output
            if node in self.aux:
                continue
            if node.op == "placeholder":
                if current is not None:
                    raise CompressError(f"the model's forward takes more than one input (node '{node.name}'); "
                                        f"EIE models take a single input vector")
                current = node
                chain.append(node)
                continue
            what = "output" if node.op == "output" else self.what(node)
            self.check_single_input(node, current, what)
            if node.op == "output":
                break
            op = self.op(node, kinds[node], chain, _position(names))
            ops.append(op)
            if op.kind == "linear":
                names.append(op.name)
            current = node
            chain.append(node)
        return ops

    def check_single_input(self, node, current, what: str) -> None:
        """Reject nodes that read anything but the previous value of the chain (branches, adds)."""
        inputs = [n for n in node.all_input_nodes if n not in self.aux]
        if inputs != [current]:
            raise CompressError(f"unsupported graph at node '{node.name}' ({what}): it does not take exactly the "
                                f"previous layer's output as its only input; only chains of Linear and ReLU "
                                f"are supported (no branches or residual connections)")
        users = [u for u in current.users if u not in self.aux]
        if len(users) != 1:
            raise CompressError(f"unsupported graph at node '{current.name}': its output is used {len(users)} "
                                f"times (a branch); only chains of Linear and ReLU are supported")

    def op(self, node, kind: str, chain: list, position: str) -> _Op:
        what, where = self.what(node), self.where(node)
        if kind == "linear":
            return self.linear(node, what, where)
        if kind == "bn":
            bn = self.module(node)
            return _bn_op(str(node.target), what, where, bn.weight, bn.bias, bn.running_mean, bn.running_var,
                          bn.eps)
        if kind == "softmax":
            if node.op == "call_module":
                mod = self.module(node)
                fname = "softmax" if isinstance(mod, nn.Softmax) else "log_softmax"
                return _softmax_op(what, where, fname, mod.dim, position)
            fname = _SOFTMAX_FUNCTIONS.get(node.target, node.target)
            return _softmax_op(what, where, fname, _arg(node, 1, "dim"), position)
        if kind == "flatten":
            if node.op == "call_module":
                start, end = self.module(node).start_dim, self.module(node).end_dim
            else:
                start, end = _arg(node, 1, "start_dim", 0), _arg(node, 2, "end_dim", -1)
            _check_flatten(what, where, position, start, end)
            return _Op("flatten", what, where)
        if kind == "view":
            if node.op == "call_method":
                shape = node.args[1:] or (node.kwargs.get("size", node.kwargs.get("shape", ())),)
            else:
                shape = (_arg(node, 1, "shape", ()),)
            if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)):
                shape = tuple(shape[0])
            shape = tuple(_BATCH if self.is_batch(s, chain) else _SYM if isinstance(s, torch.fx.Node) else s
                          for s in shape)
            return _Op("flatten", what, where, features=_check_view(what, where, position, shape))
        return _Op(kind, what, where)

    def is_batch(self, value, chain) -> bool:
        """Whether ``value`` is ``x.size(0)`` / ``x.shape[0]`` / ``x.size()[0]`` of a value in the chain."""
        if not isinstance(value, torch.fx.Node):
            return False
        if value.op == "call_method" and value.target == "size":
            return value.args[0] in chain and _arg(value, 1, "dim") == 0
        if value.op == "call_function" and value.target is operator.getitem and value.args[1] == 0:
            src = value.args[0]
            return (isinstance(src, torch.fx.Node) and src.args[0] in chain
                    and ((src.op == "call_method" and src.target == "size" and _arg(src, 1, "dim") is None)
                         or (src.op == "call_function" and src.target is getattr)))
        return False

    def linear(self, node, what: str, where: str) -> _Op:
        name = self.linear_name(node)
        if node.op == "call_module":
            lin = self.module(node)
            weight, mask = _effective(lin, "weight")
            bias, _ = _effective(lin, "bias")
            return _linear_op(name, "Linear", where, weight, bias, mask)
        tensors = []
        for index, arg_name in ((1, "weight"), (2, "bias")):
            value = _arg(node, index, arg_name)
            if value is None and arg_name == "bias":
                tensors.append((None, None))
            elif isinstance(value, torch.fx.Node) and value.op == "get_attr":
                tensors.append(self.attribute(value.target))
            elif isinstance(value, torch.fx.Node) and self.is_parametrized_attr(value):
                prefix, _, attr = f".{value.target}".rpartition(".parametrizations.")
                tensors.append(_effective(self.root.get_submodule(prefix[1:]), attr))
            else:
                raise CompressError(f"{what} at {where} takes a {arg_name} computed in forward; only F.linear "
                                    f"on the module's own parameters is supported")
        (weight, mask), (bias, _) = tensors
        return _linear_op(name, what, where, weight, bias, mask)

    def attribute(self, target: str):
        if target in self.constants:
            return self.constants[target], None
        prefix, _, attr = target.rpartition(".")
        return _effective(self.root.get_submodule(prefix), attr)


class _Sym:
    """A scalar that depends on the input's shape (unknown when reading the graph)."""


class _Batch(_Sym):
    """The batch size of the chain's tensor (``x.size(0)``)."""

    def __repr__(self) -> str:
        return "batch"


_BATCH = _Batch()


def _check_flatten(what: str, where: str, position: str, start, end) -> None:
    if start != 1 or end != -1:
        detail = ("it also flattens the batch dimension" if start == 0 else
                  f"it flattens dims {start}..{end}, not every dim after the batch dimension")
        raise CompressError(f"{what} at {where} {position} has start_dim={start}, end_dim={end}: {detail}; "
                            f"{_FLATTEN_HELP}")


def _check_view(what: str, where: str, position: str, shape: tuple) -> int | None:
    """The vector length of a batch-keeping reshape ``(batch, -1)``, ``(batch, N)`` or ``(-1, N)``.

    ``(batch, k)`` for a ``k`` computed from the input's shape (``c * h * w``) is a flatten too: the reshape
    only succeeds if ``k`` is the product of the other dimensions.
    """
    if len(shape) == 2:
        first, second = shape
        if first is _BATCH and isinstance(second, _Sym) and second is not _BATCH:
            return None
        if first is _BATCH and isinstance(second, int) and (second == -1 or second > 0):
            return None if second == -1 else second
        if isinstance(first, int) and first == -1 and isinstance(second, int) and second > 0:
            return second
    text = "(" + ", ".join("?" if not isinstance(s, int | _Batch) else repr(s) for s in shape) + \
           ("," if len(shape) == 1 else "") + ")"
    raise CompressError(f"{what} at {where} {position} reshapes to {text}, which does not keep the batch "
                        f"dimension as (batch, features); {_FLATTEN_HELP}")


def _fx_ops(model: nn.Module) -> list[_Op]:
    return _FxReader(model).ops()


# --- TorchScript --------------------------------------------------------------------------------


class _Chain:
    """The value flowing through the chain (a tensor of the batch)."""




class _Shape(_Sym):
    """``x.size()`` of the chain."""


class _Opaque:
    """A value the reader does not compute; an error if the chain depends on it."""


@dataclass
class _Obj:
    """A module or tensor attribute reached through ``prim::GetAttr`` from ``self``."""

    value: object
    path: str


_SYM, _SHAPE, _OPAQUE = _Sym(), _Shape(), _Opaque()
_SCALAR_OPS = {
    "aten::eq": operator.eq, "aten::ne": operator.ne, "aten::lt": operator.lt, "aten::le": operator.le,
    "aten::gt": operator.gt, "aten::ge": operator.ge, "aten::add": operator.add, "aten::sub": operator.sub,
    "aten::mul": operator.mul, "aten::floordiv": operator.floordiv, "aten::neg": operator.neg,
    "aten::__not__": operator.not_, "aten::__and__": operator.and_, "aten::__or__": operator.or_,
    "aten::__is__": operator.is_, "aten::__isnot__": operator.is_not, "aten::Bool": bool, "aten::Int": int,
    "aten::Float": float, "aten::ScalarImplicit": lambda x: x, "prim::NumToTensor": lambda x: x,
    "prim::unchecked_cast": lambda x: x, "aten::__getitem__": operator.getitem, "aten::len": len,
    "prim::min": min, "prim::max": max,
}
_TS_RELU = ("aten::relu", "aten::relu_")
_TS_IDENTITY = ("aten::dropout", "aten::dropout_", "aten::alpha_dropout", "aten::alpha_dropout_",
                "aten::feature_dropout", "aten::contiguous", "aten::detach")
_TS_SOFTMAX = {"aten::softmax": "softmax", "aten::log_softmax": "log_softmax"}
_TS_METADATA = ("aten::dim", "aten::numel", "prim::dtype", "prim::device", "prim::layout",
                "aten::is_floating_point")


class _ScriptReader:
    """Walks the inlined graph of a TorchScript module, evaluating what does not depend on the input."""

    def __init__(self, module: torch.jit.ScriptModule):
        self.module = module
        self.env: dict[int, object] = {}
        self.ops: list[_Op] = []
        self.names: list[str] = []
        self.current: _Chain | None = None

    def read(self) -> list[_Op]:
        try:
            graph = self.module.inlined_graph
        except Exception as e:  # a module without a forward method, for instance
            raise CompressError(f"cannot read the TorchScript module's forward ({_first_line(e)}); save the "
                                f"model with torch.jit.script or torch.jit.trace") from None
        inputs = list(graph.inputs())
        if len(inputs) != 2:
            raise CompressError(f"the model's forward takes {len(inputs) - 1} inputs; EIE models take a single "
                                f"input vector")
        self.env[inputs[0].unique()] = _Obj(self.module, "")
        self.current = _Chain()
        self.env[inputs[1].unique()] = self.current
        self.block(graph.nodes())
        outputs = [self.env.get(v.unique(), _OPAQUE) for v in graph.outputs()]
        if len(outputs) != 1 or outputs[0] is not self.current:
            raise CompressError("the TorchScript model does not return the output of its chain of layers as its "
                                "single result; only chains of Linear and ReLU are supported")
        return self.ops

    def block(self, nodes) -> None:
        for node in nodes:
            self.node(node)

    def get(self, value):
        return self.env.get(value.unique(), _OPAQUE)

    def set_outputs(self, node, values) -> None:
        for out, value in zip(node.outputs(), values, strict=False):
            self.env[out.unique()] = value

    def where(self, node) -> str:
        outputs = list(node.outputs())
        return f"node '%{outputs[0].debugName()}'" if outputs else f"node '{node.kind()}'"

    def node(self, node) -> None:
        kind = node.kind()
        args = [self.get(v) for v in node.inputs()]
        if kind == "prim::Constant":
            try:
                value = node.output().toIValue()
            except Exception:  # constants of types Python cannot hold (functions, ...)
                value = _OPAQUE
            self.set_outputs(node, [_Obj(value, "") if isinstance(value, torch.Tensor) else value])
        elif kind == "prim::GetAttr":
            self.set_outputs(node, [self.getattr(args[0], node.s("name"))])
        elif kind == "prim::If":
            self.branch(node, args[0])
        elif any(isinstance(a, _Chain) for a in args):
            self.chain_node(node, kind, args)
        elif kind in ("prim::ListConstruct", "prim::TupleConstruct"):
            self.set_outputs(node, [list(args) if kind == "prim::ListConstruct" else tuple(args)])
        elif kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            n = len(list(node.outputs()))
            seq = args[0]
            if isinstance(seq, _Shape):
                self.set_outputs(node, [_BATCH] + [_SYM] * (n - 1))
            elif isinstance(seq, list | tuple):
                self.set_outputs(node, seq)
            else:
                self.set_outputs(node, [_OPAQUE] * n)
        elif kind == "aten::__getitem__" and isinstance(args[0], _Shape):
            self.set_outputs(node, [_BATCH if args[1] == 0 else _SYM])
        elif kind == "prim::RaiseException":
            raise CompressError(f"the TorchScript model raises an exception on its forward path "
                                f"({self.where(node)}); only chains of Linear and ReLU are supported")
        elif kind == "prim::Loop":
            raise CompressError(f"unsupported operation prim::Loop (a loop) at {self.where(node)} "
                                f"{_position(self.names)}; {_SUPPORTED}")
        elif kind in ("aten::size", "prim::shape") and args and isinstance(args[0], _Obj) \
                and isinstance(args[0].value, torch.Tensor):
            shape = list(args[0].value.shape)
            self.set_outputs(node, [shape if len(args) == 1 else shape[args[1]]])
        elif kind in _SCALAR_OPS:
            if kind in ("aten::__is__", "aten::__isnot__"):
                args = [a.value if isinstance(a, _Obj) else a for a in args]
            if any(isinstance(a, _Sym) for a in args):
                passthrough = ("aten::Int", "prim::NumToTensor", "aten::ScalarImplicit", "prim::unchecked_cast")
                value = _BATCH if kind in passthrough and args[0] is _BATCH else _SYM
            elif any(isinstance(a, _Opaque | _Obj) for a in args):
                value = _OPAQUE
            else:
                try:
                    value = _SCALAR_OPS[kind](*args)
                except Exception:  # an operation on values this reader does not model
                    value = _OPAQUE
            self.set_outputs(node, [value])
        else:
            self.set_outputs(node, [_OPAQUE] * len(list(node.outputs())))

    def getattr(self, parent, name: str):
        if not isinstance(parent, _Obj) or not isinstance(parent.value, nn.Module):
            return _OPAQUE
        if name == "training":
            return False                    # inference semantics, whatever mode the model was saved in
        try:
            value = getattr(parent.value, name)
        except AttributeError:
            return _OPAQUE
        path = f"{parent.path}.{name}" if parent.path else name
        return _Obj(value, path) if isinstance(value, nn.Module | torch.Tensor) else value

    def branch(self, node, cond) -> None:
        blocks = list(node.blocks())
        if isinstance(cond, bool):
            chosen = blocks[0] if cond else blocks[1]
        elif isinstance(cond, _Sym):
            raises = [any(n.kind() == "prim::RaiseException" for n in b.nodes()) for b in blocks]
            if raises.count(True) == 1:
                chosen = blocks[raises.index(False)]          # a check on the input's shape: assume it passes
            elif all(out.type().kind() != "TensorType" for out in node.outputs()):
                self.set_outputs(node, [_SYM] * len(list(node.outputs())))   # shape arithmetic
                return
            else:
                raise CompressError(f"unsupported operation prim::If (control flow that depends on the input) at "
                                    f"{self.where(node)} {_position(self.names)}; {_SUPPORTED}")
        else:
            raise CompressError(f"unsupported operation prim::If (control flow on a value computed in forward) at "
                                f"{self.where(node)} {_position(self.names)}; {_SUPPORTED}")
        self.block(chosen.nodes())
        self.set_outputs(node, [self.get(v) for v in chosen.outputs()])

    def chain_node(self, node, kind: str, args: list) -> None:
        position = _position(self.names)
        where = self.where(node)
        if kind in ("aten::size", "prim::shape"):
            self.set_outputs(node, [_SHAPE if len(args) == 1 else (_BATCH if args[1] == 0 else _SYM)])
            return
        if kind in _TS_METADATA:
            self.set_outputs(node, [_SYM])
            return
        handled = kind in _TS_RELU + _TS_IDENTITY + ("aten::linear", "aten::flatten", "aten::view",
                                                     "aten::reshape", "aten::batch_norm") or kind in _TS_SOFTMAX
        if not handled or sum(isinstance(a, _Chain) for a in args) != 1 or not isinstance(args[0], _Chain):
            raise CompressError(f"unsupported operation {kind} at {where} {position}; {_SUPPORTED}")
        if args[0] is not self.current:
            raise CompressError(f"unsupported graph at {where} ({kind}): it does not take the previous layer's "
                                f"output (a branch); only chains of Linear and ReLU are supported")
        if kind in _TS_RELU:
            op = _Op("relu", kind, where)
        elif kind in _TS_IDENTITY:
            op = _Op("identity", kind, where)
        elif kind == "aten::linear":
            op = self.linear(kind, where, args)
        elif kind == "aten::flatten":
            _check_flatten(kind, where, position, args[1], args[2])
            op = _Op("flatten", kind, where)
        elif kind in ("aten::view", "aten::reshape"):
            shape = tuple(args[1]) if isinstance(args[1], list | tuple) else (args[1],)
            op = _Op("flatten", kind, where, features=_check_view(kind, where, position, shape))
        elif kind == "aten::batch_norm":
            op = self.batch_norm(kind, where, args)
        else:
            op = _softmax_op(kind, where, _TS_SOFTMAX[kind], args[1] if isinstance(args[1], int) else None,
                             position)
        self.ops.append(op)
        if op.kind == "linear":
            self.names.append(op.name)
        self.current = _Chain()
        self.set_outputs(node, [self.current])

    def tensor(self, value, what: str, where: str, arg: str, optional: bool = False):
        if value is None and optional:
            return None, ""
        if isinstance(value, _Obj) and isinstance(value.value, torch.Tensor):
            return value.value, value.path
        raise CompressError(f"{what} at {where} takes a {arg} computed in forward; only layers with their own "
                            f"parameters are supported")

    def linear(self, kind: str, where: str, args: list) -> _Op:
        weight, path = self.tensor(args[1], kind, where, "weight")
        bias, _ = self.tensor(args[2] if len(args) > 2 else None, kind, where, "bias", optional=True)
        prefix, _, attr = path.rpartition(".")
        if prefix:
            name = prefix
        elif path and attr != "weight":
            name = attr
        else:
            name, k = "linear", 1
            while name in self.names:
                k += 1
                name = f"linear_{k}"
        return _linear_op(name, "Linear", where, weight, bias, None)

    def batch_norm(self, kind: str, where: str, args: list) -> _Op:
        weight, wpath = self.tensor(args[1], kind, where, "weight", optional=True)
        bias, _ = self.tensor(args[2], kind, where, "bias", optional=True)
        mean, mpath = self.tensor(args[3], kind, where, "running_mean", optional=True)
        var, _ = self.tensor(args[4], kind, where, "running_var", optional=True)
        path = mpath or wpath
        name = path.rpartition(".")[0] or path or where
        return _bn_op(name, "BatchNorm1d", where, weight, bias, mean, var, args[7], training=args[5] is True)


def _script_ops(module: torch.jit.ScriptModule) -> list[_Op]:
    return _ScriptReader(module).read()


# --- rebuilding ---------------------------------------------------------------------------------


def specs_to_module(specs, dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """Rebuild a float model ``Linear [ReLU] Linear [ReLU] ...`` from layer descriptions.

    Parameters
    ----------
    specs : sequence of LinearSpec
        Or any objects with ``weight`` (out, in), ``bias`` (out,), ``relu`` and optionally ``mask``.
    dtype : torch.dtype
        Parameter type of the rebuilt model.

    Returns
    -------
    torch.nn.Sequential
        In evaluation mode; weights are exactly zero where a layer's mask is False.
    """
    mods: list[nn.Module] = []
    for spec in specs:
        weight = np.asarray(spec.weight)
        mask = getattr(spec, "mask", None)
        if mask is not None:
            weight = np.where(np.asarray(mask, dtype=bool), weight, 0.0)
        n_out, n_in = weight.shape
        lin = nn.Linear(n_in, n_out, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(weight, dtype=dtype))
            lin.bias.copy_(torch.as_tensor(np.asarray(spec.bias), dtype=dtype))
        mods.append(lin)
        if spec.relu:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).eval()
