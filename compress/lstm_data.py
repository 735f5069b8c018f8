"""The sequence data a user brings for an LSTM, turned into a :class:`~eie.compress.train.Dataset`.

The same forms as for an MLP (:mod:`eie.compress.data`: a file, arrays or tensors, an ``(x, y)`` or
``(x_train, y_train, x_test, y_test)`` tuple, a dict, ``"digits"``), with sequences samples first:

- inputs ``x``: ``(n, steps, features)`` (every sequence of one length);
- targets of a last-step model: int labels ``(n,)`` (classification) or floats ``(n, n_out)``
  (regression); of an every-step model: ``(n, steps)`` labels or ``(n, steps, n_out)`` floats;
- inputs only (``--calib``): the compressed model is judged by its agreement with the input model's
  outputs (``agreement``; ``regression`` on them for a single output).

``"digits"`` is :func:`eie.compress.digits_lstm.load_digit_sequences`. Data without a test split is
split 80/20 (stratified by class where possible). Every problem is one :class:`InputError` line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from eie.compress.data import _infer_task, _split, load_arrays
from eie.compress.lstm_io import LSTMSpec, lstm_forward
from eie.compress.task import TASKS, Task
from eie.compress.train import Dataset
from eie.spec.errors import InputError

__all__ = ["PreparedSequences", "prepare_sequences", "as_sequences"]


@dataclass(frozen=True)
class PreparedSequences:
    """Sequence data ready for :func:`eie.compress.lstm.run_lstm_pipeline`.

    ``calibration`` holds the float64 sequences that choose the fixed-point formats (the training
    sequences); ``input_shape`` is ``(steps, features)``.
    """

    dataset: Dataset
    calibration: np.ndarray
    description: str
    input_shape: tuple[int, ...]

    @property
    def task(self) -> Task:
        return self.dataset.task


def as_sequences(x, input_size: int, *, what: str) -> np.ndarray:
    """Check float sequences ``(n, steps, input_size)``; returns them as float64."""
    x = np.asarray(x)
    if x.dtype.kind not in "iuf":
        raise InputError(f"{what} has dtype {x.dtype}; give real numbers")
    if x.ndim != 3 or x.shape[2] != input_size or x.shape[1] < 1:
        raise InputError(f"{what} has shape {x.shape} but the LSTM takes sequences (batch, steps, {input_size}), "
                         f"samples first")
    if x.shape[0] == 0:
        raise InputError(f"{what} is an empty batch; give at least one sequence")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise InputError(f"{what} contains NaN or infinite values; clean the data")
    return x


def _targets(y: np.ndarray, task: str, x: np.ndarray, spec: LSTMSpec, what: str) -> torch.Tensor:
    n, steps = x.shape[0], x.shape[1]
    per = (n, steps) if spec.every_step else (n,)
    if task == "classification":
        if y.shape != per:
            raise InputError(f"{what} has shape {y.shape}; class labels of {'every step' if spec.every_step else 'a'} "
                             f"sequence are integers of shape {per}")
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            raise InputError(f"{what} holds non-integer values; class labels must be integers")
        if y.min() < 0 or y.max() >= spec.n_out:
            raise InputError(f"{what} has labels in {int(y.min())}..{int(y.max())} but the model has {spec.n_out} "
                             f"outputs")
        return torch.as_tensor(y.astype(np.int64))
    want = per + (spec.n_out,)
    if y.shape != want and not (spec.n_out == 1 and y.shape == per):
        raise InputError(f"{what} has shape {y.shape}; regression targets must be {want}")
    if not np.all(np.isfinite(y)):
        raise InputError(f"{what} contains NaN or infinite values; clean the data")
    return torch.as_tensor(y.reshape(want).astype(np.float32))


def prepare_sequences(data=None, calib=None, *, spec: LSTMSpec, model=None, task: str | None = None,
                      seed: int = 0) -> PreparedSequences:
    """The training and test sequences of an LSTM model (see the module docstring).

    Parameters
    ----------
    data, calib
        Labelled data, or calibration sequences alone (then ``model`` gives the targets).
    spec : LSTMSpec
    model : torch.nn.Module, optional
        The input model (for ``calib`` alone).
    task : str, optional
        Overrides the inferred task.
    seed : int
        Seed of the split.
    """
    if task is not None and task not in TASKS:
        raise InputError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    if isinstance(data, str) and data == "digits":
        from eie.compress.digits_lstm import load_digit_sequences
        if spec.input_size != 8 or spec.every_step or spec.n_out != 10:
            raise InputError(f"--data digits gives sequences of 8 rows of 8 pixels with one label of 10 classes; "
                             f"the model ({spec.describe()}) does not take them")
        ds = load_digit_sequences(seed)
        return PreparedSequences(ds, ds.x_train.numpy().astype(np.float64),
                                 f"scikit-learn digits as 8 rows of 8 pixels ({len(ds.x_train)} training, "
                                 f"{len(ds.x_test)} test sequences)", (8, 8))
    if data is None and calib is None:
        raise InputError("an LSTM model needs sequences: --data (x_train, y_train, x_test, y_test or x, y, with x of "
                         "shape (n, steps, features)) or --calib")
    arrays = load_arrays(data if data is not None else calib, "data" if data is not None else "calibration data")
    if data is None and ("y" in arrays or "y_train" in arrays):
        raise InputError("--calib takes inputs only; pass labelled data with --data")
    if "x" in arrays:
        x = as_sequences(arrays["x"], spec.input_size, what="x")
        y = arrays.get("y")
        train, test = _split(x.shape[0], y if y is not None and y.ndim == 1 and y.dtype.kind in "iu" else None, seed)
        x_train, x_test = x[train], x[test]
        y_train, y_test = (None, None) if y is None else (np.asarray(y)[train], np.asarray(y)[test])
        where = f"{x.shape[0]} sequences split 80/20"
    else:
        x_train = as_sequences(arrays["x_train"], spec.input_size, what="x_train")
        x_test = as_sequences(arrays["x_test"], spec.input_size, what="x_test")
        y_train, y_test = arrays.get("y_train"), arrays.get("y_test")
        where = f"{x_train.shape[0]} training and {x_test.shape[0]} test sequences"
    if y_train is None:
        if model is None:
            raise InputError("sequences without targets need the input model to judge agreement against")
        teacher = [lstm_forward(model, spec, torch.as_tensor(x, dtype=torch.float32)).numpy()
                   for x in (x_train, x_test)]
        kind = task or ("agreement" if spec.n_out > 1 else "regression")
        y_train, y_test = teacher
        description = f"{where}, inputs only: judged by {kind} with the input model's outputs"
    else:
        kind = task or _infer_task(np.asarray(y_train), spec.n_out if not spec.every_step or np.ndim(y_train) != 2
                                   else spec.n_out, "y_train")
        description = f"{where} with {'labels' if kind == 'classification' else 'targets'}"
    task_obj = Task(kind)
    label = "classification" if task_obj.labelled else "regression"
    xt = [torch.as_tensor(x, dtype=torch.float32) for x in (x_train, x_test)]
    ys = [_targets(np.asarray(y), label, x, spec, name)
          for y, x, name in ((y_train, x_train, "y_train"), (y_test, x_test, "y_test"))]
    ds = Dataset(xt[0], ys[0], xt[1], ys[1], task_obj)
    return PreparedSequences(ds, x_train, description, tuple(x_train.shape[1:]))
