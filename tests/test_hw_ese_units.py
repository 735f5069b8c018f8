# amaranth: UnusedElaboratable=no
"""The ESE units on Amaranth's simulator, each against the spec's naive model."""

import random

import numpy as np
import pytest

from eie.hw.activation_store import OUT_LATENCY, ActivationStore
from eie.hw.codebook_loader import CodebookLoader
from eie.hw.elementwise import ElementwiseUnit
from eie.hw.output_collector import OutputCollector
from eie.hw.testing import simulate, stream_get
from eie.spec.ese import ESEConfig, lstm_cell

SMALL = ESEConfig(n_pe=3, act_bits=10, acc_bits=24, max_shift=12, nl_bits=6, max_rows_per_pe=16, act_depth=32,
                  max_layers=3, weight_bits=2)


@pytest.mark.parametrize("config, pe_index, hidden, h_shift", [
    (SMALL, 2, 10, 8),                  # units 2, 5, 8 exist; the fourth slot (11) is empty
    (SMALL.replace(act_bits=16, acc_bits=40, max_shift=31, nl_bits=10), 0, 12, 14),
])
def test_elementwise_unit_computes_the_cell_update(config, pe_index, hidden, h_shift):
    rng = random.Random(pe_index)
    a = config.act_bits
    lo, hi = config.act_min, config.act_max
    units = config.max_units_per_pe
    live = [u for u in range(units) if u * config.n_pe + pe_index < hidden]
    steps = [[[rng.choice([lo, hi, 0, rng.randint(lo, hi)]) for _ in range(4)] for _ in range(units)]
             for _ in range(2)]
    dut = ElementwiseUnit(config=config, pe_index=pe_index)
    got = [[], []]

    async def bench(ctx):
        ctx.set(dut.hidden, hidden)
        ctx.set(dut.shift, h_shift)
        for step, gates in enumerate(steps):
            ctx.set(dut.first_step, step == 0)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for unit in gates:
                for y in unit:
                    while rng.random() < 0.3:            # the write-back stalls now and then
                        await ctx.tick()
                    ctx.set(dut.i.valid, 1)
                    ctx.set(dut.i.payload, y)
                    await ctx.tick()
                    ctx.set(dut.i.valid, 0)
            while ctx.get(dut.busy):
                await ctx.tick()

    async def monitor(ctx):
        step = 0
        async for _clk, _rst, valid, payload, start in ctx.tick().sample(dut.o.valid, dut.o.payload, dut.start):
            if start:
                step = 1 if got[0] or step == 1 else 0
            if valid:
                got[step].append((payload.unit, payload.value))

    simulate(dut, bench, monitors=[monitor], name="elementwise")
    c = np.zeros(units, dtype=np.int64)
    for step, gates in enumerate(steps):
        y = np.asarray(gates, dtype=np.int64).T
        c, m = lstm_cell(*y, c, act_bits=a, nl_bits=config.nl_bits, h_shift=h_shift)
        assert got[step] == [(u, int(m[u])) for u in live], f"step {step}"


def test_activation_store_scans_a_region_and_reads_words():
    config = SMALL
    dut = ActivationStore(config=config, pe_index=1)
    words = {a: (a * 37) % 11 - 5 for a in range(config.act_depth)}
    found, reads = [], []

    async def bench(ctx):
        for a, v in words.items():
            ctx.set(dut.w.en, 1)
            ctx.set(dut.w.addr, a)
            ctx.set(dut.w.data, v)
            await ctx.tick()
        ctx.set(dut.w.en, 0)
        ctx.set(dut.scan_base, 7)
        ctx.set(dut.n_in, 14)                        # elements 1, 4, 7, 10, 13 -> words 7..11
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        while not ctx.get(dut.done):
            if ctx.get(dut.cand.valid):
                p = await stream_get(ctx, dut.cand)
                found.append((p.value, p.index))
            else:
                await ctx.tick()
        for a in (3, 30):
            ctx.set(dut.out_addr, a)
            await ctx.tick().repeat(OUT_LATENCY)
            reads.append(ctx.get(dut.out_data))

    simulate(dut, bench, name="activation_store")
    assert found == [(words[7 + k], 3 * k + 1) for k in range(5) if words[7 + k] != 0]
    assert reads == [words[3], words[30]]


@pytest.mark.parametrize("n_out, p_ready", [(1, 1.0), (7, 0.4)])
def test_output_collector_streams_an_interleaved_vector_in_order(n_out, p_ready):
    config = SMALL
    rng = random.Random(n_out)
    dut = OutputCollector(config=config, addr_width=5, latency=2)
    memory = [[rng.randint(-500, 500) for _ in range(32)] for _ in range(config.n_pe)]
    got = []

    async def memories(ctx):
        pipe = [0, 0]
        async for _ in ctx.tick():
            addr = ctx.get(dut.addr)
            for p in range(config.n_pe):
                ctx.set(dut.data[p], memory[p][pipe[-1]])
            pipe = [addr] + pipe[:-1]

    async def bench(ctx):
        for vector in range(2):
            ctx.set(dut.n_out, n_out)
            ctx.set(dut.base, 4 + vector)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            while True:
                ctx.set(dut.o.ready, rng.random() < p_ready)
                _, _, valid, payload, last = await ctx.tick().sample(dut.o.valid, dut.o.payload, dut.last)
                if valid and ctx.get(dut.o.ready):
                    got.append(payload)
                if last:
                    break
            ctx.set(dut.o.ready, 0)
            for _ in range(6):
                assert not ctx.get(dut.o.valid), "an output after the last one"
                await ctx.tick()

    simulate(dut, bench, monitors=[memories], name="output_collector")
    want = [memory[j % config.n_pe][base + j // config.n_pe] for base in (4, 5) for j in range(n_out)]
    assert got == want


def test_codebook_loader_copies_one_layer():
    config = SMALL
    dut = CodebookLoader(config=config, init=[[0, 1, 2, 3], [0, -4, 5, -6], [0, 7, 8, 9]])
    seen = []

    async def bench(ctx):
        ctx.set(dut.w.en, 1)
        ctx.set(dut.w.addr, 2 * 4 + 3)
        ctx.set(dut.w.data, -100)
        await ctx.tick()
        ctx.set(dut.w.en, 0)
        for layer in (1, 2):
            ctx.set(dut.layer, layer)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            cycles = 0
            while ctx.get(dut.busy):
                await ctx.tick()
                cycles += 1
            assert cycles == config.codebook_size + 1
            seen.append([ctx.get(dut.codebook[k]) for k in range(config.codebook_size)])

    simulate(dut, bench, name="codebook_loader")
    assert seen == [[0, -4, 5, -6], [0, 7, 8, -100]]


def test_constructors_validate():
    with pytest.raises(TypeError, match=r"^config must be an ESEConfig"):
        ElementwiseUnit(config=ESEConfig().__class__.__mro__[1](), pe_index=0)
    with pytest.raises(ValueError, match=r"^pe_index must be in 0\.\.2, not 3$"):
        ElementwiseUnit(config=SMALL, pe_index=3)
    with pytest.raises(ValueError, match=r"^latency must be >= 1, not 0$"):
        OutputCollector(config=SMALL, addr_width=4, latency=0)
