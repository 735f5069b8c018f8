# amaranth: UnusedElaboratable=no
"""The arithmetic unit against a naive accumulate model, with read-after-write hazards."""

import random

import pytest

from eie.hw.arithmetic_unit import ArithmeticUnit
from eie.hw.testing import run_cycles
from eie.spec.config import EIEConfig

CONFIG = EIEConfig(n_pe=1, max_rows_per_pe=4, index_bits=2, weight_bits=3, act_bits=8, acc_bits=24,
                   max_shift=16)


def columns_to_entries(columns, config):
    """Columns given as (activation, [(row, v), ...]) -> entries (v, z, first, act)."""
    entries = []
    for act, rows in columns:
        prev = -1
        for n, (row, v) in enumerate(rows):
            z = row - prev - 1
            assert 0 <= z <= config.max_run
            entries.append((v, z, int(n == 0), act))
            prev = row
    return entries


def accumulate_model(columns, codebook, rows):
    acc = [0] * rows
    for act, entries in columns:
        for row, v in entries:
            acc[row] += codebook[v] * act
    return acc


def run_unit(columns, codebook, *, bubbles, seed):
    """Stream the entries (with random idle cycles), then clear every row; returns acc values."""
    rng = random.Random(seed)
    c = CONFIG
    dut = ArithmeticUnit(config=c)
    stimulus = []
    for v, z, first, act in columns_to_entries(columns, c):
        while rng.random() < bubbles:
            stimulus.append([])
        stimulus.append([(dut.i.valid, 1),
                         (dut.i.payload, {"v": v, "z": z, "first": first, "act": act})])
    # Clear right behind the last entry: the clears hit the bypass too.
    stimulus += [[(dut.clear.valid, 1), (dut.clear.payload, r)] for r in range(c.max_rows_per_pe)]
    n = len(stimulus) + ArithmeticUnit.CLEAR_LATENCY + 2
    trace = run_cycles(dut, stimulus, [dut.acc.valid, dut.acc.payload, dut.busy], n,
                       defaults=[(dut.i.valid, 0), (dut.clear.valid, 0), (dut.codebook, codebook)],
                       name="arithmetic_unit")
    first_out = next(t for t, (valid, _, _) in enumerate(trace) if valid)
    assert first_out == len(stimulus) - c.max_rows_per_pe + ArithmeticUnit.CLEAR_LATENCY
    out = [(p.row, p.value) for valid, p, _ in trace if valid]
    assert [row for row, _ in out] == list(range(c.max_rows_per_pe))
    assert not trace[-1][2], "busy after the pipeline drained"
    return [value for _, value in out]


def random_columns(rng, n_columns, codebook_size, rows):
    cols = []
    for _ in range(n_columns):
        picked = sorted(rng.sample(range(rows), rng.randint(1, rows)))
        cols.append((rng.randint(-128, 127), [(r, rng.randrange(codebook_size)) for r in picked]))
    return cols


CODEBOOK = [0, 127, -128, 5, -7, 64, -1, 33]


@pytest.mark.parametrize("name, columns", [
    ("distance1", [(3, [(2, 1)]), (5, [(2, 2)]), (-7, [(2, 3)])]),
    ("distance2", [(3, [(1, 1), (2, 4)]), (9, [(1, 5)]), (-2, [(2, 1), (3, 2)])]),
    ("both", [(100, [(0, 1)]), (-100, [(0, 2)]), (50, [(1, 3)]), (-3, [(0, 4)]), (8, [(0, 5)])]),
    ("padding", [(77, [(0, 0), (3, 1)]), (11, [(3, 0)]), (-9, [(3, 2)])]),
])
def test_hazards(name, columns):
    got = run_unit(columns, CODEBOOK, bubbles=0.0, seed=0)
    assert got == accumulate_model(columns, CODEBOOK, CONFIG.max_rows_per_pe), name


@pytest.mark.parametrize("seed, bubbles", [(1, 0.0), (2, 0.3), (3, 0.6)])
def test_random_streams(seed, bubbles):
    rng = random.Random(seed)
    columns = random_columns(rng, 40, len(CODEBOOK), CONFIG.max_rows_per_pe)
    got = run_unit(columns, CODEBOOK, bubbles=bubbles, seed=seed)
    assert got == accumulate_model(columns, CODEBOOK, CONFIG.max_rows_per_pe), f"seed {seed}"


def test_clear_leaves_zero():
    """A second run after the clear starts from zero."""
    columns = [(5, [(0, 1), (1, 2)])]
    c = CONFIG
    dut = ArithmeticUnit(config=c)
    entries = columns_to_entries(columns, c)
    once = [[(dut.i.valid, 1), (dut.i.payload, dict(zip(("v", "z", "first", "act"), e)))]
            for e in entries]
    clear = [[(dut.clear.valid, 1), (dut.clear.payload, r)] for r in range(c.max_rows_per_pe)]
    stimulus = once + clear + once + clear
    trace = run_cycles(dut, stimulus, [dut.acc.valid, dut.acc.payload], len(stimulus) + 6,
                       defaults=[(dut.i.valid, 0), (dut.clear.valid, 0), (dut.codebook, CODEBOOK)],
                       name="arithmetic_unit_clear")
    values = [p.value for valid, p in trace if valid]
    want = accumulate_model(columns, CODEBOOK, c.max_rows_per_pe)
    assert values == want + want


def test_validation():
    with pytest.raises(TypeError, match=r"^config must be an EIEConfig, not None$"):
        ArithmeticUnit(config=None)
