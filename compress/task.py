"""What a model is trained and judged on: the loss and the quality score of a :class:`Task`.

Three tasks cover the data a user brings:

=================== ================================ ===================== ==========================
task                targets ``y``                    loss                  score (percent, higher is
                                                                           better)
=================== ================================ ===================== ==========================
``classification``  int64 class labels ``(n,)``      cross-entropy         top-1 accuracy
``regression``      float targets ``(n, n_out)``     mean squared error    R², ``100 (1 - SSE/SST)``
``agreement``       float outputs of the input model mean squared error    argmax agreement with the
                    (logits) ``(n, n_out)``          (distillation)        input model's predictions
=================== ================================ ===================== ==========================

``agreement`` is what a classifier is judged on when only inputs are given (calibration data
without labels): the compressed model is retrained to reproduce the input model's outputs
(self-distillation) and scored by how often it predicts the same class. A regression model with
inputs only is a ``regression`` task whose targets are the input model's outputs, so its R² is the
fidelity to the input model.

Scores are percentages on one scale so that one accuracy budget, in points, applies to all three.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["Task", "TASKS", "CLASSIFICATION", "REGRESSION", "AGREEMENT", "task_named"]

TASKS = ("classification", "regression", "agreement")


@dataclass(frozen=True)
class Task:
    """A loss to train with and a score to judge with.

    Parameters
    ----------
    kind : {"classification", "regression", "agreement"}
    """

    kind: str

    def __post_init__(self):
        if self.kind not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, not {self.kind!r}")

    @property
    def labelled(self) -> bool:
        """Whether the targets are integer class labels."""
        return self.kind == "classification"

    @property
    def metric(self) -> str:
        """Name of the score, for tables."""
        return {"classification": "accuracy", "regression": "R²",
                "agreement": "agreement with the input model"}[self.kind]

    def target_dtype(self) -> torch.dtype:
        return torch.int64 if self.labelled else torch.float32

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss of a batch."""
        if self.labelled:
            return F.cross_entropy(outputs, targets)
        return F.mse_loss(outputs, targets.reshape(outputs.shape))

    def score(self, outputs, targets) -> float:
        """Score (percent) of ``outputs`` ``(n, n_out)`` against ``targets``; tensors or arrays."""
        out = np.asarray(outputs.detach() if isinstance(outputs, torch.Tensor) else outputs, dtype=np.float64)
        y = np.asarray(targets.detach() if isinstance(targets, torch.Tensor) else targets)
        if out.shape[0] == 0:
            raise ValueError("cannot score an empty batch")
        if self.kind == "classification":
            return 100.0 * float(np.mean(np.argmax(out, axis=1) == y))
        y = y.astype(np.float64).reshape(out.shape)
        if self.kind == "agreement":
            return 100.0 * float(np.mean(np.argmax(out, axis=1) == np.argmax(y, axis=1)))
        sse = float(np.sum((out - y) ** 2))
        sst = float(np.sum((y - y.mean(axis=0)) ** 2))
        return 100.0 * (1.0 - sse / sst) if sst > 0 else (100.0 if sse == 0 else 0.0)

    def mse(self, outputs, targets) -> float | None:
        """Mean squared error against regression targets (None for the other tasks)."""
        if self.kind != "regression":
            return None
        out = np.asarray(outputs, dtype=np.float64)
        return float(np.mean((out - np.asarray(targets, dtype=np.float64).reshape(out.shape)) ** 2))


CLASSIFICATION = Task("classification")
REGRESSION = Task("regression")
AGREEMENT = Task("agreement")


def task_named(kind: str) -> Task:
    """The :class:`Task` called ``kind``."""
    return Task(kind)
