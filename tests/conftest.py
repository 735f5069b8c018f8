import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


# --- randomised differential regression (tests/test_random_regression.py) ------------------------
# `--random-cases N` (default 1000; `make soak` passes 100000) spread over the RTL configurations;
# `--random-seed S` draws other cases than the fixed default set. Every test that runs cases writes
# its count into a folder shared by the xdist workers; the summary adds them up.

def pytest_addoption(parser):
    parser.addoption("--random-cases", type=int, default=1000,
                     help="random cases of the differential regression per run (default 1000)")
    parser.addoption("--random-seed", type=int, default=None,
                     help="hypothesis seed of the regression (default: derandomised, the same cases every run)")


def pytest_configure(config):
    if not hasattr(config, "workerinput"):
        import tempfile
        config.random_case_dir = tempfile.mkdtemp(prefix="eie-random-cases-")


def pytest_configure_node(node):
    node.workerinput["random_case_dir"] = node.config.random_case_dir


@pytest.fixture
def random_case_counts(request):
    """Folder where tests record how many random cases they ran (for the summary line)."""
    config = request.config
    return Path(config.workerinput["random_case_dir"] if hasattr(config, "workerinput") else config.random_case_dir)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if hasattr(config, "workerinput"):
        return
    counts = [json.loads(p.read_text()) for p in sorted(Path(config.random_case_dir).glob("*.json"))]
    if counts:
        cases = sum(c["cases"] for c in counts)
        mismatches = sum(c["mismatches"] for c in counts)
        per_config = ", ".join(f"{c['name']} {c['cases']}" for c in counts)
        terminalreporter.write_line(
            f"random differential regression: {cases} cases ({per_config}) through the naive reference, "
            f"the golden model and the RTL; {mismatches} mismatches")


@pytest.fixture(params=["amaranth", pytest.param("verilator", marks=pytest.mark.rtl)])
def simulator(request):
    """Each unit test runs once on Amaranth's simulator and once on cocotb/Verilator (``eie.tb.units``)."""
    return request.param
