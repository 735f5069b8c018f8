# amaranth: UnusedElaboratable=no
"""The sparse-matrix read unit: entry order, first flags, no bubbles between queued columns."""

import pytest

from eie.hw.sparse_matrix_read import SparseMatrixReadUnit
from eie.hw.testing import simulate, stream_put
from eie.spec.config import EIEConfig
from eie.tb.units import run_unit
from eie.tb.units import sparse_matrix_read as sparse

UNIT_CONFIG = EIEConfig(n_pe=4, ptr_depth=64, mat_depth=64, max_rows_per_pe=16, bias_depth=32, max_layers=4)


def config_for(entries_per_word):
    return EIEConfig(n_pe=1, weight_bits=3, index_bits=3, entries_per_word=entries_per_word,
                     ptr_bits=10, mat_depth=40, ptr_depth=16, max_rows_per_pe=8, act_bits=8,
                     acc_bits=20, max_shift=8)


def pack(entries, config):
    b, e = config.entry_bits, config.entries_per_word
    words = [0] * -(-len(entries) // e)
    for n, (v, z) in enumerate(entries):
        words[n // e] |= (z << config.weight_bits | v) << (n % e * b)
    return words


def run(config, entries, jobs, seed):
    """Offer the jobs back to back; returns the output trace [(cycle, v, z, first, act)]."""
    dut = SparseMatrixReadUnit(config=config, init=pack(entries, config))
    trace = []

    async def producer(ctx):
        for start, end, value in jobs:
            await stream_put(ctx, dut.job, {"start": start, "end": end, "value": value})
        while ctx.get(dut.busy):
            await ctx.tick()

    async def monitor(ctx):
        cycle = 0
        async for _, _, valid, p in ctx.tick().sample(dut.o.valid, dut.o.payload):
            if valid:
                trace.append((cycle, p.v, p.z, p.first, p.act))
            cycle += 1

    simulate(dut, producer, monitors=[monitor], name="sparse_matrix_read")
    return trace


@pytest.mark.parametrize("entries_per_word", [3, 8])
def test_entries_in_order_with_idle_jobs(simulator, entries_per_word):
    """Random columns, a third of them empty, with idle job input: every entry in order."""
    params = {"config": UNIT_CONFIG.replace(entries_per_word=entries_per_word).to_dict()}
    stimulus = sparse.stimulus(4, **params)
    got = run_unit(simulator, sparse, params, stimulus)
    assert got["entries"] == sparse.reference(stimulus, **params), "seed 4"


@pytest.mark.parametrize("entries_per_word", [1, 3, 8])
def test_no_bubble_between_queued_columns(simulator, entries_per_word):
    params = {"config": UNIT_CONFIG.replace(entries_per_word=entries_per_word).to_dict()}
    stimulus = sparse.stimulus(entries_per_word, packed=True, **params)
    got = run_unit(simulator, sparse, params, stimulus)
    assert got["entries"] == sparse.reference(stimulus, **params), f"seed {entries_per_word}"
    cycles = got["cycles"]
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles))), \
        f"seed {entries_per_word}: {len(range(cycles[0], cycles[-1] + 1)) - len(cycles)} bubble cycles"
    assert cycles[0] == 5, "a job offered to an idle unit gives its first entry 5 cycles later"


def test_empty_columns_only():
    config = config_for(4)
    trace = run(config, [(1, 1)] * 4, [(2, 2, 1), (0, 0, 2), (3, 3, 3)], 0)
    assert trace == []


def test_validation():
    with pytest.raises(ValueError, match=r"^sparse-matrix init has 41 words but the memory holds 40$"):
        SparseMatrixReadUnit(config=config_for(2), init=[0] * 41)
    with pytest.raises(TypeError, match=r"^config must be an EIEConfig, not 1$"):
        SparseMatrixReadUnit(config=1)
