"""Randomised differential regression: random cases agree across the naive reference, the golden
model and the RTL (see :mod:`eie.tb.regression`).

``--random-cases`` (default 1000 per run; ``make soak``: 100,000) are spread over the RTL
configurations; the cases are the same every run unless ``--random-seed`` asks for others. A failing
case is shrunk by hypothesis and saved in ``tests/reproducers/``; every saved reproducer is
replayed here on every run. A broken RTL (no hazard bypass) must be caught, shrunk and saved.
"""

import json
import math
import shutil
from collections import defaultdict

import pytest
from amaranth.back import verilog
from hypothesis import HealthCheck, given, seed, settings

from eie.hw.accelerator import EIEAccelerator
from eie.tb.formal.mutate import Mutant, component_ports
from eie.tb.regression import (
    CONFIGS,
    REPRODUCERS,
    Mismatch,
    cases,
    check_case,
    load_reproducer,
    materialise,
    save_reproducer,
)
from eie.tb.rtl_server import RTLError, RTLServer
from eie.tb.runner import build_verilog

pytestmark = pytest.mark.rtl

#: The configurations the random cases run on (the 64-PE array runs in tests/test_rtl_accelerator.py).
REGRESSION = ["pe1_q8_idx2", "pe3_q1_epw3", "pe4_q2", "pe8_q8_narrow", "pe16_q2"]


def hunt(rtl, config, config_name, workdir, *, examples, random_seed=None):
    """Run ``examples`` hypothesis cases on ``rtl``; returns how many agreed. On a failure, the
    shrunk case is saved in ``workdir / "failing"`` and the error re-raised."""
    agreed = []

    @settings(max_examples=examples, derandomize=random_seed is None, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], print_blob=True)
    @given(case=cases(config))
    def agree(case):
        m = materialise(config, case, workdir / "case")
        try:
            check_case(rtl, m)
        except (Mismatch, RTLError) as e:
            # Hypothesis replays the shrunk case last, so the file left behind is the smallest.
            shutil.rmtree(workdir / "failing", ignore_errors=True)
            save_reproducer(m, config_name, workdir / "failing", error=str(e))
            raise
        agreed.append(case)

    run = agree if random_seed is None else seed(random_seed)(agree)
    run()
    return len(agreed)


@pytest.mark.parametrize("config_name", REGRESSION)
def test_random_cases_agree(request, tmp_path, random_case_counts, config_name):
    total = request.config.getoption("--random-cases")
    quota = math.ceil(total / len(REGRESSION))
    config = CONFIGS[config_name]
    count = {"name": config_name, "cases": 0, "mismatches": 0}
    try:
        with RTLServer(config) as rtl:
            count["cases"] = hunt(rtl, config, config_name, tmp_path, examples=quota,
                                  random_seed=request.config.getoption("--random-seed"))
    except (Mismatch, RTLError) as e:
        count["mismatches"] = 1
        saved, = (tmp_path / "failing").glob("*.json")
        REPRODUCERS.mkdir(parents=True, exist_ok=True)
        shutil.copy(saved, REPRODUCERS / saved.name)
        raise AssertionError(f"{config_name}: {e}\nshrunk reproducer saved as tests/reproducers/{saved.name}; "
                             f"commit it with the fix, the regression replays it on every run") from e
    finally:
        (random_case_counts / f"{config_name}.json").write_text(json.dumps(count))
    assert count["cases"] >= quota, f"hypothesis ran only {count['cases']} of {quota} cases"


def test_saved_reproducers_agree(tmp_path):
    by_config = defaultdict(list)
    for k, path in enumerate(sorted(REPRODUCERS.glob("*.json"))):
        name, m = load_reproducer(path, tmp_path / f"r{k}")
        by_config[m.config].append((path.name, m))
    for config, saved in by_config.items():
        with RTLServer(config) as rtl:
            for name, m in saved:
                try:
                    check_case(rtl, m)
                except (Mismatch, RTLError) as e:
                    raise AssertionError(f"saved reproducer tests/reproducers/{name} fails again: {e}") from e


def test_broken_rtl_is_caught_shrunk_and_saved(tmp_path):
    """The accelerator without the arithmetic unit's bypass of the write one cycle ahead: the
    regression must find a mismatch, shrink it to a small case and save a reproducer that fails
    again on replay."""
    config = CONFIGS["pe4_q2"]
    top = EIEAccelerator(config=config)
    broken = Mutant(top, "pe0.arithmetic.forward0", 0, "no distance-1 bypass in PE 0")
    text = verilog.convert(broken, name="eie_top", ports=component_ports(top), emit_src=False)
    build = build_verilog(text, "eie_top", config_hash=config.config_hash() + "-broken")
    with RTLServer(build, config=config) as rtl:
        with pytest.raises(Mismatch, match="RTL differs from the golden model"):
            hunt(rtl, config, "pe4_q2", tmp_path, examples=200)
        saved, = (tmp_path / "failing").glob("*.json")
        _, m = load_reproducer(saved, tmp_path / "replay")
        assert sum(layer.index.size for layer in m.net.layers) <= 64, \
            f"the reproducer was not shrunk: {[layer.index.shape for layer in m.net.layers]}, batch {m.x.shape[0]}"
        with pytest.raises(Mismatch, match="RTL differs from the golden model"):
            check_case(rtl, m)
