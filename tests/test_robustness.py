"""Hostile inputs that docs/robustness.md lists and no other test covers: damaged, reordered and
edited image files on every command that reads images, and runs killed while they write.

Every refusal is one line starting with ``Error:``, exit status 1, and nothing written. A run
killed while it writes (``SIGKILL`` as soon as its hidden temporary appears, and a few milliseconds
later) leaves its output either absent or complete and valid, never half-written under its name
(only the hidden ``.NAME.*`` temporary can remain beside it).
"""

import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from eie.cli import main
from eie.sim.golden import run_golden
from eie.sim.random_net import random_network
from eie.spec.config import EIEConfig
from eie.spec.emit import write_images
from eie.spec.image import load_images

CONFIG = EIEConfig(n_pe=3)
CORRUPT = r"^Error: {}: checksum [0-9a-f]{{16}}… does not match the manifest; the file is corrupt or was edited, " \
          r"re-run eie compress$"


def _swap(d, a, b):
    (d / a).rename(d / "swap")
    (d / b).rename(d / a)
    (d / "swap").rename(d / b)


def _truncate(path):
    path.write_text(path.read_text()[:len(path.read_text()) // 2])


DAMAGE = {
    "truncated": (lambda d: _truncate(d / "pe001.mat.hex"), CORRUPT.format(r"pe001\.mat\.hex")),
    "one-digit-changed": (lambda d: (d / "pe000.ptr.hex").write_text(
        (d / "pe000.ptr.hex").read_text().replace("0", "1", 1)), CORRUPT.format(r"pe000\.ptr\.hex")),
    "pe-files-swapped": (lambda d: _swap(d, "pe000.mat.hex", "pe001.mat.hex"), CORRUPT.format(r"pe000\.mat\.hex")),
    "emptied": (lambda d: (d / "codebook.hex").write_text(""), CORRUPT.format(r"codebook\.hex")),
    "binary-garbage": (lambda d: (d / "pe002.bias.hex").write_bytes(b"\x00\xff\xfe"),
                       CORRUPT.format(r"pe002\.bias\.hex")),
    "file-missing": (lambda d: (d / "pe002.ptr.hex").unlink(), r"^Error: .*pe002\.ptr\.hex.*"),
    "manifest-not-json": (lambda d: (d / "manifest.json").write_text("{"),
                          r"^Error: manifest\.json in .* is not valid JSON: "),
    "manifest-hash-edited": (lambda d: (d / "manifest.json").write_text(
        (d / "manifest.json").read_text().replace(CONFIG.config_hash(), "0" * 16)),
        r"^Error: manifest\.json: config_hash 0{16} does not match its configuration \([0-9a-f]{16}\); the manifest "
        r"was edited$"),
}

COMMANDS = {
    "golden": lambda d, tmp: ["golden", d, "--input", tmp / "x.npy", "--out", tmp / "out" / "y.npy", "--raw"],
    "sim": lambda d, tmp: ["sim", d, "--input", tmp / "x.npy", "--out", tmp / "out" / "y.npy", "--raw"],
    "verify": lambda d, tmp: ["verify", d, "--input", tmp / "x.npy", "--raw"],
    "rtl": lambda d, tmp: ["rtl", "--images", d, "--out", tmp / "out" / "rtl"],
}


@pytest.fixture
def images_dir(tmp_path):
    return write_images(random_network(0, [12, 20, 5], CONFIG), CONFIG, tmp_path / "img")


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_images_fail_with_one_line_and_write_nothing(images_dir, tmp_path, command, damage):
    harm, message = DAMAGE[damage]
    harm(images_dir)
    np.save(tmp_path / "x.npy", np.zeros((2, 12), dtype=np.int64))
    (tmp_path / "out").mkdir()
    result = CliRunner().invoke(main, [str(a) for a in COMMANDS[command](images_dir, tmp_path)])
    out = result.output.strip()
    assert result.exit_code == 1, out
    assert len(out.splitlines()) == 1 and re.search(message, out), out
    assert list((tmp_path / "out").iterdir()) == []


def test_files_the_manifest_does_not_list_are_ignored(images_dir, tmp_path):
    (images_dir / "pe009.mat.hex").write_text("zz\n")
    (images_dir / "notes.txt").write_text("anything")
    x = np.ones((2, 12), dtype=np.int64)
    assert np.array_equal(run_golden(load_images(images_dir), x),
                          run_golden(load_images(write_images(random_network(0, [12, 20, 5], CONFIG), CONFIG,
                                                              tmp_path / "clean")), x))


# --- killed runs ---------------------------------------------------------------------------------

EIE = [sys.executable, "-c", "from eie.cli import main; main()"]
#: Seconds to let the write run on before the kill: at its start, early, later.
DELAYS = (0.0, 0.003, 0.015)


def _kill_while_writing(args, watch, delay, cwd):
    """Run ``eie args`` and SIGKILL it ``delay`` seconds after a hidden temporary appears in
    ``watch`` (the write has begun). True if it was killed so, False if it finished first."""
    proc = subprocess.Popen([*EIE, *map(str, args)], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        if any(p.name.startswith(".") for p in watch.iterdir()):
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return proc.returncode == -signal.SIGKILL
        time.sleep(0.0002)
    return False


def _visible(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_killed_golden_run_leaves_no_partial_output(images_dir, tmp_path):
    x = np.random.default_rng(0).integers(-200, 200, size=(1_000_000, 12))
    np.save(tmp_path / "x.npy", x)
    expected = run_golden(load_images(images_dir), x)
    killed = 0
    for k, delay in enumerate(DELAYS):
        out = tmp_path / f"run{k}"
        out.mkdir()
        killed += _kill_while_writing(["golden", images_dir, "--input", tmp_path / "x.npy", "--raw", "--out",
                                       out / "y.npy"], out, delay, tmp_path)
        assert _visible(out) in ([], ["y.npy"]), _visible(out)
        if (out / "y.npy").exists():
            assert np.array_equal(np.load(out / "y.npy"), expected), f"{out / 'y.npy'} is incomplete"
    assert killed, "no run was killed during its write: the test is blind"


def test_killed_compress_leaves_no_partial_images(tmp_path):
    torch.manual_seed(0)
    torch.save(nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)), tmp_path / "model.pt")
    args = ["compress", tmp_path / "model.pt", "--data", "digits", "--pes", "2", "--density", "0.5",
            "--prune-steps", "1", "--retrain-epochs", "1", "--finetune-epochs", "1", "--allow-loss", "--out"]
    killed = 0
    for k, delay in enumerate(DELAYS):
        parent = tmp_path / f"run{k}"
        parent.mkdir()
        killed += _kill_while_writing([*args, parent / "img"], parent, delay, tmp_path)
        assert _visible(parent) in ([], ["img"]), _visible(parent)
        if (parent / "img").exists():
            load_images(parent / "img")  # complete and verified: every file listed, every checksum right
        shutil.rmtree(parent)
    assert killed, "no run was killed during its write: the test is blind"


# --- impossible configurations on the commands that build hardware ---------------------------------

@pytest.mark.parametrize("args, message", [
    (["synth", "--pes", "0"], r"^Error: n_pe must be in 1\.\.256, not 0$"),
    (["synth", "--pes", "4", "--mat-depth", "0"], r"^Error: mat_depth must be >= 1, not 0$"),
    (["digits", "--pes", "0"], r"^Error: n_pe must be in 1\.\.256, not 0$"),
    (["digits-lstm", "--pes", "0"], r"^Error: n_pe must be in 1\.\.256, not 0$"),
    (["rtl", "--pes", "300"], r"^Error: n_pe must be in 1\.\.256, not 300$"),
    (["rtl", "--config", "nope.json"], r"^Error: hardware configuration file .*nope\.json does not exist$"),
])
def test_impossible_configurations_fail_with_one_line_and_write_nothing(tmp_path, args, message):
    args = [str(tmp_path / a) if a.endswith(".json") else a for a in args]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    out = result.output.strip()
    assert result.exit_code == 1 and len(out.splitlines()) == 1 and re.search(message, out), out
    assert not (tmp_path / "out").exists()
