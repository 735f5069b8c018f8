# amaranth: UnusedElaboratable=no
"""The activation read/write unit: source scan, ping-pong swap, output and bias paths."""

import random

import pytest

from eie.hw.activation_rw import OUT_LATENCY, ActivationReadWriteUnit
from eie.hw.testing import simulate, stream_get
from eie.spec.config import EIEConfig

CONFIG = EIEConfig(n_pe=3, max_rows_per_pe=6, bias_depth=8, act_bits=8, acc_bits=20, max_shift=8)


async def write(ctx, port, addr, data):
    ctx.set(port.en, 1)
    ctx.set(port.addr, addr)
    ctx.set(port.data, data)
    await ctx.tick()
    ctx.set(port.en, 0)


@pytest.mark.parametrize("pe_index, n_in", [(0, 18), (1, 16), (2, 2), (2, 3)])
def test_scan_offers_nonzero_activations(pe_index, n_in):
    seed = 10 * pe_index + n_in
    rng = random.Random(seed)
    dut = ActivationReadWriteUnit(config=CONFIG, pe_index=pe_index)
    local = [rng.choice([0, 0, rng.randint(-128, 127)]) for _ in range(CONFIG.max_rows_per_pe)]
    got = []

    async def bench(ctx):
        for select in (0, 1):
            ctx.set(dut.select, select)
            for k, v in enumerate(local):
                await write(ctx, dut.load, k, v + select)
            ctx.set(dut.n_in, n_in)
            ctx.set(dut.scan_start, 1)
            await ctx.tick()
            ctx.set(dut.scan_start, 0)
            assert not ctx.get(dut.scan_done) or pe_index >= n_in
            found = []
            while not ctx.get(dut.scan_done):
                if ctx.get(dut.cand.valid) and rng.random() < 0.7:
                    p = await stream_get(ctx, dut.cand)
                    found.append((p.value, p.index))
                else:
                    await ctx.tick()
            got.append(found)

    simulate(dut, bench, name="activation_rw_scan")
    for select, found in enumerate(got):
        want = [(v + select, k * CONFIG.n_pe + pe_index) for k, v in enumerate(local)
                if k * CONFIG.n_pe + pe_index < n_in and v + select != 0]
        assert found == want, f"seed {seed}, select {select}"


def test_scan_follows_the_write_back():
    """While ``limited``, the scan reads only rows below ``limit``: rows written after the scan
    started (as the overlapped write-back does) are offered with their new values, never the
    stale ones they held before."""
    pe_index, n_in = 1, 3 * CONFIG.max_rows_per_pe
    dut = ActivationReadWriteUnit(config=CONFIG, pe_index=pe_index)
    rows = CONFIG.max_rows_per_pe
    new = [0 if k % 3 == 1 else k + 1 for k in range(rows)]
    found = []

    async def bench(ctx):
        ctx.set(dut.select, 1)
        for k in range(rows):
            await write(ctx, dut.load, k, 99)                # stale
        ctx.set(dut.n_in, n_in)
        ctx.set(dut.limited, 1)
        ctx.set(dut.limit, 0)
        ctx.set(dut.cand.ready, 1)
        ctx.set(dut.scan_start, 1)
        await ctx.tick()
        ctx.set(dut.scan_start, 0)
        for k in range(rows):
            await ctx.tick().repeat(3)
            await write(ctx, dut.dst, k, new[k])
            ctx.set(dut.limit, k + 1)
        await ctx.tick()
        ctx.set(dut.limited, 0)
        await ctx.tick().repeat(8)
        assert ctx.get(dut.scan_done)

    async def monitor(ctx):
        async for _, _, valid, ready, p in ctx.tick().sample(dut.cand.valid, dut.cand.ready, dut.cand.payload):
            if valid and ready:
                found.append((p.value, p.index))

    simulate(dut, bench, monitors=[monitor], name="activation_rw_limit")
    assert found == [(v, k * CONFIG.n_pe + pe_index) for k, v in enumerate(new) if v]


def test_ping_pong_output_and_bias():
    dut = ActivationReadWriteUnit(config=CONFIG, pe_index=1, bias_init=[-5, 7])
    reads = []

    async def bench(ctx):
        for k in range(CONFIG.max_rows_per_pe):
            ctx.set(dut.select, 0)
            await write(ctx, dut.load, k, k + 1)          # input into the source (file 0)
            ctx.set(dut.select, 1)
            await write(ctx, dut.dst, k, -k - 1)          # write-back into the swapped source (file 1)
        await write(ctx, dut.bias_w, 2, -(2 ** 19))
        for select in (0, 1):
            ctx.set(dut.select, select)
            for k in range(CONFIG.max_rows_per_pe):
                ctx.set(dut.out_addr, k)
                await ctx.tick().repeat(OUT_LATENCY)
                reads.append(ctx.get(dut.out_data))
        for a in range(3):
            ctx.set(dut.bias_addr, a)
            await ctx.tick()
            reads.append(ctx.get(dut.bias_data))

    simulate(dut, bench, name="activation_rw_ports")
    rows = CONFIG.max_rows_per_pe
    assert reads == [k + 1 for k in range(rows)] + [-k - 1 for k in range(rows)] + [-5, 7, -(2 ** 19)]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"config": CONFIG, "pe_index": 3}, ValueError, r"^pe_index must be in 0\.\.2, not 3$"),
    ({"config": CONFIG, "pe_index": 1.0}, TypeError, r"^pe_index must be an integer, not 1\.0$"),
    ({"config": CONFIG, "pe_index": 0, "bias_init": [2 ** 19]}, ValueError,
     r"^bias init\[0\] = 524288 does not fit 20-bit signed$"),
])
def test_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        ActivationReadWriteUnit(**kwargs)
