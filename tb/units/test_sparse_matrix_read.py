"""Sparse-matrix read unit: the ``(v, z, first, act)`` entries of column jobs in order, across
word boundaries, with empty columns dropped, under idle job input; and no bubble between
queued columns. Parameters: ``config``, ``jobs``, ``seed``.
"""

import random
from collections import deque

import cocotb
from cocotb.triggers import RisingEdge

from eie.hw.layouts import entry_layout, job_layout
from eie.tb.driver import start_clock_and_reset
from eie.tb.units import Packer, unit_params


async def stream_jobs(dut, edge, job, words, config, jobs, *, p_idle, rng, seed):
    """Offer ``jobs`` ``(start, end, value)``; check every entry; returns entry cycles."""
    per_word, b = config.entries_per_word, config.entry_bits
    entry = Packer(entry_layout(config))
    expected = deque()
    pending = deque(jobs)
    offered = None
    cycles, cycle = [], 0
    while pending or offered is not None or expected:
        if offered is None and pending and rng.random() >= p_idle:
            offered = pending.popleft()
        dut.job__valid.value = int(offered is not None)
        if offered is not None:
            start, end, value = offered
            dut.job__payload.value = job.pack(start=start, end=end, value=value)
        await edge
        cycle += 1
        if dut.o__valid.value:
            got = entry.unpack(dut.o__payload.value)
            assert expected, f"entry {got} from no job (seed {seed})"
            want = expected.popleft()
            assert got == want, f"got {got}, expected {want} (seed {seed})"
            cycles.append(cycle)
        if offered is not None and dut.job__ready.value:
            start, end, value = offered
            for e in range(start, end):
                lane = (words[e // per_word] >> ((e % per_word) * b)) & ((1 << b) - 1)
                expected.append({"v": lane & ((1 << config.weight_bits) - 1),
                                 "z": lane >> config.weight_bits, "first": int(e == start),
                                 "act": value})
            offered = None
        assert cycle < 100 * (len(jobs) + 10) + 10 * sum(e - s for s, e, _ in jobs), \
            f"entries stopped coming ({len(expected)} missing, seed {seed})"
    dut.job__valid.value = 0
    return cycles


@cocotb.test()
async def entries_in_order(dut):
    from eie.spec.config import EIEConfig

    p = unit_params()
    config = EIEConfig.from_dict(p["config"])
    seed = p.get("seed", 0)
    rng = random.Random(seed)
    job = Packer(job_layout(config))
    await start_clock_and_reset(dut)
    edge = RisingEdge(dut.clk)
    words = [rng.randrange(1 << config.word_bits) for _ in range(config.mat_depth)]
    dut.w__en.value = 1
    for a, word in enumerate(words):
        dut.w__addr.value = a
        dut.w__data.value = word
        await edge
    dut.w__en.value = 0
    entries = config.mat_entries
    act = (config.act_min, config.act_max)

    def column(lo=0, hi=12):
        start = rng.randrange(entries - hi)
        return start, start + rng.randint(lo, hi), rng.randint(*act)

    # Random columns, a third of them empty, with idle job input.
    mixed = [column(0, 12) if rng.random() < 0.66 else (s := rng.randrange(entries), s, 0)
             for _ in range(p.get("jobs", 300))]
    await stream_jobs(dut, edge, job, words, config, mixed, p_idle=0.3, rng=rng, seed=seed)
    # Columns of 2+ entries offered back to back: the entry stream has no bubble.
    packed = [column(2, 9) for _ in range(60)]
    cycles = await stream_jobs(dut, edge, job, words, config, packed, p_idle=0.0, rng=rng, seed=seed)
    span = cycles[-1] - cycles[0] + 1
    assert span == len(cycles), f"{span - len(cycles)} bubble cycles between queued columns"
    dut._log.info("checked %d + %d entries", sum(e - s for s, e, _ in mixed), len(cycles))
