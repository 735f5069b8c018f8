# amaranth: UnusedElaboratable=no
"""The sparse-matrix read unit: entry order, first flags, no bubbles between queued columns."""

import random

import pytest

from eie.hw.sparse_matrix_read import SparseMatrixReadUnit
from eie.hw.testing import simulate, stream_put
from eie.spec.config import EIEConfig


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


@pytest.mark.parametrize("entries_per_word", [1, 3, 4, 8])
def test_stream_without_bubbles(entries_per_word):
    seed = entries_per_word
    rng = random.Random(seed)
    config = config_for(entries_per_word)
    n_entries = 35 * entries_per_word // 2
    entries = [(rng.randrange(8), rng.randrange(8)) for _ in range(n_entries)]
    # Columns of 2..5 entries, each followed by an empty column, from a random offset.
    jobs, e = [], rng.randrange(entries_per_word)
    while True:
        length = rng.randint(2, 5)
        if e + length > n_entries:
            break
        jobs.append((e, e + length, rng.randint(-128, 127)))
        jobs.append((e + length, e + length, 99))
        e += length
    trace = run(config, entries, jobs, seed)
    want = [(v, z, int(n == start), act) for start, end, act in jobs
            for n, (v, z) in enumerate(entries[start:end], start)]
    assert [t[1:] for t in trace] == want, f"seed {seed}"
    cycles = [t[0] for t in trace]
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles))), \
        f"seed {seed}: bubbles in the entry stream"


def test_empty_columns_only():
    config = config_for(4)
    trace = run(config, [(1, 1)] * 4, [(2, 2, 1), (0, 0, 2), (3, 3, 3)], 0)
    assert trace == []


def test_validation():
    with pytest.raises(ValueError, match=r"^sparse-matrix init has 41 words but the memory holds 40$"):
        SparseMatrixReadUnit(config=config_for(2), init=[0] * 41)
    with pytest.raises(TypeError, match=r"^config must be an EIEConfig, not 1$"):
        SparseMatrixReadUnit(config=1)
