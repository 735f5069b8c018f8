"""The scoreboard alone (no simulator): exact messages, fault injection, completeness."""

import numpy as np
import pytest

from eie.tb.driver import ReadyPattern
from eie.tb.scoreboard import Scoreboard

EXPECTED = np.array([[1, -2, 3, 4, 5], [0, 0, 0, 0, 0]])


def test_matching_outputs_pass():
    sb = Scoreboard(EXPECTED, n_pe=2, layer=1)
    for b, row in enumerate(EXPECTED):
        sb.check_vector(b, row)
    sb.finish()
    assert sb.checked == EXPECTED.size


def test_first_mismatch_names_input_layer_row_pe_and_cycle():
    sb = Scoreboard(EXPECTED, n_pe=2, layer=1, context=" [seed 7]")
    sb.check(0, 0, 1, cycle=10)
    with pytest.raises(AssertionError, match=r"^MISMATCH input 0, layer 1, row 3 \(PE 1, local row 1\): "
                                             r"expected 4, got -4 at cycle 42 \[seed 7\]$"):
        sb.check(0, 3, -4, cycle=42)


def test_injected_fault_flips_one_expectation():
    sb = Scoreboard(EXPECTED, n_pe=4, layer=2, inject_fault=True)
    assert sb.fault == (0, 2)
    sb.check(0, 0, 1)
    with pytest.raises(AssertionError, match=r"row 2 \(PE 2, local row 0\): expected 2, got 3 "
                                             r"\[deliberate fault injected: inject_fault\]"):
        sb.check(0, 2, 3)
    assert EXPECTED[0, 2] == 3  # the caller's array is untouched


def test_missing_extra_and_duplicate_outputs_fail():
    sb = Scoreboard(EXPECTED, n_pe=2, layer=0)
    sb.check_vector(0, EXPECTED[0])
    with pytest.raises(AssertionError, match=r"^5 expected output\(s\) never arrived; first: input 1, "
                                             r"layer 0, row 0 \(PE 0, local row 0\)$"):
        sb.finish()
    with pytest.raises(AssertionError, match=r"input 1: extra output #5 \(9\) at cycle 3"):
        sb.check(1, 5, 9, cycle=3)
    with pytest.raises(AssertionError, match=r"input 0, layer 0, row 1 \(PE 1, local row 0\) received twice"):
        sb.check(0, 1, -2)
    with pytest.raises(AssertionError, match=r"input 1: 4 outputs, expected 5"):
        sb.check_vector(1, [0, 0, 0, 0])


def test_expected_must_be_two_dimensional():
    with pytest.raises(ValueError, match=r"expected outputs must be \(batch, n_out\), not \(5,\)"):
        Scoreboard(EXPECTED[0], n_pe=1, layer=0)


def test_ready_patterns():
    assert ReadyPattern.parse("none").always
    assert ReadyPattern.parse("random").p_ready == 0.5
    a, b = ReadyPattern.parse("random:0.25", seed=3), ReadyPattern.parse("random:0.25", seed=3)
    bits = [a() for _ in range(4000)]
    assert 0.2 < sum(bits) / len(bits) < 0.3
    assert bits == [b() for _ in range(4000)]  # seeded: the same pattern again
    with pytest.raises(ValueError, match=r"^back-pressure pattern must be 'none', 'random' or "
                                         r"'random:P', not 'sometimes'$"):
        ReadyPattern.parse("sometimes")
    with pytest.raises(ValueError, match=r"^p_ready must be in \(0, 1\], not 0.0$"):
        ReadyPattern(0.0)
