"""Deep Compression of an LSTM for the ESE array: prune (load-balance-aware or plain), share, calibrate.

:func:`run_lstm_pipeline` takes an :class:`~eie.compress.lstm_io.LSTMSpec` and sequence data and
returns the pruned, weight-shared LSTM (:class:`SharedLSTM`) with the score after every stage;
:func:`calibrate_lstm` turns it into the :class:`~eie.spec.ese.QuantizedLSTM` the images encode.
The same building blocks as the MLP's: magnitude masks and their load balance
(:func:`eie.compress.prune.magnitude_mask`), the cubic pruning schedule, k-means weight sharing with
slot 0 the zero (:func:`eie.compress.quantize.share_weights`), centroid fine-tuning through
:class:`~eie.compress.quantize.CodebookWeight`, power-of-two formats
(:func:`eie.compress.fixedpoint.frac_bits_for`, and :func:`~eie.compress.fixedpoint.calibrate` for
the head) and Deep Compression's storage accounting (:func:`eie.compress.storage.storage_report`).

**Load-balance-aware pruning** (ESE): the stacked gate matrix is pruned in the hardware's row order,
where PE ``p`` holds the four gates of units ``p, p + N, ...``
(:func:`eie.spec.ese.gate_row_order`), each PE's sub-matrix to the same number of non-zeros. Its
input columns and recurrent columns are balanced separately (they are separate phases of a step),
each keeping as many weights as plain magnitude pruning of the whole matrix would. The projection
and head layers are balanced over EIE's interleaving. *Plain* pruning keeps the largest weights of
each matrix wherever they are.

**Densities**: one per matrix (gates, projection, head layers), or one for all. Training uses a
float LSTM on explicit tensors (:class:`LSTMNet`, PyTorch's equations), deterministic and
single-threaded like the MLP's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.utils.parametrize as parametrize
import torch.nn.utils.prune as torch_prune
from torch import nn

from eie.compress.fixedpoint import calibrate, frac_bits_for
from eie.compress.lstm_io import LSTMSpec
from eie.compress.model_io import specs_to_module
from eie.compress.prune import magnitude_mask, step_densities, target_count
from eie.compress.quantize import CodebookWeight, SharedLayer, share_weights, with_codebook
from eie.compress.storage import StorageReport, storage_report
from eie.compress.train import Dataset, deterministic
from eie.spec.config import ConfigError
from eie.spec.errors import CompressError
from eie.spec.ese import ESEConfig, QuantizedLSTM, gate_frac_bits, gate_row_order, unit_frac_bits
from eie.spec.network import QuantizedLayer

__all__ = ["LSTMNet", "SharedLSTM", "LSTMPipelineResult", "gate_mask", "matrix_densities", "train_lstm",
           "evaluate_lstm", "predict_lstm", "run_lstm_pipeline", "calibrate_lstm", "pe_balance"]

Progress = Callable[[str, int, int], None]


class LSTMNet(nn.Module):
    """A float LSTM on explicit tensors (PyTorch's equations), its projection and its head.

    ``w_gates`` is the stacked ``[W_ih | W_hh]`` ``(4H, I + R)``, ``bias`` ``b_ih + b_hh``; ``w_proj`` the
    projection; ``head`` an ``nn.Sequential`` of Linear/ReLU. Inputs are ``(B, T, I)``; outputs
    ``(B, n_out)``, or ``(B, T, n_out)`` when ``every_step``. Masks and codebooks attach to these
    tensors with ``torch.nn.utils.prune`` and ``torch.nn.utils.parametrize``.
    """

    def __init__(self, *, w_gates, bias, w_proj, head, input_size: int, hidden_size: int, every_step: bool,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.input_size, self.hidden_size, self.every_step = input_size, hidden_size, every_step
        self.w_gates = nn.Parameter(torch.as_tensor(np.asarray(w_gates), dtype=dtype).clone())
        self.bias = nn.Parameter(torch.as_tensor(np.asarray(bias), dtype=dtype).clone())
        if w_proj is None:
            self.register_parameter("w_proj", None)
        else:
            self.w_proj = nn.Parameter(torch.as_tensor(np.asarray(w_proj), dtype=dtype).clone())
        self.head = head

    @classmethod
    def from_spec(cls, spec: LSTMSpec, dtype: torch.dtype = torch.float32) -> LSTMNet:
        w_gates = spec.w_gates if spec.gate_mask is None else np.where(spec.gate_mask, spec.w_gates, 0.0)
        w_proj = spec.w_proj if spec.proj_mask is None or spec.w_proj is None else \
            np.where(spec.proj_mask, spec.w_proj, 0.0)
        return cls(w_gates=w_gates, bias=spec.bias, w_proj=w_proj, head=specs_to_module(spec.head, dtype),
                   input_size=spec.input_size, hidden_size=spec.hidden_size, every_step=spec.every_step,
                   dtype=dtype)

    def linears(self) -> list[nn.Linear]:
        return [m for m in self.head if isinstance(m, nn.Linear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H, I = self.hidden_size, self.input_size
        w = self.w_gates
        xw = x @ w[:, :I].T + self.bias                     # every step's input products at once
        w_h = w[:, I:]
        B, T = x.shape[0], x.shape[1]
        h = x.new_zeros(B, w_h.shape[1])
        c = x.new_zeros(B, H)
        outs = []
        for t in range(T):
            z = xw[:, t] + h @ w_h.T
            i, f, g, o = z.split(H, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            if self.w_proj is not None:
                h = h @ self.w_proj.T
            if self.every_step:
                outs.append(h)
        return self.head(torch.stack(outs, dim=1) if self.every_step else h)


@dataclass
class SharedLSTM:
    """A pruned, weight-shared LSTM: :class:`~eie.compress.quantize.SharedLayer` for the stacked gate
    matrix (``(4H, I + R)``, bias ``b_ih + b_hh``), the projection (zero bias) and the head."""

    gates: SharedLayer
    proj: SharedLayer | None
    head: list[SharedLayer]
    input_size: int
    hidden_size: int
    every_step: bool

    def matrices(self) -> list[SharedLayer]:
        return [self.gates] + ([self.proj] if self.proj is not None else []) + list(self.head)

    def net(self, dtype: torch.dtype = torch.float32) -> LSTMNet:
        """The float LSTM with the shared weights ``centroids[index]``."""
        from eie.compress.quantize import shared_module
        return LSTMNet(w_gates=self.gates.weight, bias=self.gates.bias,
                       w_proj=None if self.proj is None else self.proj.weight, head=shared_module(self.head, dtype),
                       input_size=self.input_size, hidden_size=self.hidden_size, every_step=self.every_step,
                       dtype=dtype).eval()


@dataclass
class LSTMPipelineResult:
    """What :func:`run_lstm_pipeline` produced (scores in percent of the data's task).

    ``storage`` is Deep Compression's accounting of the whole model; ``gate_storage`` of the gate
    matrices alone (the figure ESE reports). ``balance`` is the gate matrix's PE load balance for the
    pruning's PE count (mean over max non-zeros per PE).
    """

    shared: SharedLSTM
    masks: list[np.ndarray]
    densities: list[float]
    float_score: float
    pruned_score: float
    kmeans_score: float
    quantized_score: float
    storage: StorageReport
    gate_storage: StorageReport
    options: object
    model: LSTMSpec
    prune_step_scores: list[float]

    @property
    def shared_layers(self) -> list[SharedLayer]:
        return self.shared.matrices()


# --- training ------------------------------------------------------------------------------------

def _flat(task, out: torch.Tensor, y: torch.Tensor):
    """Every-step outputs ``(B, T, n)`` and targets as ``(B·T, n)`` and ``(B·T[, n])`` for the task."""
    if out.dim() == 3:
        out = out.reshape(-1, out.shape[-1])
        y = y.reshape(-1) if task.labelled else y.reshape(-1, out.shape[-1])
    return out, y


def predict_lstm(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    was = net.training
    net.eval()
    with torch.no_grad():
        out = net(x)
    net.train(was)
    return out


def evaluate_lstm(net: nn.Module, data: Dataset, split: str = "test") -> float:
    """Score (percent) of ``net`` on a split; every-step outputs are scored step by step."""
    x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
    return data.task.score(*_flat(data.task, predict_lstm(net, x), y))


def train_lstm(net: nn.Module, data: Dataset, epochs: int, lr: float, *, seed: int = 0, weight_decay: float = 0.0,
               batch_size: int = 64) -> nn.Module:
    """Adam with a cosine schedule on the task's loss, deterministic; returns ``net`` in evaluation mode.

    Pruning masks (``torch.nn.utils.prune``) and codebooks (``parametrize``) attached to ``net`` keep
    pruned weights at zero and shared weights shared.
    """
    params = [p for p in net.parameters() if p.requires_grad]
    with deterministic(seed):
        optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        shuffle = torch.Generator().manual_seed(seed)
        x, y = data.x_train, data.y_train
        steps = max(1, epochs * -(-len(x) // batch_size))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        net.train()
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=shuffle)
            for start in range(0, len(x), batch_size):
                batch = order[start:start + batch_size]
                optimizer.zero_grad()
                data.task.loss(*_flat(data.task, net(x[batch]), y[batch])).backward()
                optimizer.step()
                schedule.step()
    return net.eval()


# --- pruning ------------------------------------------------------------------------------------

def gate_mask(w_gates: np.ndarray, n_keep: int, *, input_size: int, hidden_size: int, n_pe: int | None = None,
              alive: np.ndarray | None = None) -> np.ndarray:
    """Keep-mask of the stacked gate matrix: the ``n_keep`` largest live weights (plain), or as many
    balanced over ``n_pe`` PEs in the hardware's row order (see the module docstring)."""
    full = magnitude_mask(w_gates, n_keep, alive=alive)
    if n_pe is None:
        return full
    order = gate_row_order(hidden_size, n_pe)
    live = order >= 0
    alive = np.ones(w_gates.shape, dtype=bool) if alive is None else np.asarray(alive, dtype=bool)
    mask = np.zeros(w_gates.shape, dtype=bool)
    for cols in (slice(0, input_size), slice(input_size, w_gates.shape[1])):
        w = np.zeros((order.size, w_gates[:, cols].shape[1]))
        a = np.zeros(w.shape, dtype=bool)
        w[live], a[live] = w_gates[order[live], cols], alive[order[live], cols]
        part = magnitude_mask(w, int(full[:, cols].sum()), n_pe=n_pe, alive=a)
        sub = np.zeros((mask.shape[0], w.shape[1]), dtype=bool)
        sub[order[live]] = part[live]
        mask[:, cols] = sub
    return mask


def pe_balance(index_or_mask: np.ndarray, hidden_size: int, n_pe: int) -> float:
    """Mean over max non-zeros per PE of a stacked gate matrix in the hardware's row order."""
    order = gate_row_order(hidden_size, n_pe)
    nz = np.zeros(order.size)
    live = order >= 0
    nz[live] = np.count_nonzero(np.asarray(index_or_mask)[order[live]], axis=1)
    per_pe = nz.reshape(-1, n_pe).sum(axis=0)
    return float(per_pe.mean() / max(1.0, per_pe.max()))


def matrix_densities(spec: LSTMSpec, options) -> list[float]:
    """One density per matrix (gates, projection, head) from ``options.densities`` (one value for all)."""
    n = 1 + (spec.w_proj is not None) + len(spec.head)
    d = options.densities
    if d is None:
        return [float(options.target_density)] * n
    if len(d) == 1:
        return list(d) * n
    if len(d) != n:
        raise CompressError(f"{len(d)} densities given but the LSTM model has {n} matrices (gates"
                            f"{', projection' if spec.w_proj is not None else ''}, {len(spec.head)} head layer(s)); "
                            f"give one per matrix, or one for all")
    return list(d)


def _prunables(net: LSTMNet) -> list[tuple[nn.Module, str]]:
    out = [(net, "w_gates")] + ([(net, "w_proj")] if net.w_proj is not None else [])
    return out + [(lin, "weight") for lin in net.linears()]


def _weight(module: nn.Module, name: str) -> np.ndarray:
    if hasattr(module, name + "_orig"):
        t = getattr(module, name + "_orig") * getattr(module, name + "_mask")
    else:
        t = getattr(module, name)
    return t.detach().to(torch.float64).numpy()


def _masks_for(net: LSTMNet, spec: LSTMSpec, densities, alive, n_pe) -> list[np.ndarray]:
    masks = []
    for k, ((module, name), density) in enumerate(zip(_prunables(net), densities, strict=True)):
        w = _weight(module, name)
        live = (w != 0) & alive[k]
        n_keep = min(target_count(w.size, density), int(live.sum()))
        if k == 0:
            masks.append(gate_mask(w, n_keep, input_size=spec.input_size, hidden_size=spec.hidden_size, n_pe=n_pe,
                                   alive=live))
        else:
            masks.append(magnitude_mask(w, n_keep, n_pe=n_pe, alive=live))
    return masks


def _apply_masks(net: LSTMNet, masks) -> None:
    for (module, name), mask in zip(_prunables(net), masks, strict=True):
        if torch_prune.is_pruned(module) and hasattr(module, name + "_mask"):
            torch_prune.remove(module, name)
        torch_prune.custom_from_mask(module, name, torch.as_tensor(mask))


def _remove_masks(net: LSTMNet, masks) -> None:
    for (module, name), mask in zip(_prunables(net), masks, strict=True):
        if hasattr(module, name + "_mask"):
            torch_prune.remove(module, name)
        with torch.no_grad():
            getattr(module, name).masked_fill_(torch.as_tensor(~mask), 0.0)


def _alive(spec: LSTMSpec) -> list[np.ndarray]:
    out = [np.ones(spec.w_gates.shape, bool) if spec.gate_mask is None else spec.gate_mask]
    if spec.w_proj is not None:
        out.append(np.ones(spec.w_proj.shape, bool) if spec.proj_mask is None else spec.proj_mask)
    return out + [np.ones(l.weight.shape, bool) if l.mask is None else l.mask for l in spec.head]


# --- weight sharing -----------------------------------------------------------------------------

def _share(net: LSTMNet, spec: LSTMSpec, masks, options) -> SharedLSTM:
    mats = []
    for (module, name), mask in zip(_prunables(net), masks, strict=True):
        w = getattr(module, name).detach().to(torch.float64).numpy()
        mask = mask & (w != 0)
        index, centroids = share_weights(w, mask, options.weight_bits, options.kmeans_init, options.seed)
        mats.append((index, centroids))
    (gi, gc), rest = mats[0], mats[1:]
    gates = SharedLayer(index=gi, centroids=gc, bias=net.bias.detach().to(torch.float64).numpy().copy(), relu=False,
                        name="gates")
    proj = None
    if net.w_proj is not None:
        (pi, pc), rest = rest[0], rest[1:]
        proj = SharedLayer(index=pi, centroids=pc, bias=np.zeros(pi.shape[0]), relu=False, name="proj")
    head = [SharedLayer(index=i, centroids=c, bias=lin.bias.detach().to(torch.float64).numpy().copy(),
                        relu=layer.relu, name=layer.name)
            for (i, c), lin, layer in zip(rest, net.linears(), spec.head, strict=True)]
    return SharedLSTM(gates=gates, proj=proj, head=head, input_size=spec.input_size, hidden_size=spec.hidden_size,
                      every_step=spec.every_step)


def _finetune(shared: SharedLSTM, data: Dataset, epochs: int, lr: float, seed: int) -> SharedLSTM:
    """Train the shared values (and biases): every matrix is ``codebook[index]``, the codebook the parameter."""
    if epochs == 0:
        return shared
    net = shared.net()
    mats = shared.matrices()
    params = [(net, "w_gates")] + ([(net, "w_proj")] if shared.proj is not None else []) + \
        [(lin, "weight") for lin in net.linears()]
    for (module, name), layer in zip(params, mats, strict=True):
        parametrize.register_parametrization(module, name, CodebookWeight(layer.index, layer.centroids.size),
                                             unsafe=True)
    train_lstm(net, data, epochs, lr, seed=seed)
    trained = [getattr(module.parametrizations, name).original.detach().to(torch.float64).numpy()
               for module, name in params]
    biases = [net.bias.detach().to(torch.float64).numpy(), *(
        [np.zeros(shared.proj.index.shape[0])] if shared.proj is not None else []),
        *[lin.bias.detach().to(torch.float64).numpy() for lin in net.linears()]]
    new = [with_codebook(layer, cb, b) for layer, cb, b in zip(mats, trained, biases, strict=True)]
    gates, rest = new[0], new[1:]
    proj = None
    if shared.proj is not None:
        proj, rest = rest[0], rest[1:]
    return SharedLSTM(gates=gates, proj=proj, head=list(rest), input_size=shared.input_size,
                      hidden_size=shared.hidden_size, every_step=shared.every_step)


# --- the pipeline -------------------------------------------------------------------------------

def _silent(description: str, completed: int, total: int) -> None:
    """A progress callback that ignores progress."""


def run_lstm_pipeline(spec: LSTMSpec, data: Dataset, options, progress: Progress | None = None) -> LSTMPipelineResult:
    """Prune (iteratively, retraining), share weights and fine-tune an LSTM model.

    Parameters
    ----------
    spec : LSTMSpec
    data : Dataset
        Sequences ``(n, T, I)`` and the task's targets (per sequence, or per step for every-step models).
    options : eie.compress.pipeline.CompressOptions
        ``densities`` or ``target_density`` (one density for every matrix, or one per matrix);
        neither: no pruning (the model's own sparsity is kept). ``balance_pes``: load-balance-aware
        pruning over that many PEs. Fine granularity only; no DSD.
    progress : callable, optional

    Returns
    -------
    LSTMPipelineResult
    """
    if options.granularity != "fine" or options.dsd:
        raise CompressError("LSTM compression supports fine-grained pruning without DSD; drop --granularity and "
                            "--dsd")
    report = progress or _silent
    with deterministic(options.seed):
        net = LSTMNet.from_spec(spec)
        float_score = evaluate_lstm(net, data)
        alive = _alive(spec)
        step_scores: list[float] = []
        if options.prunes:
            densities = matrix_densities(spec, options)
            starts = [float(a.mean()) for a in alive]
            schedules = [step_densities(min(d, s), options.prune_steps, start=s) for d, s in zip(densities, starts,
                                                                                            strict=True)]
            masks = alive
            for step in range(options.prune_steps):
                masks = _masks_for(net, spec, [s[step] for s in schedules], alive, options.balance_pes)
                _apply_masks(net, masks)
                train_lstm(net, data, options.retrain_epochs, options.lr, seed=options.seed + step,
                           weight_decay=options.weight_decay)
                step_scores.append(evaluate_lstm(net, data))
                report("prune and retrain", step + 1, options.prune_steps)
            _remove_masks(net, masks)
        else:
            masks = [a & (_weight(m, n) != 0) for a, (m, n) in zip(alive, _prunables(net), strict=True)]
            densities = [float(m.mean()) for m in masks]
        pruned_score = evaluate_lstm(net, data)
        report("weight sharing", 0, 1)
        shared = _share(net, spec, masks, options)
        kmeans_score = evaluate_lstm(shared.net(), data)
        shared = _finetune(shared, data, options.finetune_epochs, options.finetune_lr, options.seed)
        report("weight sharing", 1, 1)
    storage = storage_report(shared.matrices(), index_bits=options.index_bits, ptr_bits=options.ptr_bits)
    gate_storage = storage_report([shared.gates], index_bits=options.index_bits, ptr_bits=options.ptr_bits)
    return LSTMPipelineResult(shared=shared, masks=masks, densities=densities, float_score=float_score,
                              pruned_score=pruned_score, kmeans_score=kmeans_score,
                              quantized_score=evaluate_lstm(shared.net(), data), storage=storage,
                              gate_storage=gate_storage, options=options, model=spec, prune_step_scores=step_scores)


# --- fixed point --------------------------------------------------------------------------------

def _codebook(centroids: np.ndarray, config) -> tuple[np.ndarray, int]:
    """Integer codebook and its format ``f_w`` (as :func:`eie.compress.fixedpoint.calibrate` does)."""
    f_w = frac_bits_for(float(np.abs(centroids).max()), config.act_bits)
    cb = np.clip(np.floor(np.ldexp(centroids, f_w) + 0.5), config.act_min, config.act_max).astype(np.int64)
    tiny = (cb == 0) & (centroids != 0)
    cb[tiny] = np.sign(centroids[tiny]).astype(np.int64)
    cb[0] = 0
    return cb, f_w


def calibrate_lstm(shared: SharedLSTM, x_calib: np.ndarray, config: ESEConfig) -> tuple[QuantizedLSTM, dict]:
    """Choose the formats (``docs/numerics.md``, "Calibrating an LSTM") and quantise.

    ``x`` and ``h`` share one format ``f_h``: the largest that holds the calibration inputs, and
    ``h`` (``|h| < 1`` without a projection, the projection's calibrated range with one), at most
    ``F_N``. The gates are requantised to ``Q(F_G)``; the head is calibrated on the float ``h_t`` of
    the shared model with its input format fixed to ``f_h``.

    Returns
    -------
    (QuantizedLSTM, dict)
        The integer LSTM and the float reference for the manifest.
    """
    a = config.act_bits
    x = np.asarray(x_calib, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] == 0 or not np.all(np.isfinite(x)):
        raise ConfigError(f"calibration sequences must be a finite, non-empty (batch, steps, inputs) array, not "
                          f"shape {x.shape}")
    net = shared.net(torch.float64)
    with torch.no_grad():
        hs = _hidden_states(net, torch.as_tensor(x))          # (B, T_out, R) float h_t
    f_h = min(frac_bits_for(float(np.abs(x).max()), a), unit_frac_bits(a))
    if shared.proj is not None:
        f_h = min(f_h, frac_bits_for(float(np.abs(hs).max()), a))
    gates_cb, f_w = _codebook(shared.gates.centroids, config)
    shift = f_h + f_w - gate_frac_bits(a)
    if not 0 <= shift <= config.max_shift:
        raise ConfigError(f"the gate weights and inputs need a gate shift of {shift}, outside 0..{config.max_shift}; "
                          f"scale the inputs to a smaller range")
    bias = np.floor(np.ldexp(shared.gates.bias, f_h + f_w) + 0.5).astype(np.int64)
    gates = QuantizedLayer(index=shared.gates.index.astype(np.uint8), codebook=gates_cb, bias=bias, shift=shift,
                           relu=False, in_frac_bits=f_h, w_frac_bits=f_w, out_frac_bits=gate_frac_bits(a), name="gates")
    reference = {"gates": {"centroids": [float(c) for c in shared.gates.centroids],
                           "bias": [float(b) for b in shared.gates.bias]}}
    proj = None
    if shared.proj is not None:
        cb, f_wp = _codebook(shared.proj.centroids, config)
        f_m = unit_frac_bits(a)
        shift_p = f_m + f_wp - f_h
        if not 0 <= shift_p <= config.max_shift:
            raise ConfigError(f"the projection needs a shift of {shift_p}, outside 0..{config.max_shift}")
        proj = QuantizedLayer(index=shared.proj.index.astype(np.uint8), codebook=cb,
                              bias=np.zeros(shared.proj.index.shape[0], dtype=np.int64), shift=shift_p, relu=False,
                              in_frac_bits=f_m, w_frac_bits=f_wp, out_frac_bits=f_h, name="proj")
        reference["proj"] = {"centroids": [float(c) for c in shared.proj.centroids]}
    head = ()
    if shared.head:
        qhead, ref = calibrate(shared.head, hs.reshape(-1, hs.shape[-1]), config, input_frac_bits=f_h)
        head = qhead.layers
        reference["head"] = ref["layers"]
    else:
        reference["head"] = []
    return QuantizedLSTM(gates=gates, input_size=shared.input_size, hidden_size=shared.hidden_size, proj=proj,
                         head=head, h_frac_bits=f_h, every_step=shared.every_step), reference


def _hidden_states(net: LSTMNet, x: torch.Tensor) -> np.ndarray:
    """The float ``h_t`` the head reads (every step, or the last one): ``(B, T_out, R)``."""
    head, net.head = net.head, nn.Sequential()
    try:
        out = net(x)
    finally:
        net.head = head
    return (out if out.dim() == 3 else out[:, None]).numpy()
