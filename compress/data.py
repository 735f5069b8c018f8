"""The data a user brings, turned into the :class:`~eie.compress.train.Dataset` the pipeline uses.

Data comes in many forms; all of them end as float32 inputs ``(n, n_in)``, targets and a
:class:`~eie.compress.task.Task`:

- **where from**: a file (``.npz``, ``.npy``, ``.pt``/``.pth``), NumPy arrays or torch tensors, a
  ``(x, y)`` or ``(x_train, y_train, x_test, y_test)`` tuple, a dict with those keys, a
  ``torch.utils.data.DataLoader`` (or a ``(train, test)`` pair of them), or ``"digits"`` for
  scikit-learn's bundled 8×8 digits, which is used only when asked for;
- **what it holds**: inputs with labels (classification), inputs with float targets
  (regression), or inputs only. Inputs only are enough to calibrate: the compressed model is then
  retrained to reproduce the input model's outputs and judged by its agreement with them
  (:mod:`eie.compress.task`);
- **splits**: data without a test split is split 80/20, stratified by class where every class has
  two members, with the seed. Scores are reported on the test split.

Inputs of a model that begins by flattening may have any shape whose trailing dimensions multiply
to the model's input width; they are flattened here and their per-sample shape is kept
(``input_shape``) so that the golden model can accept the same shape.

Every problem raises :class:`~eie.spec.errors.InputError` with one line that names the array and
what to change.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from eie.compress.task import TASKS, Task
from eie.compress.train import Dataset, check_dataset, predict
from eie.spec.errors import InputError

__all__ = ["TEST_FRACTION", "PreparedData", "prepare_data", "load_arrays", "as_inputs"]

TEST_FRACTION = 0.2
_KEYS = ("x_train", "y_train", "x_test", "y_test", "x", "y")


@dataclass(frozen=True)
class PreparedData:
    """Data ready for the pipeline.

    Attributes
    ----------
    dataset : Dataset
        Training and test splits with the task's targets.
    calibration : numpy.ndarray
        float64 ``(n, n_in)`` inputs that choose the fixed-point formats.
    description : str
        One line saying where the data came from and how it is used.
    input_shape : tuple of int
        Per-sample shape of the inputs as given (``(n_in,)`` unless the model flattens).
    """

    dataset: Dataset
    calibration: np.ndarray
    description: str
    input_shape: tuple[int, ...]

    @property
    def task(self) -> Task:
        return self.dataset.task


# --- reading ---------------------------------------------------------------------------------

def _to_numpy(value, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16 or value.dtype == torch.float16:
            value = value.float()
        return value.numpy()
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(v, int | float) for v in value):
        return np.asarray(value)
    raise InputError(f"{what} must be a NumPy array or a torch tensor, not {type(value).__name__}")


def _from_loader(loader, what: str) -> dict:
    xs, ys = [], []
    for batch in loader:
        if isinstance(batch, dict):
            batch = (batch.get("x", batch.get("input")), batch.get("y", batch.get("label")))
        if isinstance(batch, list | tuple):
            if not 1 <= len(batch) <= 2:
                raise InputError(f"{what}: DataLoader batches must be x or (x, y), not tuples of {len(batch)}")
            xs.append(_to_numpy(batch[0], f"{what} inputs"))
            if len(batch) == 2 and batch[1] is not None:
                ys.append(_to_numpy(batch[1], f"{what} targets"))
        else:
            xs.append(_to_numpy(batch, f"{what} inputs"))
    if not xs:
        raise InputError(f"{what}: the DataLoader yielded no batches")
    if ys and len(ys) != len(xs):
        raise InputError(f"{what}: some DataLoader batches have targets and some do not")
    out = {"x": np.concatenate(xs)}
    if ys:
        out["y"] = np.concatenate(ys)
    return out


def _from_file(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"data file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return {"x": np.load(path, allow_pickle=False)}
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            if set(arrays) & set(_KEYS):
                return {k: v for k, v in arrays.items() if k in _KEYS}
            if len(arrays) == 1:
                return {"x": next(iter(arrays.values()))}
            raise InputError(f"{path} holds {', '.join(sorted(arrays))}; name the arrays x_train, y_train, "
                             f"x_test, y_test (or x, y; or x alone for inputs only)")
        if suffix in (".pt", ".pth"):
            obj = torch.load(path, map_location="cpu", weights_only=True)
            return _collect(obj, str(path))
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, RuntimeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"data file {path} cannot be read as {suffix or 'an array file'} ({reason})") from None
    raise InputError(f"data file {path} must be .npz, .npy, .pt or .pth, not {suffix or 'without a suffix'}")


def _collect(obj, what: str) -> dict:
    """``{key: array}`` with keys from ``_KEYS`` out of whatever the user passed."""
    if isinstance(obj, str | Path):
        return _from_file(Path(obj))
    if isinstance(obj, Dataset):
        return {"x_train": obj.x_train, "y_train": obj.y_train, "x_test": obj.x_test, "y_test": obj.y_test}
    if isinstance(obj, torch.utils.data.DataLoader):
        return _from_loader(obj, what)
    if isinstance(obj, dict):
        unknown = sorted(set(obj) - set(_KEYS))
        if unknown:
            raise InputError(f"{what} has unknown key(s) {', '.join(map(str, unknown))}; use x_train, y_train, "
                             f"x_test, y_test (or x, y)")
        return dict(obj)
    if isinstance(obj, list | tuple):
        if len(obj) == 2 and all(isinstance(o, torch.utils.data.DataLoader) for o in obj):
            train, test = (_from_loader(o, what) for o in obj)
            return {"x_train": train["x"], "y_train": train.get("y"), "x_test": test["x"],
                    "y_test": test.get("y")}
        if len(obj) == 2:
            return {"x": obj[0], "y": obj[1]}
        if len(obj) == 4:
            return dict(zip(("x_train", "y_train", "x_test", "y_test"), obj, strict=True))
        raise InputError(f"{what} must be (x, y) or (x_train, y_train, x_test, y_test), not a "
                         f"{type(obj).__name__} of {len(obj)}")
    if isinstance(obj, torch.Tensor | np.ndarray):
        return {"x": obj}
    raise InputError(f"{what} must be a file path, arrays, tensors, a tuple, a dict or a DataLoader, not "
                     f"{type(obj).__name__}")


def load_arrays(obj, what: str = "data") -> dict[str, np.ndarray]:
    """The arrays of ``obj`` (see the module docstring) under the keys ``x_train``, ``y_train``,
    ``x_test``, ``y_test``, ``x`` and ``y``; absent ones are left out."""
    parts = {k: v for k, v in _collect(obj, what).items() if v is not None}
    out = {k: _to_numpy(v, f"{what} {k}") for k, v in parts.items()}
    if ("x_train" in out) != ("x_test" in out) or ("x" in out and "x_train" in out):
        raise InputError(f"{what} must hold x_train and x_test, or x alone (split here), not "
                         f"{', '.join(sorted(out))}")
    if "x" not in out and "x_train" not in out:
        raise InputError(f"{what} holds no inputs; give x (or x_train and x_test)")
    if ("y_train" in out) != ("y_test" in out):
        raise InputError(f"{what} has targets for one split only; give both y_train and y_test, or neither")
    return out


# --- checking ----------------------------------------------------------------------------------

def as_inputs(x: np.ndarray, n_in: int, *, flatten: bool, what: str) -> np.ndarray:
    """Check model inputs and return them as float64 ``(n, n_in)``.

    Raises :class:`InputError` for complex, boolean or non-numeric arrays, an empty batch, a shape
    the model cannot take and NaN or infinite values.
    """
    x = np.asarray(x)
    if x.dtype.kind == "c":
        raise InputError(f"{what} is complex ({x.dtype}); the model takes real values")
    if x.dtype.kind not in "iuf":
        raise InputError(f"{what} has dtype {x.dtype}; give real numbers (float or integer)")
    if x.ndim == 0:
        raise InputError(f"{what} is a scalar; give a batch of shape (n, {n_in})")
    if x.shape[0] == 0:
        raise InputError(f"{what} is an empty batch (shape {x.shape}); give at least one input")
    if x.ndim == 1:
        raise InputError(f"{what} has shape {x.shape}, one dimension; give a batch (n, {n_in}) "
                         f"(x[None, :] for a single input)")
    per_sample = math.prod(x.shape[1:])
    if x.ndim > 2 and not flatten:
        raise InputError(f"{what} has shape {x.shape} but the model takes (batch, {n_in}) and does not "
                         f"flatten its input; reshape it to (n, {n_in})")
    if per_sample != n_in:
        want = f"(batch, {n_in})" if not flatten else f"(batch, ...) with {n_in} values per sample"
        raise InputError(f"{what} has shape {x.shape} but the model takes {want}")
    x = x.reshape(x.shape[0], n_in).astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise InputError(f"{what} contains NaN or infinite values; clean the data")
    return x


def _infer_task(y: np.ndarray, n_out: int, what: str) -> str:
    if y.dtype.kind == "b":
        raise InputError(f"{what} is boolean; give int class labels or float regression targets")
    if y.dtype.kind in "iu":
        return "classification"
    if y.dtype.kind != "f":
        raise InputError(f"{what} has dtype {y.dtype}; give int class labels or float regression targets")
    if y.ndim == 1 and n_out > 1 and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        return "classification"
    return "regression"


def _targets(y: np.ndarray, task: str, n: int, n_out: int, what: str) -> torch.Tensor:
    if y.shape[0] != n:
        raise InputError(f"{what} has {y.shape[0]} entries but there are {n} inputs")
    if task == "classification":
        if y.ndim != 1:
            raise InputError(f"{what} has shape {y.shape}; class labels are one integer per input, shape ({n},)")
        if y.dtype.kind == "f" and not (np.all(np.isfinite(y)) and np.all(y == np.round(y))):
            raise InputError(f"{what} holds non-integer values; class labels must be integers")
        if y.min() < 0 or y.max() >= n_out:
            raise InputError(f"{what} has labels in {int(y.min())}..{int(y.max())} but the model has {n_out} "
                             f"outputs (labels 0..{n_out - 1})")
        return torch.as_tensor(y.astype(np.int64))
    if y.dtype.kind not in "iuf":
        raise InputError(f"{what} has dtype {y.dtype}; regression targets must be real numbers")
    if y.ndim == 1 and n_out == 1:
        y = y[:, None]
    if y.shape != (n, n_out):
        raise InputError(f"{what} has shape {y.shape}; regression targets must be ({n}, {n_out}), one per "
                         f"model output")
    if not np.all(np.isfinite(y)):
        raise InputError(f"{what} contains NaN or infinite values; clean the data")
    return torch.as_tensor(y.astype(np.float32))


def _split(n: int, labels: np.ndarray | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split
    if n < 2:
        raise InputError(f"{n} input is too few to split into training and test data; give at least 2")
    index = np.arange(n)
    stratify = None
    if labels is not None:
        _, counts = np.unique(labels, return_counts=True)
        n_test = math.ceil(TEST_FRACTION * n)
        if counts.min() >= 2 and n_test >= counts.size and n - n_test >= counts.size:
            stratify = labels
    train, test = train_test_split(index, test_size=TEST_FRACTION, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(test)


def prepare_data(data=None, calib=None, *, teacher: nn.Module, n_in: int, n_out: int, flatten: bool = False,
                 task: str | None = None, seed: int = 0) -> PreparedData:
    """Turn what the user gave into training/test data, targets, a task and calibration inputs.

    Parameters
    ----------
    data : optional
        Inputs with or without targets, in any form of the module docstring, or ``"digits"``.
    calib : optional
        Calibration inputs (a file, array, tensor or DataLoader); default: the training inputs.
        Without ``data`` they are also the data (inputs only).
    teacher : torch.nn.Module
        The input model as a float chain (it gives the targets when there are no labels).
    n_in, n_out : int
        The model's input and output widths.
    flatten : bool
        The model flattens its input, so inputs may have more than two dimensions.
    task : {"classification", "regression", "agreement"}, optional
        Overrides the task inferred from the targets (integer labels: classification; float
        targets: regression; none: agreement for several outputs, regression for one).
    seed : int
        Seeds the 80/20 split of data without a test split.

    Returns
    -------
    PreparedData

    Raises
    ------
    InputError
    """
    if task is not None and task not in TASKS:
        raise InputError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    if data is None and calib is None:
        raise InputError("no data: pass --data FILE (x_train, y_train, x_test, y_test; or x, y) or --calib X.npy "
                         "(inputs only), or --data digits for scikit-learn's bundled digits")
    origin = []
    if isinstance(data, str) and data == "digits":
        from eie.compress.digits import load_digits_split
        arrays = {k: v.numpy() for k, v in zip(("x_train", "y_train", "x_test", "y_test"),
                                                 load_digits_split(seed)[:4], strict=True)}
        origin.append("scikit-learn's bundled digits (8x8 images, 10 classes)")
    elif data is not None:
        arrays = load_arrays(data, "data")
        origin.append(f"{data}" if isinstance(data, str | Path) else f"the given {type(data).__name__}")
    else:
        arrays = load_arrays(calib, "calibration data")
        if any(k.startswith("y") for k in arrays):
            raise InputError("calibration data holds targets; pass labelled data with --data and inputs only "
                             "with --calib")
        origin.append(f"{calib}" if isinstance(calib, str | Path) else f"the given {type(calib).__name__}")
    raw_shape = (arrays.get("x_train", arrays.get("x"))).shape
    if "x" in arrays:
        x_all = as_inputs(arrays["x"], n_in, flatten=flatten, what="inputs x")
        y_all = arrays.get("y")
        kind = task or (_infer_task(y_all, n_out, "targets y") if y_all is not None else None)
        labels = y_all if kind == "classification" and y_all is not None and y_all.ndim == 1 else None
        train, test = _split(x_all.shape[0], labels, seed)
        x_train, x_test = x_all[train], x_all[test]
        y_train = None if y_all is None else y_all[train]
        y_test = None if y_all is None else y_all[test]
        split_note = f"split {TEST_FRACTION:.0%} for testing"
    else:
        x_train = as_inputs(arrays["x_train"], n_in, flatten=flatten, what="x_train")
        x_test = as_inputs(arrays["x_test"], n_in, flatten=flatten, what="x_test")
        y_train, y_test = arrays.get("y_train"), arrays.get("y_test")
        kind = task or (_infer_task(y_train, n_out, "y_train") if y_train is not None else None)
        split_note = "given splits"
    if y_train is None:
        if kind == "classification":
            raise InputError("task classification needs labels; the data holds inputs only")
        kind = kind or ("agreement" if n_out > 1 else "regression")
        teacher_train = predict(teacher, torch.as_tensor(x_train, dtype=torch.float32))
        teacher_test = predict(teacher, torch.as_tensor(x_test, dtype=torch.float32))
        if kind == "agreement" and n_out == 1:
            raise InputError("agreement needs a model with several outputs (a classifier); use task regression")
        t_train, t_test = teacher_train.float(), teacher_test.float()
        targets = "no targets: retrained to reproduce the input model's outputs (distillation)"
    else:
        if kind == "agreement":
            raise InputError("task agreement compares with the input model's own outputs; drop the targets or "
                             "choose classification or regression")
        t_train = _targets(y_train, kind, x_train.shape[0], n_out, "y_train" if "x_train" in arrays else "y")
        t_test = _targets(y_test, kind, x_test.shape[0], n_out, "y_test" if "x_train" in arrays else "y")
        targets = "labels" if kind == "classification" else "regression targets"
    dataset = Dataset(torch.as_tensor(x_train, dtype=torch.float32), t_train,
                      torch.as_tensor(x_test, dtype=torch.float32), t_test, Task(kind))
    check_dataset(dataset, n_in, n_out)
    calibration = x_train
    calib_note = "training inputs"
    if calib is not None and data is not None:
        c = load_arrays(calib, "calibration data")
        if any(k.startswith("y") for k in c) or "x" not in c:
            raise InputError("calibration data must be inputs only (one array x)")
        calibration = as_inputs(c["x"], n_in, flatten=flatten, what="calibration inputs")
        calib_note = f"{calibration.shape[0]} inputs from {calib}" if isinstance(calib, str | Path) else \
            f"{calibration.shape[0]} given inputs"
    description = (f"{origin[0]}: {x_train.shape[0]} training and {x_test.shape[0]} test inputs ({split_note}), "
                   f"{targets}; task {kind} (scored by {Task(kind).metric}); calibration on {calib_note}")
    return PreparedData(dataset=dataset, calibration=calibration, description=description,
                        input_shape=tuple(int(d) for d in raw_shape[1:]))
