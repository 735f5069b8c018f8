"""Models a user brings, compressed with the default flags: compression and score the defaults reach.

Every model is trained here on data that ships with scikit-learn (nothing is downloaded), saved the way
users save models, and compressed by `eie compress` with default flags except for the data, exactly
as a new user would run it. Prints one row per model; `make bench` runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.utils.prune as prune
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.model_selection import train_test_split
from torch import nn

EIE = str(Path(sys.executable).with_name("eie"))


def standardise(x_train, x_test):
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8
    return ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)


def train(model, x, y, *, epochs=300, regression=False, seed=0):
    torch.manual_seed(seed)
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    loss = nn.functional.mse_loss if regression else nn.functional.cross_entropy
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x)).split(64):
            optimizer.zero_grad()
            loss(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


def split(x, y, stratify=True):
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y if stratify else None)


def digits_dense(work: Path):
    """The defect report's model: a trained dense 64-32-10 digits classifier, torch.save'd whole."""
    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = split(x / 16.0, y)
    model = train(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)), xtr.astype(np.float32), ytr,
                  epochs=60)
    torch.save(model, work / "model.pt")
    np.savez(work / "data.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return ["--data", str(work / "data.npz")]


def wine_torchscript(work: Path):
    """Wine (13 features, 3 classes): BatchNorm1d and a final LogSoftmax, saved with torch.jit.script."""
    x, y = load_wine(return_X_y=True)
    xtr, xte, ytr, yte = split(x, y)
    xtr, xte = standardise(xtr, xte)
    model = nn.Sequential(nn.Linear(13, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 3),
                          nn.LogSoftmax(dim=1))
    train(model, xtr, ytr, epochs=150)
    torch.jit.save(torch.jit.script(model), work / "model.pt")
    np.savez(work / "data.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return ["--data", str(work / "data.npz")]


class CancerNet(nn.Module):
    """Breast cancer (30 features, 2 classes), defined in a module and saved as a state_dict."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(30, 64), nn.Linear(64, 32), nn.Linear(32, 2)

    def forward(self, x):
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def cancer_state_dict(work: Path):
    x, y = load_breast_cancer(return_X_y=True)
    xtr, xte, ytr, yte = split(x, y)
    xtr, xte = standardise(xtr, xte)
    model = train(CancerNet(), xtr, ytr, epochs=100)
    torch.save(model.state_dict(), work / "model.pt")
    np.savez(work / "data.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return ["--data", str(work / "data.npz"), "--arch", f"{Path(__file__).resolve()}:CancerNet"]


def diabetes_regression(work: Path):
    """Diabetes progression (10 features, a float target): a regression MLP, scored by R²."""
    x, y = load_diabetes(return_X_y=True)
    xtr, xte, ytr, yte = split(x, y, stratify=False)
    xtr, xte = standardise(xtr, xte)
    mean, std = ytr.mean(), ytr.std()
    ytr, yte = ((ytr - mean) / std).astype(np.float32)[:, None], ((yte - mean) / std).astype(np.float32)[:, None]
    model = train(nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1)),
                  xtr, ytr, epochs=20, regression=True)
    torch.save(model, work / "model.pt")
    np.savez(work / "data.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return ["--data", str(work / "data.npz")]


def digits_pruned(work: Path):
    """A 64-128-64-10 digits MLP the user pruned to 10% with torch.nn.utils.prune (mask attached)."""
    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = split(x / 16.0, y)
    model = train(nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)),
                  xtr.astype(np.float32), ytr, epochs=60)
    for layer in model[0], model[2], model[4]:
        prune.l1_unstructured(layer, "weight", amount=0.9)
    train(model, xtr.astype(np.float32), ytr, epochs=30)
    torch.save(model, work / "model.pt")
    np.savez(work / "data.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return ["--data", str(work / "data.npz")]


def digits_images_calibration_only(work: Path):
    """An 8x8-image digits model (Flatten first) compressed from unlabelled calibration images only."""
    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = split((x / 16.0).reshape(-1, 1, 8, 8).astype(np.float32), y)
    model = train(nn.Sequential(nn.Flatten(), nn.Linear(64, 100), nn.ReLU(), nn.Linear(100, 10)), xtr, ytr,
                  epochs=60)
    torch.save(model, work / "model.pt")
    np.save(work / "calib.npy", xtr)
    return ["--calib", str(work / "calib.npy")]


#: (model, extra flags); every model runs with default flags, the regression once more with a looser budget.
MODELS = [(digits_dense, []), (wine_torchscript, []), (cancer_state_dict, []), (diabetes_regression, []),
          (diabetes_regression, ["--budget", "2"]), (digits_pruned, []), (digits_images_calibration_only, [])]


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory(prefix="eie-user-models-") as tmp:
        for i, (make, extra) in enumerate(MODELS):
            name = " ".join([make.__name__, *extra])
            work = Path(tmp) / f"{i}-{make.__name__}"
            work.mkdir()
            torch.manual_seed(0)               # the models' initialisation: same figures every run
            args = make(work)
            cmd = [EIE, "compress", str(work / "model.pt"), "--out", str(work / "img"), "--json", *args, *extra]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                rows.append((name, "-", "-", "-", "-", proc.stderr.strip().splitlines()[-1]))
                continue
            r = json.loads(proc.stdout)
            shape = "-".join([str(r["model"]["n_in"])] + [str(layer["n_out"]) for layer in r["layers"]])
            rows.append((name, shape, r["data"]["metric"], f"{r['compression_ratio']:.1f}x",
                         f"{r['scores']['float']:.2f} -> {r['scores']['golden']:.2f} ({-r['loss_points']:+.2f})",
                         f"{r['choice']['mode']}: {r['choice']['reason']}"))
    print("| model | shape | metric | compression | float -> golden (points) | choice |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
