"""The golden-output corpus (``tests/corpus``, :mod:`eie.corpus`) is replayed: the golden model and
the RTL reproduce the stored outputs, and the compressor the stored images, byte for byte.

Nothing here regenerates the corpus: an intended change is made with ``make regen-golden``.
"""

import filecmp

import numpy as np
import pytest

from eie.corpus import (
    CORPUS,
    DIGITS,
    DIGITS_LSTM,
    RANDOM_CASES,
    case_config,
    case_kind,
    golden_outputs,
    load_case_images,
    npy_bytes,
    rebuild_images,
)
from eie.lstm_flow import run_lstm_rtl
from eie.tb.rtl_server import RTLServer

CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
EIE_CASES = [name for name in CASES if case_kind(CORPUS / name) != "lstm"]
ESE_CASES = [name for name in CASES if case_kind(CORPUS / name) == "lstm"]
REGEN = "if the change is intended, run `make regen-golden` and commit the corpus with it"


def test_corpus_holds_every_case():
    assert CASES == sorted([DIGITS["name"], DIGITS_LSTM["name"], *RANDOM_CASES]), \
        f"tests/corpus is out of date; {REGEN}"


@pytest.mark.parametrize("name", CASES)
def test_golden_model_reproduces_stored_outputs(name):
    folder = CORPUS / name
    got = golden_outputs(load_case_images(folder), np.load(folder / "inputs.npy"))
    differ = int(np.sum(got != np.load(folder / "expected.npy")))
    assert npy_bytes(got) == (folder / "expected.npy").read_bytes(), \
        f"{name}: the golden model no longer reproduces expected.npy ({differ} values differ); {REGEN}"


@pytest.mark.parametrize("name", CASES)
def test_compressor_reproduces_stored_images(tmp_path, name):
    folder = CORPUS / name
    fresh = rebuild_images(folder, tmp_path / "images")
    stored = folder / "images"
    names = sorted(p.name for p in stored.iterdir())
    assert sorted(p.name for p in fresh.iterdir()) == names, f"{name}: other image files; {REGEN}"
    _, mismatch, errors = filecmp.cmpfiles(stored, fresh, names, shallow=False)
    assert not mismatch and not errors, f"{name}: {mismatch + errors} differ from the stored images; {REGEN}"


@pytest.mark.rtl
def test_rtl_reproduces_stored_outputs():
    """Every EIE case through the RTL of its configuration, one running simulation per configuration."""
    by_config = {}
    for name in EIE_CASES:
        by_config.setdefault(case_config(CORPUS / name), []).append(name)
    for config, names in by_config.items():
        with RTLServer(config) as rtl:
            for name in names:
                folder = CORPUS / name
                got = rtl.run(load_case_images(folder), np.load(folder / "inputs.npy")).outputs
                assert npy_bytes(got) == (folder / "expected.npy").read_bytes(), \
                    f"{name}: the RTL does not reproduce expected.npy"


@pytest.mark.rtl
@pytest.mark.parametrize("name", ESE_CASES)
def test_ese_rtl_reproduces_stored_outputs(name):
    """Every LSTM case through the ESE array of its configuration."""
    folder = CORPUS / name
    got = run_lstm_rtl(load_case_images(folder), np.load(folder / "inputs.npy")).outputs
    assert npy_bytes(got) == (folder / "expected.npy").read_bytes(), f"{name}: the ESE RTL does not reproduce " \
                                                                       "expected.npy"
