"""Loading a PyTorch model and reducing it to the chain of fully-connected layers EIE runs.

EIE evaluates ``y = ReLU(W x + b)`` layer after layer, so the only models accepted are chains

``input → [Flatten] → Linear → [ReLU] → Linear → [ReLU] → ... → output``

in which ``nn.Identity`` and dropout (``nn.Dropout``, ``F.dropout``: identities at inference) may
appear anywhere. ReLU may be ``nn.ReLU``, ``F.relu``, ``torch.relu`` or ``Tensor.relu``; two ReLUs in
a row are accepted because ReLU is idempotent. Everything else (convolutions, other activations,
branches, residual additions, a ReLU before the first Linear, a Flatten after it) is rejected with a
:class:`~compress.errors.CompressError` that names the operation and the ``torch.fx`` node.
"""

from __future__ import annotations

import itertools
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from eie.spec.errors import CompressError

__all__ = ["LinearSpec", "load_model", "extract_layers", "specs_to_module"]

_RELU_FUNCTIONS = (F.relu, torch.relu)
_DROPOUT_FUNCTIONS = (F.dropout,)
_IDENTITY_MODULES = (nn.Identity, nn.Dropout)


@dataclass(frozen=True)
class LinearSpec:
    """One fully-connected layer ``y = W x + b``, optionally followed by ReLU.

    Attributes
    ----------
    weight : numpy.ndarray
        ``float64`` ``(out, in)``.
    bias : numpy.ndarray
        ``float64`` ``(out,)``; zeros for a Linear without bias.
    relu : bool
        Whether ReLU follows the layer.
    name : str
        Qualified module name in the source model (``"fc1"``, ``"0"``, ...).
    """

    weight: np.ndarray
    bias: np.ndarray
    relu: bool
    name: str

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]


def load_model(path) -> nn.Module:
    """Load a whole pickled ``nn.Module`` saved with ``torch.save(model, path)``.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    torch.nn.Module
        The model, in evaluation mode, on the CPU.

    Raises
    ------
    CompressError
        The file is missing, is not a PyTorch pickle, or holds something other than a module.
    """
    path = Path(path)
    if not path.is_file():
        raise CompressError(f"model file {path} does not exist; give the path of a torch.save(model, ...) "
                            f"file")
    try:
        obj = torch.load(path, weights_only=False, map_location="cpu")
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CompressError(f"{path} is not a PyTorch model file ({reason}); save it with "
                            f"torch.save(model, path)") from None
    except (AttributeError, ModuleNotFoundError) as e:
        raise CompressError(f"{path} refers to a class that cannot be imported ({e}); make the model's "
                            f"module importable (PYTHONPATH) before compressing") from None
    if isinstance(obj, dict):
        raise CompressError(f"{path} holds a dict (a state_dict?), not an nn.Module; save the whole model "
                            f"with torch.save(model, path)")
    if not isinstance(obj, nn.Module):
        raise CompressError(f"{path} holds a {type(obj).__name__}, not an nn.Module; save the model with "
                            f"torch.save(model, path)")
    return obj.cpu().eval()


def _trace(model: nn.Module) -> torch.fx.GraphModule:
    try:
        return torch.fx.symbolic_trace(model)
    except Exception as e:  # fx raises many types (TraceError, TypeError, NotImplementedError, ...)
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CompressError(f"torch.fx cannot trace the model ({type(e).__name__}: {reason}); use a "
                            f"model whose forward is a plain chain of Linear and ReLU layers") from None


def _node_op(node: torch.fx.Node, modules: dict) -> str:
    """A readable name for what ``node`` does (``"Conv2d"``, ``"sigmoid"``, ``"add"``)."""
    if node.op == "call_module":
        return type(modules[node.target]).__name__
    if node.op in ("call_function", "call_method"):
        target = node.target
        return target if isinstance(target, str) else getattr(target, "__name__", repr(target))
    return node.op


def _classify(node: torch.fx.Node, modules: dict) -> str:
    """One of ``linear``, ``relu``, ``flatten``, ``identity`` or ``unsupported``."""
    if node.op == "call_module":
        mod = modules[node.target]
        if isinstance(mod, nn.Linear):
            return "linear"
        if isinstance(mod, nn.ReLU):
            return "relu"
        if isinstance(mod, nn.Flatten):
            return "flatten" if mod.start_dim == 1 and mod.end_dim == -1 else "unsupported"
        if isinstance(mod, _IDENTITY_MODULES):
            return "identity"
    elif node.op == "call_function":
        if node.target in _RELU_FUNCTIONS:
            return "relu"
        if node.target in _DROPOUT_FUNCTIONS:
            return "identity"
    elif node.op == "call_method" and node.target == "relu":
        return "relu"
    return "unsupported"


def _single_input(node: torch.fx.Node, current: torch.fx.Node, op: str) -> None:
    """Reject nodes that read anything but the previous value of the chain (branches, adds)."""
    inputs = node.all_input_nodes
    if inputs != [current]:
        raise CompressError(f"unsupported graph at node '{node.name}' ({op}): it does not take exactly the "
                            f"previous layer's output as its only input; only chains of Linear and ReLU "
                            f"are supported (no branches or residual connections)")
    if len(current.users) != 1:
        raise CompressError(f"unsupported graph at node '{current.name}': its output is used "
                            f"{len(current.users)} times (a branch); only chains of Linear and ReLU are "
                            f"supported")


def _linear_spec(node: torch.fx.Node, lin: nn.Linear) -> LinearSpec:
    name = str(node.target)
    if isinstance(lin.weight, nn.parameter.UninitializedParameter):
        raise CompressError(f"layer '{name}' is an uninitialised LazyLinear; run one forward pass before "
                            f"saving the model")
    weight = lin.weight.detach().cpu().to(torch.float64).numpy().copy()
    bias = (np.zeros(lin.out_features) if lin.bias is None
            else lin.bias.detach().cpu().to(torch.float64).numpy().copy())
    if not (np.all(np.isfinite(weight)) and np.all(np.isfinite(bias))):
        raise CompressError(f"layer '{name}' has NaN or infinite weights or biases; retrain or repair the "
                            f"model before compressing")
    return LinearSpec(weight=weight, bias=bias, relu=False, name=name)


def extract_layers(model: nn.Module, n_inputs: int | None = None) -> list[LinearSpec]:
    """Trace ``model`` with ``torch.fx`` and return its chain of fully-connected layers.

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
        The model cannot be traced, contains an operation other than those listed in the module
        docstring, is not a single chain, has no Linear layer, has NaN/inf parameters, or its layer
        shapes do not chain (or do not match ``n_inputs``).
    """
    graph_module = _trace(model)
    modules = dict(graph_module.named_modules())
    for node in graph_module.graph.nodes:
        if node.op not in ("placeholder", "output") and _classify(node, modules) == "unsupported":
            raise CompressError(f"unsupported operation {_node_op(node, modules)} at node '{node.name}'; "
                                f"only Linear, ReLU, Dropout, Identity and a leading Flatten are supported")
    specs: list[LinearSpec] = []
    current = None
    for node in graph_module.graph.nodes:
        if node.op == "placeholder":
            if current is not None:
                raise CompressError(f"the model's forward takes more than one input (node '{node.name}'); "
                                    f"EIE models take a single input vector")
            current = node
            continue
        if node.op == "output":
            _single_input(node, current, "output")
            break
        kind = _classify(node, modules)
        _single_input(node, current, _node_op(node, modules))
        if kind == "linear":
            specs.append(_linear_spec(node, modules[node.target]))
        elif kind == "relu":
            if not specs:
                raise CompressError(f"ReLU at node '{node.name}' comes before the first Linear; EIE applies "
                                    f"ReLU to layer outputs only, so remove it or make the inputs "
                                    f"non-negative")
            last = specs[-1]
            specs[-1] = LinearSpec(weight=last.weight, bias=last.bias, relu=True, name=last.name)
        elif kind == "flatten" and specs:
            raise CompressError(f"Flatten at node '{node.name}' comes after a Linear layer; only a leading "
                                f"Flatten of the input is supported")
        current = node
    if not specs:
        raise CompressError("the model has no nn.Linear layer; EIE compresses fully-connected networks")
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


def specs_to_module(specs, dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """Rebuild a float model ``Linear [ReLU] Linear [ReLU] ...`` from layer descriptions.

    Parameters
    ----------
    specs : sequence of LinearSpec
        Or any objects with ``weight`` (out, in), ``bias`` (out,) and ``relu``.
    dtype : torch.dtype
        Parameter type of the rebuilt model.

    Returns
    -------
    torch.nn.Sequential
        In evaluation mode.
    """
    mods: list[nn.Module] = []
    for spec in specs:
        n_out, n_in = np.shape(spec.weight)
        lin = nn.Linear(n_in, n_out, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(np.asarray(spec.weight), dtype=dtype))
            lin.bias.copy_(torch.as_tensor(np.asarray(spec.bias), dtype=dtype))
        mods.append(lin)
        if spec.relu:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).eval()
