"""Shared training and evaluation helpers (Adam on the CPU, loss and score from the data's task).

All training runs single-threaded with deterministic algorithms and explicitly seeded shuffling, so
the same model, data and seed give bit-identical weights on any machine with the same PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from eie.compress.task import CLASSIFICATION, Task
from eie.spec.errors import CompressError, InputError

__all__ = ["Dataset", "deterministic", "linear_layers", "train_epochs", "predict", "evaluate", "check_dataset"]


class Dataset(NamedTuple):
    """Training and evaluation data: ``x`` float32 ``(n, features)``, ``y`` the task's targets.

    ``y`` is int64 class labels ``(n,)`` for classification, float32 ``(n, n_out)`` otherwise
    (:mod:`eie.compress.task`). The test split is what every reported score is measured on.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    task: Task = CLASSIFICATION


@contextmanager
def deterministic(seed: int):
    """Run the body single-threaded, with deterministic algorithms and a seeded global RNG.

    The previous thread count, deterministic-algorithm flag and RNG state are restored on exit.
    """
    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(threads)


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` modules of ``model`` in registration (= evaluation, for chains) order."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def check_dataset(data: Dataset, n_in: int, n_out: int) -> None:
    """Raise :class:`InputError` unless ``data`` suits a model of ``n_in`` inputs and ``n_out`` outputs."""
    for split in ("train", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if x.ndim != 2 or x.shape[1] != n_in or x.shape[0] == 0:
            raise InputError(f"x_{split} has shape {tuple(x.shape)} but the model takes (batch, {n_in}); "
                             f"use data that matches the model")
        if not torch.isfinite(x).all():
            raise InputError(f"x_{split} contains NaN or infinite values; clean the data set")
        if data.task.labelled:
            if y.shape != (x.shape[0],) or y.dtype != torch.int64:
                raise InputError(f"y_{split} must be int64 class labels of shape ({x.shape[0]},), not "
                                 f"{y.dtype} {tuple(y.shape)}")
            if y.min() < 0 or y.max() >= n_out:
                raise InputError(f"y_{split} has labels outside 0..{n_out - 1} (the model has {n_out} "
                                 f"outputs); use matching labels")
        else:
            if y.dtype != torch.float32 or y.shape not in ((x.shape[0], n_out),) + (
                    ((x.shape[0],),) if n_out == 1 else ()):
                raise InputError(f"y_{split} must be float32 targets of shape ({x.shape[0]}, {n_out}), not "
                                 f"{y.dtype} {tuple(y.shape)}")
            if not torch.isfinite(y).all():
                raise InputError(f"y_{split} contains NaN or infinite values; clean the data set")


def _masked_fill(layers: Sequence[nn.Linear], masks: Sequence[torch.Tensor]) -> None:
    with torch.no_grad():
        for layer, mask in zip(layers, masks, strict=True):
            layer.weight.masked_fill_(~mask, 0.0)


def train_epochs(model: nn.Module, data: Dataset, epochs: int, lr: float,
                 masks: Sequence[np.ndarray] | None = None,
                 grad_hook: Callable[[nn.Module], None] | None = None, *,
                 batch_size: int = 64, seed: int = 0, weight_decay: float = 0.0) -> nn.Module:
    """Train ``model`` in place with Adam on ``data.task``'s loss over ``data.x_train``.

    Parameters
    ----------
    model : torch.nn.Module
    data : Dataset
    epochs : int
    lr : float
        Adam learning rate (constant).
    masks : sequence of numpy.ndarray, optional
        One boolean ``(out, in)`` mask per ``nn.Linear`` of ``model`` (in :func:`linear_layers`
        order). Gradients of masked-out weights are zeroed before every step and the weights are
        set to exactly ``0.0`` after it, so pruned weights stay exactly zero. Models pruned with
        ``torch.nn.utils.prune`` need no masks: the parametrization does the same.
    grad_hook : callable, optional
        ``grad_hook(model)`` runs after every backward pass, before the optimizer step; it may
        rewrite gradients in place (centroid fine-tuning uses it).
    batch_size : int
    seed : int
        Seeds the shuffling.

    Returns
    -------
    torch.nn.Module
        ``model``, in evaluation mode.
    """
    layers = linear_layers(model)
    mask_t = None
    if masks is not None:
        if len(masks) != len(layers):
            raise CompressError(f"{len(masks)} masks for {len(layers)} Linear layers; give one mask per "
                                f"layer")
        mask_t = [torch.as_tensor(np.asarray(m, dtype=bool)) for m in masks]
        _masked_fill(layers, mask_t)
    params = [p for p in model.parameters() if p.requires_grad]
    with deterministic(seed):
        optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        shuffle = torch.Generator().manual_seed(seed)
        x, y = data.x_train, data.y_train
        steps = epochs * -(-x.shape[0] // batch_size)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))
        model.train()
        for _ in range(epochs):
            order = torch.randperm(x.shape[0], generator=shuffle)
            for start in range(0, x.shape[0], batch_size):
                batch = order[start:start + batch_size]
                optimizer.zero_grad()
                data.task.loss(model(x[batch]), y[batch]).backward()
                if grad_hook is not None:
                    grad_hook(model)
                if mask_t is not None:
                    for layer, mask in zip(layers, mask_t, strict=True):
                        layer.weight.grad.masked_fill_(~mask, 0.0)
                optimizer.step()
                schedule.step()
                if mask_t is not None:
                    _masked_fill(layers, mask_t)
    return model.eval()


def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` in evaluation mode without gradients (the training flag is restored)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.train(was_training)
    return out


def evaluate(model: nn.Module, data: Dataset, split: str = "test") -> float:
    """Score (percent, :meth:`Task.score`) of ``model`` on one split of ``data``."""
    return data.task.score(predict(model, getattr(data, f"x_{split}")), getattr(data, f"y_{split}"))
