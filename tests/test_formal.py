"""Formal proofs of the units (``eie.tb.formal``): each holds, and each fails on its broken design.

The quick properties run here; ``make formal`` runs all of them (the whole-array liveness check
takes tens of minutes). A missing solver or sby is an error, never a skip.
"""

import pytest

from eie.tb.formal.properties import PROPERTIES, assertion_text
from eie.tb.formal.sby import run_sby

pytestmark = pytest.mark.formal

QUICK = [p for p in PROPERTIES.values() if p.quick]


@pytest.mark.parametrize("prop", QUICK, ids=[p.name for p in QUICK])
def test_property_holds(tmp_path, prop):
    result = run_sby(prop.design(), name=prop.name, mode=prop.mode, depth=prop.depth, workdir=tmp_path)
    assert result.passed, f"{prop.claim}: {result.status}, {[assertion_text(f) for f in result.failures]} " \
                          f"(log {result.log})"


BROKEN = [pytest.param(p, b, id=f"{p.name}-{b.description.replace(' ', '_')}")
          for p in QUICK for b in p.breakages]


@pytest.mark.parametrize("prop, breakage", BROKEN)
def test_broken_design_fails(tmp_path, prop, breakage):
    result = run_sby(prop.design(breakage), name=f"{prop.name}_broken", mode=prop.mode, depth=prop.depth,
                     workdir=tmp_path)
    assert result.status == "FAIL", f"{prop.name} still holds when {breakage.description}: the property is blind"
    caught_by = [assertion_text(f) for f in result.failures]
    assert any(breakage.fails in line for line in caught_by), \
        f"{breakage.description}: expected an assertion about {breakage.fails!r} to fail, got {caught_by}"


def test_every_property_has_a_broken_design():
    for prop in PROPERTIES.values():
        assert prop.breakages or prop.mode == "cover", f"{prop.name} has no broken design"
