"""The built-in sequence model: an LSTM reading scikit-learn's 8×8 digits row by row.

Each image is a sequence of 8 steps (its rows) of 8 features (the row's pixels, scaled to [0, 1]);
:class:`DigitsLSTM` is ``nn.LSTM(8, 64, batch_first=True)`` and a ``Linear(64, 10)`` on the last
step's output. Same split as the MLP (:func:`eie.compress.digits.load_digits_split`): 1347 training
and 450 test sequences, nothing downloaded. Training takes a few seconds on one core.
"""

from __future__ import annotations

import torch
from torch import nn

from eie.compress.digits import load_digits_split
from eie.compress.train import Dataset, deterministic

__all__ = ["DigitsLSTM", "HIDDEN", "load_digit_sequences", "train_default_lstm"]

HIDDEN = 64
EPOCHS = 30
LR = 1e-2
BATCH = 64


class DigitsLSTM(nn.Module):
    """``nn.LSTM(8, 64, batch_first=True)``, then ``Linear(64, 10)`` on the last step."""

    def __init__(self, hidden: int = HIDDEN):
        super().__init__()
        self.lstm = nn.LSTM(8, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 10)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


def load_digit_sequences(seed: int = 0) -> Dataset:
    """The digits split of :func:`~eie.compress.digits.load_digits_split` as ``(n, 8, 8)`` row sequences."""
    d = load_digits_split(seed)
    return Dataset(d.x_train.reshape(-1, 8, 8), d.y_train, d.x_test.reshape(-1, 8, 8), d.y_test)


def train_default_lstm(seed: int = 0, data: Dataset | None = None) -> DigitsLSTM:
    """Train :class:`DigitsLSTM` (Adam, cosine schedule; deterministic, about two seconds)."""
    data = load_digit_sequences(seed) if data is None else data
    with deterministic(seed):
        model = DigitsLSTM()
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        steps = EPOCHS * -(-len(data.x_train) // BATCH)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
        shuffle = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(EPOCHS):
            order = torch.randperm(len(data.x_train), generator=shuffle)
            for start in range(0, len(order), BATCH):
                batch = order[start:start + BATCH]
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(data.x_train[batch]), data.y_train[batch]).backward()
                optimizer.step()
                schedule.step()
    return model.eval()
