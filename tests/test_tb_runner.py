"""The cocotb runner's own checks on a tiny counter: builds are cached, passing tests pass,
failing tests, missing modules and unknown test names fail."""

import time

import pytest

from eie.tb.knobs import knob_plusargs
from eie.tb.runner import CocotbFailure, build_verilog, run_cocotb
from eie.tb.selftest_counter import counter_verilog

pytestmark = pytest.mark.rtl

MODULE = "eie.tb.selftest_counter"


@pytest.fixture(scope="module")
def counter_build():
    return build_verilog(counter_verilog(), "counter")


def test_build_is_cached(counter_build):
    again = build_verilog(counter_verilog(), "counter")
    assert again.build_dir == counter_build.build_dir
    assert again.seconds == 0.0          # no Verilator run: the stamp of the first build was found


def test_different_verilog_gets_its_own_build(counter_build):
    other = build_verilog(counter_verilog(width=4), "counter")
    assert other.build_dir != counter_build.build_dir


def test_passing_tests_pass(counter_build):
    result = run_cocotb(counter_build, MODULE)
    assert len(result.passed) == 3, result.passed


def test_fault_switch_makes_the_run_fail(counter_build, tmp_path):
    with pytest.raises(CocotbFailure, match=r"2 of 3 cocotb test\(s\) failed: counts_enabled_cycles"):
        run_cocotb(counter_build, MODULE, plusargs=knob_plusargs(tmp_path / "knobs.json", inject_fault=True))


def test_missing_module_fails(counter_build):
    with pytest.raises(CocotbFailure, match=r"'eie\.tb\.no_such_module' cannot be imported"):
        run_cocotb(counter_build, "eie.tb.no_such_module")


def test_unknown_testcase_fails(counter_build):
    with pytest.raises(CocotbFailure, match="no cocotb test ran"):
        run_cocotb(counter_build, MODULE, testcase="no_such_test")


def test_missing_verilog_fails(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Verilog source .*nothing\.v does not exist"):
        build_verilog(tmp_path / "nothing.v", "nothing")


def test_hanging_simulation_is_killed(counter_build, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(CocotbFailure, match="ended without a results file"):
        run_cocotb(counter_build, MODULE, testcase="hangs_when_asked",
                   plusargs=knob_plusargs(tmp_path / "knobs.json", hang=True), wall_timeout=3)
    assert time.monotonic() - t0 < 300   # killed after its 3 s limit, not left to the default 1800 s
