"""Reading a PyTorch LSTM model: one ``nn.LSTM`` and the Linear layers after it.

The ESE array runs ``input → nn.LSTM → [select] → [Linear → ReLU → ... → Linear] → output`` where

- the LSTM has one layer, is unidirectional, has ``proj_size`` or not, ``batch_first`` either way, and
  starts from a zero state (no ``(h0, c0)`` argument);
- the selection is the **last step** (``out[:, -1]`` / ``out[:, -1, :]`` when batch first, ``out[-1]``
  otherwise, or the final hidden state ``h_n[-1]``, ``h_n[0]``, ``h_n.squeeze(0)``), or nothing: the
  head then applies to **every step** (``self.fc(out)``);
- the head is read by :func:`eie.compress.model_io.read_model` (Linear, ReLU, Dropout, Identity,
  BatchNorm1d folding, a trailing softmax, ...), so it follows the MLP rules; it may be empty.

Anything else recurrent is refused in one line that names the variant and what is supported: GRU,
vanilla RNN, bidirectional or stacked (``num_layers > 1``) LSTMs, several LSTMs, the cell modules
(``nn.LSTMCell`` in a Python loop), an initial state, the cell state ``c_n`` as an output, and LSTMs
inside TorchScript. Sequences are always given samples first, ``(batch, steps, features)``; a model
that is not batch-first is fed the transposed batch when it is evaluated.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx
from torch import nn

from eie.compress.model_io import (
    _IDENTITY_MODULES,
    LinearSpec,
    _as_array,
    _effective,
    _first_line,
    _sparsify,
    _stock,
    _Tracer,
    read_model,
)
from eie.spec.errors import CompressError

__all__ = ["SUPPORTED", "LSTMSpec", "is_recurrent", "recurrent_variant", "read_lstm_model", "lstm_forward"]

SUPPORTED = ("the ESE array runs one unidirectional single-layer nn.LSTM (proj_size optional, batch_first either way) "
             "followed by Linear layers")
_SCRIPT_NAMES = {"LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"}


@dataclass(frozen=True)
class LSTMSpec:
    """An LSTM model as the ESE array runs it.

    Attributes
    ----------
    w_gates : numpy.ndarray
        ``float64`` ``(4H, I + R)``: ``[weight_ih | weight_hh]``, rows in PyTorch's gate order.
    bias : numpy.ndarray
        ``(4H,)``: ``bias_ih + bias_hh`` (zeros without bias).
    w_proj : numpy.ndarray or None
        ``(P, H)`` ``weight_hr`` of ``proj_size = P``.
    gate_mask, proj_mask : numpy.ndarray or None
        The model's own sparsity (pruning masks or exact zeros); None when dense.
    head : tuple of LinearSpec
        The Linear layers after the LSTM (empty: the output is ``h_t``).
    input_size, hidden_size : int
    batch_first, every_step : bool
    name : str
        The LSTM module's name.
    notes : tuple of str
    """

    w_gates: np.ndarray
    bias: np.ndarray
    w_proj: np.ndarray | None
    gate_mask: np.ndarray | None
    proj_mask: np.ndarray | None
    head: tuple[LinearSpec, ...]
    input_size: int
    hidden_size: int
    batch_first: bool
    every_step: bool
    name: str
    notes: tuple[str, ...] = ()

    kind = "LSTM"

    @property
    def proj_size(self) -> int:
        return 0 if self.w_proj is None else self.w_proj.shape[0]

    @property
    def recurrent_size(self) -> int:
        return self.proj_size or self.hidden_size

    @property
    def n_out(self) -> int:
        return self.head[-1].n_out if self.head else self.recurrent_size

    @property
    def is_sparse(self) -> bool:
        return self.gate_mask is not None or self.proj_mask is not None or any(l.mask is not None for l in self.head)

    def describe(self) -> str:
        proj = f", projection {self.proj_size}" if self.proj_size else ""
        head = "".join(f" → {layer.n_out}" for layer in self.head)
        return (f"LSTM {self.input_size} → {self.hidden_size}{proj}{head} "
                f"({'every step' if self.every_step else 'last step'})")


def is_recurrent(model) -> bool:
    """Whether ``model`` holds any recurrent module (LSTM, GRU, RNN or their cells), scripted or not."""
    if isinstance(model, torch.jit.ScriptModule):
        return any(getattr(m, "original_name", "") in _SCRIPT_NAMES for m in model.modules())
    return isinstance(model, nn.Module) and any(isinstance(m, nn.RNNBase | nn.RNNCellBase)
                                                for m in model.modules())


def recurrent_variant(module: nn.Module) -> str | None:
    """Why a recurrent module is not supported (None for a supported ``nn.LSTM``)."""
    if isinstance(module, nn.GRU):
        return "a GRU"
    if isinstance(module, nn.LSTM):
        if module.bidirectional and module.num_layers > 1:
            return f"a bidirectional {module.num_layers}-layer LSTM"
        if module.bidirectional:
            return "a bidirectional LSTM"
        if module.num_layers > 1:
            return f"a {module.num_layers}-layer LSTM (num_layers={module.num_layers})"
        return None
    if isinstance(module, nn.RNN):
        return f"a vanilla RNN (nonlinearity={module.nonlinearity})"
    if isinstance(module, nn.RNNCellBase):
        return f"an {type(module).__name__} stepped by the model's own loop"
    if isinstance(module, nn.RNNBase):
        return f"a {type(module).__name__}"
    return None


def _find_lstm(model: nn.Module) -> tuple[str, nn.LSTM]:
    found = []
    for name, module in model.named_modules():
        if isinstance(module, nn.RNNBase | nn.RNNCellBase):
            variant = recurrent_variant(module)
            if variant is not None:
                where = f"layer '{name}'" if name else "the model"
                raise CompressError(f"unsupported recurrent layer ({where} is {variant}); {SUPPORTED}")
            found.append((name, module))
    if not found:
        raise CompressError(f"the model has no nn.LSTM; {SUPPORTED}")
    if len(found) > 1:
        names = ", ".join(f"'{n}'" for n, _ in found)
        raise CompressError(f"unsupported recurrent layers {names}: {len(found)} LSTMs (stacked or side by side); "
                            f"{SUPPORTED}")
    return found[0]


class _LSTMTracer(_Tracer):
    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, nn.LSTM) or super().is_leaf_module(m, module_qualified_name)


def _where(node) -> str:
    return f"node '{node.name}' ({node.op} {getattr(node.target, '__name__', node.target)})"


def _is_identity(node, root) -> bool:
    if node.op == "call_module":
        return _stock(root.get_submodule(node.target), _IDENTITY_MODULES) is not None
    return node.op == "call_function" and node.target in (torch.nn.functional.dropout,)


def _only_user(node):
    users = list(node.users)
    if len(users) != 1:
        raise CompressError(f"the LSTM's output {_where(node)} is used {len(users)} times; only a single chain from "
                            f"the LSTM to the output is supported ({SUPPORTED})")
    return users[0]


def _index(node):
    return node.args[1] if node.op == "call_function" and node.target is operator.getitem else None


def _last_step(index, batch_first: bool) -> bool:
    """Whether ``out[index]`` selects the last step of a ``(B, T, H)`` (batch first) or ``(T, B, H)`` output."""
    full = slice(None, None, None)
    if not isinstance(index, tuple):
        index = (index,)
    while len(index) > 1 and index[-1] == full:
        index = index[:-1]
    return index == ((full, -1) if batch_first else (-1,))


def read_lstm_model(model) -> LSTMSpec:
    """Reduce an LSTM model to what the ESE array runs (see the module docstring).

    Raises
    ------
    CompressError
        One line naming the unsupported part and what is supported.
    """
    if isinstance(model, torch.jit.ScriptModule):
        raise CompressError(f"a TorchScript model with a recurrent layer cannot be read; save the nn.Module with "
                            f"torch.save(model, path) instead ({SUPPORTED})")
    if not isinstance(model, nn.Module):
        raise CompressError(f"expected a PyTorch nn.Module, got a {type(model).__name__}")
    name, lstm = _find_lstm(model)
    try:
        graph = _LSTMTracer().trace(model)
    except Exception as e:  # fx raises many types
        raise CompressError(f"torch.fx cannot trace the model ({type(e).__name__}: {_first_line(e)}); use a "
                            f"forward that calls the nn.LSTM on its input and Linear layers on its output") from None
    _drop_unused(graph)                 # unpacked but unused parts of the LSTM's result (h_n, c_n, ...)
    calls = [n for n in graph.nodes if n.op == "call_module" and n.target == name]
    if len(calls) != 1:
        raise CompressError(f"the LSTM '{name}' is called {len(calls)} times in forward; {SUPPORTED}")
    call = calls[0]
    if len(call.args) != 1 or call.kwargs:
        raise CompressError(f"the LSTM '{name}' is given an initial state (h0, c0); only a zero initial state is "
                            f"supported")
    source = call.args[0]
    while isinstance(source, torch.fx.Node) and source.op != "placeholder":
        if not _is_identity(source, model):
            raise CompressError(f"unsupported operation before the LSTM at {_where(source)}; the LSTM must read the "
                                f"model's input (batch, steps, features) directly")
        source = source.args[0]
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise CompressError("the model's forward takes more than one input; an LSTM model takes one sequence")

    selected, every_step = _selection(call, lstm)
    head = _head(model, graph, selected)
    w_ih, mask_ih = _effective(lstm, "weight_ih_l0")
    w_hh, mask_hh = _effective(lstm, "weight_hh_l0")
    w_ih, w_hh = _as_array(w_ih), _as_array(w_hh)
    mask = None
    if mask_ih is not None or mask_hh is not None:
        mask = np.concatenate([np.ones(w_ih.shape, bool) if mask_ih is None else np.asarray(mask_ih),
                               np.ones(w_hh.shape, bool) if mask_hh is None else np.asarray(mask_hh)], axis=1)
    w_gates, gate_mask = _sparsify(np.concatenate([w_ih, w_hh], axis=1), mask, name)
    bias = np.zeros(w_gates.shape[0])
    if lstm.bias:
        bias = _as_array(_effective(lstm, "bias_ih_l0")[0]) + _as_array(_effective(lstm, "bias_hh_l0")[0])
    w_proj = proj_mask = None
    if lstm.proj_size:
        w, m = _effective(lstm, "weight_hr_l0")
        w_proj, proj_mask = _sparsify(_as_array(w), None if m is None else np.asarray(m), f"{name}.weight_hr_l0")
    if not all(np.all(np.isfinite(a)) for a in (w_gates, bias) + (() if w_proj is None else (w_proj,))):
        raise CompressError(f"the LSTM '{name}' has NaN or infinite weights; retrain or repair the model")
    notes = [f"LSTM '{name}': {lstm.input_size} inputs, {lstm.hidden_size} units"
             + (f", projection to {lstm.proj_size}" if lstm.proj_size else "")
             + f", batch_first={lstm.batch_first}; output {'of every step' if every_step else 'of the last step'}"]
    if head is not None:
        notes += list(head.notes)
        if head.flatten:
            raise CompressError("the head after the LSTM flattens its input; only Linear layers on each step's "
                                "output are supported")
    return LSTMSpec(w_gates=w_gates, bias=bias, w_proj=w_proj, gate_mask=gate_mask, proj_mask=proj_mask,
                    head=() if head is None else tuple(head.layers), input_size=lstm.input_size,
                    hidden_size=lstm.hidden_size, batch_first=lstm.batch_first, every_step=every_step, name=name,
                    notes=tuple(notes))


def _drop_unused(graph: torch.fx.Graph) -> None:
    """Remove ``getitem`` nodes nobody reads (``out, (h, c) = lstm(x)`` unpacks all of them)."""
    changed = True
    while changed:
        changed = False
        for node in reversed(list(graph.nodes)):
            if node.op == "call_function" and node.target is operator.getitem and not node.users:
                graph.erase_node(node)
                changed = True


def _selection(call, lstm: nn.LSTM):
    """The node whose value feeds the head, and whether the head runs on every step."""
    user = _only_user(call)
    part = _index(user)
    if part == 0:                                   # the output sequence
        seq = user
        nxt = _only_user(seq)
        index = _index(nxt)
        if index is None:
            if nxt.op == "output":
                return seq, True
            return seq, True                        # Linear (or dropout) on every step
        if _last_step(index, lstm.batch_first):
            return nxt, False
        want = "out[:, -1]" if lstm.batch_first else "out[-1]"
        raise CompressError(f"the LSTM output is indexed with {index!r} at {_where(nxt)}; only the last step ({want}) "
                            f"or every step is supported")
    if part == 1:                                   # (h_n, c_n)
        state = user
        nxt = _only_user(state)
        if _index(nxt) != 0:
            raise CompressError(f"the model uses the LSTM's cell state c_n at {_where(nxt)}; only h_n (the last "
                                f"step's output) or the output sequence is supported")
        h_n = nxt
        sel = _only_user(h_n)
        index = _index(sel)
        squeeze = sel.op in ("call_method", "call_function") and getattr(sel.target, "__name__", sel.target) == \
            "squeeze" and tuple(sel.args[1:]) in ((0,), ) and not sel.kwargs
        if index in (0, -1) or squeeze:
            return sel, False
        raise CompressError(f"h_n is used at {_where(sel)} without selecting its layer; write h_n[-1] or "
                            f"h_n.squeeze(0)")
    raise CompressError(f"the LSTM's result is used at {_where(user)}; unpack it as out, (h_n, c_n) = lstm(x)")


def _head(model: nn.Module, graph: torch.fx.Graph, selected):
    """The head after ``selected`` as a ModelSpec (None when ``selected`` is the model's output)."""
    nodes = list(graph.nodes)
    start = nodes.index(selected)
    if list(selected.users)[0].op == "output":
        return None
    head = torch.fx.Graph()
    env = {selected: head.placeholder("h")}

    def lookup(n):
        if n not in env:
            if n.op != "get_attr":
                raise CompressError(f"{_where(n)} before the LSTM's output also feeds the head; only a chain of "
                                    f"Linear layers after the LSTM is supported")
            env[n] = head.node_copy(n)
        return env[n]

    for node in nodes[start + 1:]:
        if any(n in env for n in node.all_input_nodes):
            env[node] = head.node_copy(node, lookup)
    module = torch.fx.GraphModule(model, head)
    return read_model(module)


def lstm_forward(model: nn.Module, spec: LSTMSpec, x: torch.Tensor) -> torch.Tensor:
    """The user's model on sequences given samples first ``(B, T, I)``; outputs ``(B, n_out)`` or
    ``(B, T, n_out)``."""
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(x if spec.batch_first else x.transpose(0, 1))
    model.train(was)
    if spec.every_step and not spec.batch_first:
        out = out.transpose(0, 1)
    return out
