"""The built-in default model: a LeNet-300-100-shaped MLP on scikit-learn's 8×8 digits.

``sklearn.datasets.load_digits`` ships with scikit-learn (no download), 1797 images of 64 pixels in
0..16. :class:`DigitsMLP` is LeNet-300-100 (Deep Compression's MNIST network) with 64 inputs.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from eie.compress.train import Dataset, deterministic, train_epochs

__all__ = ["DigitsMLP", "load_digits_split", "train_default_model"]

TEST_FRACTION = 0.25
EPOCHS = 60
LR = 1e-3
WEIGHT_DECAY = 1e-4


class DigitsMLP(nn.Sequential):
    """``Linear(64, 300) - ReLU - Linear(300, 100) - ReLU - Linear(100, 10)``."""

    def __init__(self):
        super().__init__(nn.Linear(64, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10))


def load_digits_split(seed: int = 0) -> Dataset:
    """The digits data set, inputs scaled to [0, 1], split 75/25 stratified by class.

    Parameters
    ----------
    seed : int
        Seed of the split.

    Returns
    -------
    Dataset
        ``x`` float32 ``(n, 64)``, ``y`` int64; 1347 training and 450 test images.
    """
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data / 16.0, digits.target, test_size=TEST_FRACTION, random_state=seed,
        stratify=digits.target)
    return Dataset(torch.tensor(x_train, dtype=torch.float32), torch.tensor(y_train, dtype=torch.int64),
                   torch.tensor(x_test, dtype=torch.float32), torch.tensor(y_test, dtype=torch.int64))


def train_default_model(seed: int = 0, data: Dataset | None = None) -> DigitsMLP:
    """Train :class:`DigitsMLP` on the digits split (a few seconds on one CPU core, deterministic).

    Parameters
    ----------
    seed : int
        Seeds the initialisation, the shuffling and (when ``data`` is None) the split.
    data : Dataset, optional
        Defaults to ``load_digits_split(seed)``.

    Returns
    -------
    DigitsMLP
        In evaluation mode.
    """
    data = load_digits_split(seed) if data is None else data
    with deterministic(seed):
        model = DigitsMLP()
    return train_epochs(model, data, EPOCHS, LR, seed=seed, weight_decay=WEIGHT_DECAY)
