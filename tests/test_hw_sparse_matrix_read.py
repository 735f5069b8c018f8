# amaranth: UnusedElaboratable=no
"""The sparse-matrix read unit: entry order, first flags, no bubbles between queued columns."""

import pytest

from eie.hw.sparse_matrix_read import FIRST_ENTRY_LATENCY, SparseMatrixReadUnit
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
    assert cycles[0] == FIRST_ENTRY_LATENCY, \
        f"a job offered to an idle unit gives its first entry {FIRST_ENTRY_LATENCY} cycles later"


def test_padding_is_free():
    """EIE's padding (a zero weight with the largest skip before a long zero run): a padding
    entry next to a real one in the same word costs no cycle, two paddings in a row cost one,
    and the real entries come out with the paddings' rows added to their relative index."""
    config = config_for(4).replace(max_rows_per_pe=64)
    # Column 0 = entries 0..8, column 1 = entries 9..11; four entries per word.
    entries = [(1, 2), (0, 7), (2, 0), (3, 5), (0, 7), (4, 1), (0, 7), (0, 7), (5, 3), (0, 7),
               (0, 7), (6, 4)]
    trace = run(config, entries, [(0, 9, 11), (9, 12, 12)], 0)
    got = [t[1:] for t in trace]
    assert got == [(1, 2, 1, 11), (2, 8, 0, 11), (3, 5, 0, 11), (4, 9, 0, 11), (5, 19, 0, 11),
                   (6, 20, 1, 12)]
    cycles = [t[0] for t in trace]
    # Units (one SRAM word each): (r p) (r r) | (p r) (p p) | (r) | (p p) (r). The (r r) costs
    # two cycles, each (p p) one in which nothing is sent, every other unit one.
    assert cycles == [FIRST_ENTRY_LATENCY + k for k in (0, 1, 2, 3, 5, 7)], cycles


def test_padding_only_and_trailing_padding():
    """A column of paddings sends nothing; paddings at a column's end vanish; the next column's
    first entry is not shifted by them."""
    config = config_for(4).replace(max_rows_per_pe=64)
    entries = [(0, 7), (0, 7), (0, 3), (2, 1), (0, 7), (0, 7), (3, 2)]
    trace = run(config, entries, [(0, 3, 1), (3, 6, 2), (6, 7, 3)], 0)
    assert [t[1:] for t in trace] == [(2, 1, 1, 2), (3, 2, 1, 3)]


@pytest.mark.parametrize("job_depth", [1, 2, 8])
def test_busy_until_the_last_entry(job_depth):
    """``busy`` never drops while a job is inside (the PE's completion flag): high from the cycle
    after a job's handshake until its last entry has left, for register and block-RAM job FIFOs."""
    config = config_for(4)
    dut = SparseMatrixReadUnit(config=config, init=pack([(1, 0)] * 8, config), job_depth=job_depth)
    trace = []

    async def bench(ctx):
        for start, end in ((0, 3), (5, 6)):
            await stream_put(ctx, dut.job, {"start": start, "end": end, "value": 1})
            for _ in range(12):
                _, _, busy, valid = await ctx.tick().sample(dut.busy, dut.o.valid)
                trace.append((busy, valid))

    simulate(dut, bench, name="sparse_matrix_read_busy")
    for job in (trace[:12], trace[12:]):
        last = max(n for n, (_, valid) in enumerate(job) if valid)
        assert all(busy for busy, _ in job[:last]), f"job depth {job_depth}: busy dropped {job}"
        assert not any(busy for busy, _ in job[last + 1:]), f"job depth {job_depth}: busy stuck"


def test_empty_columns_only():
    config = config_for(4)
    trace = run(config, [(1, 1)] * 4, [(2, 2, 1), (0, 0, 2), (3, 3, 3)], 0)
    assert trace == []


def test_validation():
    with pytest.raises(ValueError, match=r"^sparse-matrix init has 41 words but the memory holds 40$"):
        SparseMatrixReadUnit(config=config_for(2), init=[0] * 41)
    with pytest.raises(TypeError, match=r"^config must be an EIEConfig, not 1$"):
        SparseMatrixReadUnit(config=1)
    with pytest.raises(ValueError, match=r"^job_depth must be >= 1, not 0$"):
        SparseMatrixReadUnit(config=config_for(2), job_depth=0)
    with pytest.raises(TypeError, match=r"^job_depth must be an integer, not 2.0$"):
        SparseMatrixReadUnit(config=config_for(2), job_depth=2.0)
