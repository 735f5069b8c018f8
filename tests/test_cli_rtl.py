"""`eie rtl`, `eie sim` and `eie verify` from the command line."""

import re

import numpy as np
import pytest
from click.testing import CliRunner

from eie.cli import main
from eie.sim.golden import run_golden
from eie.sim.random_net import random_inputs, random_network
from eie.spec.config import EIEConfig
from eie.spec.emit import write_images
from eie.spec.image import load_images

pytestmark = pytest.mark.rtl

CONFIG = EIEConfig(n_pe=2, max_rows_per_pe=16, mat_depth=64, ptr_depth=64, bias_depth=32, max_layers=2)


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory):
    return write_images(random_network(4, [12, 20, 6], CONFIG, density=0.3), CONFIG,
                        tmp_path_factory.mktemp("cli") / "img")


def test_rtl_writes_deterministic_verilog_for_a_configuration(tmp_path):
    args = ["--pes", 2, "--max-rows-per-pe", 16, "--mat-depth", 64, "--ptr-depth", 64, "--bias-depth", 32]
    assert run("rtl", "--out", tmp_path / "a", *args)[0] == 0
    assert run("rtl", "--out", tmp_path / "b", *args)[0] == 0
    a, b = (tmp_path / "a" / "eie_top.v").read_text(), (tmp_path / "b" / "eie_top.v").read_text()
    assert a == b and "module eie_top" in a


def test_rtl_from_images_refuses_contradicting_options(images_dir, tmp_path):
    code, out = run("rtl", "--images", images_dir, "--out", tmp_path / "v", "--pes", 3)
    assert code == 1 and "contradict the images' configuration" in out
    assert not (tmp_path / "v").exists()


def test_sim_and_verify_match_the_golden_model(images_dir, tmp_path):
    x = random_inputs(1, 3, 12, CONFIG)
    np.save(tmp_path / "x.npy", x)
    code, out = run("sim", images_dir, "--input", tmp_path / "x.npy", "--out", tmp_path / "y.npy", "--raw")
    assert code == 0, out
    assert re.search(r"RTL: 3 inputs on 2 PEs, cycles per input: mean \d", out)
    assert np.array_equal(np.load(tmp_path / "y.npy"), run_golden(load_images(images_dir), x))
    code, out = run("verify", images_dir, "--input", tmp_path / "x.npy", "--raw", "--queue-depth", 1)
    assert code == 0 and "bit-exact" in out, out
