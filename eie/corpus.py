"""The golden-output corpus: reference cases whose outputs and images are stored in the repository.

Each case is a folder under ``tests/corpus/`` with its inputs (``inputs.npy``), the expected
outputs (``expected.npy``, int64), the images (``images/``) and what made them: the digits cases
(the MLP on the EIE array, the LSTM on the ESE array) keep the float model (``model.pt``) and the
compression options and seed (``case.json``); the random-network cases keep the integer network
(``network.json``) and the hardware configuration.
``tests/test_corpus.py`` replays every case in CI: the golden model and the RTL must reproduce the
stored outputs, and the compressor (the whole flow for digits, the image encoder for the integer
networks) the stored image files, byte for byte.

An intended change is made with ``make regen-golden`` (``python -m eie.corpus``), which rebuilds
the corpus, prints what changed and only then replaces it. No test regenerates anything.
"""

from __future__ import annotations

import argparse
import filecmp
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from eie.sim.golden import run_golden
from eie.spec.config import EIEConfig
from eie.spec.emit import write_images
from eie.tb.regression import CONFIGS, Case, materialise, network_from_json, network_to_json

__all__ = ["CORPUS", "DIGITS", "DIGITS_LSTM", "RANDOM_CASES", "build_corpus", "compress_digits",
           "compress_digits_lstm", "rebuild_images", "case_config", "case_kind", "load_case_images", "golden_outputs",
           "npy_bytes", "compare_trees", "main"]

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "corpus"

#: The digits case: ``eie digits``' model at fixed densities (no search), 4 PEs, all 450 test images.
DIGITS = {"name": "digits-4pe", "seed": 0, "densities": "0.045,0.025,0.2",
          "config": EIEConfig(n_pe=4, max_rows_per_pe=80, mat_depth=128, ptr_depth=512, bias_depth=128)}

#: The ESE case: ``make sim``'s digits LSTM (rows as 8 steps of 8 features) at one fixed density with
#: load-balance-aware pruning over its 8-PE array; the first ``n_inputs`` test sequences.
DIGITS_LSTM = {"name": "digits-lstm-8pe", "seed": 0, "densities": "0.15", "balance": True, "budget": 1.0,
               "n_inputs": 150}

#: Random integer networks at several configurations, each exercising something different.
RANDOM_CASES = {
    "random-pe1-padding": ("pe1_q8_idx2", Case((24, 40, 32, 10), 0.1, 0.0, False, 11, 4, 0.5, 12, 1.0, 0.0, 0)),
    "random-pe3-epw3-q1": ("pe3_q1_epw3", Case((25, 37, 19, 7), 0.3, 0.3, False, 21, 4, 0.7, 22, 1.0, 0.0, 0)),
    "random-pe8-narrow-extreme": ("pe8_q8_narrow", Case((40, 100, 30, 12), 0.25, 0.0, True, 31, 4, 0.8, 32,
                                                       1.0, 0.0, 0)),
    "random-pe16-dense": ("pe16_q2", Case((64, 20, 12), 1.0, 0.0, False, 41, 3, 1.0, 42, 1.0, 0.0, 0)),
}


def npy_bytes(array) -> bytes:
    """The ``.npy`` file of ``array`` (int64, C order), as ``np.save`` writes it."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.int64))
    return buffer.getvalue()


def compress_digits(model_path, out):
    """Compress the stored digits model exactly as the corpus did; returns the flow's outcome."""
    from eie import flow
    from eie.compress.pipeline import make_options
    config = DIGITS["config"]
    return flow.compress(str(model_path), "digits", config=config, out=out,
                         options=make_options(config, densities=DIGITS["densities"], seed=DIGITS["seed"]))


def compress_digits_lstm(model_path, out):
    """Compress the stored digits LSTM exactly as the corpus did; returns the flow's outcome."""
    from eie import flow
    from eie.compress.pipeline import make_options
    from eie.lstm_flow import digits_lstm_config
    config = digits_lstm_config()
    options = make_options(config, densities=DIGITS_LSTM["densities"], balance=DIGITS_LSTM["balance"],
                           seed=DIGITS_LSTM["seed"])
    return flow.compress(str(model_path), "digits", config=config, out=out, options=options,
                         budget=DIGITS_LSTM["budget"])


def _write_case(folder: Path, meta: dict, images_dir: Path, x, expected, extra: dict) -> None:
    folder.mkdir(parents=True)
    shutil.copytree(images_dir, folder / "images")
    (folder / "inputs.npy").write_bytes(npy_bytes(x))
    (folder / "expected.npy").write_bytes(npy_bytes(expected))
    (folder / "case.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    for name, data in extra.items():
        (folder / name).write_bytes(data)


def build_corpus(out: Path) -> None:
    """Write every corpus case into ``out`` (a new folder)."""
    import torch

    from eie.compress.digits import load_digits_split, train_default_model

    out.mkdir(parents=True)
    work = Path(tempfile.mkdtemp(prefix="eie-corpus-"))
    try:
        model = train_default_model(DIGITS["seed"], load_digits_split(DIGITS["seed"]))
        torch.save(model, work / "model.pt")
        outcome = compress_digits(work / "model.pt", work / "digits")
        x = np.asarray(outcome.test_inputs, dtype=np.int64)
        meta = {"kind": "digits", "config": DIGITS["config"].to_dict(), "densities": DIGITS["densities"],
                "seed": DIGITS["seed"], "data": "digits"}
        _write_case(out / DIGITS["name"], meta, work / "digits", x, run_golden(outcome.images, x),
                    {"model.pt": (work / "model.pt").read_bytes()})
        from eie.compress.digits_lstm import load_digit_sequences, train_default_lstm
        lstm = train_default_lstm(DIGITS_LSTM["seed"], load_digit_sequences(DIGITS_LSTM["seed"]))
        torch.save(lstm, work / "lstm.pt")
        outcome = compress_digits_lstm(work / "lstm.pt", work / "digits-lstm")
        x = np.asarray(outcome.test_inputs[:DIGITS_LSTM["n_inputs"]], dtype=np.int64)
        meta = {"kind": "lstm", "config": outcome.images.config.to_dict(), "densities": DIGITS_LSTM["densities"],
                "balance": DIGITS_LSTM["balance"], "seed": DIGITS_LSTM["seed"], "data": "digits"}
        _write_case(out / DIGITS_LSTM["name"], meta, work / "digits-lstm", x, golden_outputs(outcome.images, x),
                    {"model.pt": (work / "lstm.pt").read_bytes()})
        for name, (config_name, case) in RANDOM_CASES.items():
            config = CONFIGS[config_name]
            m = materialise(config, case, work / name)
            meta = {"kind": "random", "config_name": config_name, "config": config.to_dict()}
            _write_case(out / name, meta, work / name, m.x, run_golden(m.images, m.x),
                        {"network.json": network_to_json(m.net).encode()})
    finally:
        shutil.rmtree(work, ignore_errors=True)


def case_kind(folder: Path) -> str:
    """``digits`` or ``random`` (EIE images), or ``lstm`` (ESE images)."""
    return json.loads((folder / "case.json").read_text())["kind"]


def case_config(folder: Path) -> EIEConfig:
    """The case's hardware configuration (an :class:`~eie.spec.ese.ESEConfig` for an LSTM case)."""
    from eie.spec.ese import ESEConfig
    cls = ESEConfig if case_kind(folder) == "lstm" else EIEConfig
    return cls.from_dict(json.loads((folder / "case.json").read_text())["config"])


def load_case_images(folder: Path):
    """The case's stored images, checked against its configuration."""
    from eie.spec.ese_image import open_images
    return open_images(folder / "images", expect_config=case_config(folder))


def golden_outputs(images, x) -> np.ndarray:
    """The golden model's outputs for ``x``: the EIE network's, or the LSTM's (ESE images)."""
    from eie.sim.lstm import run_lstm_golden
    from eie.spec.ese import ESEConfig
    if isinstance(images.config, ESEConfig):
        return np.asarray(run_lstm_golden(images, x).outputs, dtype=np.int64)
    return run_golden(images, x)


def rebuild_images(folder: Path, out: Path) -> Path:
    """Make the case's images again from what it stores (model and seed, or the integer network)."""
    meta = json.loads((folder / "case.json").read_text())
    if meta["kind"] == "digits":
        compress_digits(folder / "model.pt", out)
        return out
    if meta["kind"] == "lstm":
        compress_digits_lstm(folder / "model.pt", out)
        return out
    return write_images(network_from_json((folder / "network.json").read_text()), case_config(folder), out)


def compare_trees(old: Path, new: Path) -> list[str]:
    """Lines describing how ``new`` differs from ``old`` (files added, removed, changed; for
    expected outputs, how many values changed)."""
    lines = []
    old_files = {p.relative_to(old) for p in old.rglob("*") if p.is_file()} if old.is_dir() else set()
    new_files = {p.relative_to(new) for p in new.rglob("*") if p.is_file()}
    for rel in sorted(old_files | new_files, key=str):
        if rel not in new_files:
            lines.append(f"removed  {rel}")
        elif rel not in old_files:
            lines.append(f"new      {rel}")
        elif not filecmp.cmp(old / rel, new / rel, shallow=False):
            note = ""
            if rel.suffix == ".npy":
                a, b = np.load(old / rel), np.load(new / rel)
                note = f" ({int(np.sum(a != b))} of {b.size} values)" if a.shape == b.shape else \
                    f" (shape {a.shape} -> {b.shape})"
            lines.append(f"changed  {rel}{note}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eie.corpus", description="Rebuild the golden-output "
                                     "corpus (make regen-golden) and print what changed.")
    parser.add_argument("corpus", nargs="?", default=str(CORPUS), help=f"the corpus folder (default {CORPUS})")
    args = parser.parse_args(argv)
    target = Path(args.corpus)
    fresh = target.parent / f".{target.name}.new"
    shutil.rmtree(fresh, ignore_errors=True)
    build_corpus(fresh)
    readme = target / "README.md"
    if readme.is_file():
        shutil.copy(readme, fresh / "README.md")
    changes = compare_trees(target, fresh)
    for line in changes:
        print(line)
    print(f"{len(changes)} file(s) changed" if changes else "the corpus is unchanged")
    old = target.parent / f".{target.name}.old"
    if target.exists():
        target.rename(old)
    fresh.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
