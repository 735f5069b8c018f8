# amaranth: UnusedElaboratable=no
"""The pointer read unit: P[base+j] and P[base+j+1] from the even/odd banks in one cycle."""

import random

import pytest

from eie.hw.pointer_read import PointerReadUnit
from eie.hw.testing import run_cycles, simulate, stream_get, stream_put
from eie.spec.config import EIEConfig

CONFIG = EIEConfig(n_pe=2, ptr_depth=16, ptr_bits=8, mat_depth=16, entries_per_word=8,
                   max_rows_per_pe=8, act_bits=8, acc_bits=20, max_shift=8)


def pointers(seed):
    rng = random.Random(seed)
    p, out = 0, []
    for _ in range(CONFIG.ptr_depth):
        out.append(p)
        p += rng.randint(0, 9)
    return out


@pytest.mark.parametrize("preload", ["write", "init"])
def test_even_odd_lookup_with_back_pressure(preload):
    seed = 11
    rng = random.Random(seed)
    ptr = pointers(seed)
    dut = PointerReadUnit(config=CONFIG, init=ptr if preload == "init" else None)
    requests = [(base, j) for base in (0, 3, 6) for j in range(CONFIG.ptr_depth - 1 - base)]
    got = []

    async def producer(ctx):
        if preload == "write":
            for a, x in enumerate(ptr):
                ctx.set(dut.w.en, 1)
                ctx.set(dut.w.addr, a)
                ctx.set(dut.w.data, x)
                await ctx.tick()
            ctx.set(dut.w.en, 0)
        for base, j in requests:
            ctx.set(dut.ptr_base, base)
            await stream_put(ctx, dut.i, {"value": base - j, "index": j})
            # ptr_base must stay stable while the request is in flight
            while ctx.get(dut.o.valid):
                await ctx.tick()

    async def consumer(ctx):
        while len(got) < len(requests):
            while rng.random() < 0.4:
                await ctx.tick()
            p = await stream_get(ctx, dut.o)
            got.append((p.start, p.end, p.value))

    simulate(dut, producer, consumer, name=f"pointer_read_{preload}")
    want = [(ptr[b + j], ptr[b + j + 1], b - j) for b, j in requests]
    assert got == want, f"seed {seed}"


def test_one_per_cycle_and_latency():
    ptr = pointers(3)
    dut = PointerReadUnit(config=CONFIG, init=ptr)
    n = CONFIG.ptr_depth - 1
    stimulus = [[(dut.i.valid, 1), (dut.i.payload, {"value": j, "index": j})] for j in range(n)]
    trace = run_cycles(dut, stimulus, [dut.i.ready, dut.o.valid, dut.o.payload], n + 2,
                       defaults=[(dut.i.valid, 0), (dut.o.ready, 1), (dut.ptr_base, 0)],
                       name="pointer_read_rate")
    assert all(ready for ready, _, _ in trace)
    assert [t for t, (_, v, _) in enumerate(trace) if v] == list(range(1, n + 1))
    assert [(p.start, p.end) for _, v, p in trace if v] == list(zip(ptr[:n], ptr[1:n + 1]))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"config": None}, TypeError, r"^config must be an EIEConfig, not None$"),
    ({"config": CONFIG, "init": [0] * 17}, ValueError,
     r"^pointer init has 17 words but the memory holds 16$"),
    ({"config": CONFIG, "init": [0, 256]}, ValueError,
     r"^pointer init\[1\] = 256 does not fit 8-bit unsigned$"),
])
def test_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        PointerReadUnit(**kwargs)
