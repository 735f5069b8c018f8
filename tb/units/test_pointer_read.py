"""Pointer read unit: ``(P[base+j], P[base+j+1])`` from the even/odd banks for every column,
both parities, every base, with idle inputs and random output back-pressure.
Parameters: ``config`` (EIEConfig dict), ``jobs``, ``seed``.
"""

import random
from collections import deque

import cocotb
from cocotb.triggers import RisingEdge

from eie.tb.driver import start_clock_and_reset
from eie.tb.units import Packer, unit_params


@cocotb.test()
async def pointers_under_backpressure(dut):
    from eie.hw.layouts import Widths, activation_layout, job_layout
    from eie.spec.config import EIEConfig

    p = unit_params()
    config = EIEConfig.from_dict(p["config"])
    seed = p.get("seed", 0)
    rng = random.Random(seed)
    w = Widths(config)
    act = Packer(activation_layout(config.act_bits, w.act_index))
    job = Packer(job_layout(config))
    await start_clock_and_reset(dut)
    edge = RisingEdge(dut.clk)

    # Monotonic pointers with repeats (empty columns) over the whole memory, written through w.
    ptr, x = [], 0
    for _ in range(config.ptr_depth):
        ptr.append(x)
        x = min(x + rng.choice([0, 0, 1, 3, 17]), (1 << config.ptr_bits) - 1)
    dut.w__en.value = 1
    for a, v in enumerate(ptr):
        dut.w__addr.value = a
        dut.w__data.value = v
        await edge
    dut.w__en.value = 0

    act_lo, act_hi = config.act_min, config.act_max
    n_jobs = p.get("jobs", 600)
    checked = 0
    for batch in range(8):
        base = rng.randrange(config.ptr_depth - 1)
        columns = [rng.randrange(config.ptr_depth - 1 - base) for _ in range(n_jobs // 8)]
        if batch == 0:
            columns = list(range(min(64, config.ptr_depth - 1 - base)))  # every parity in order
        dut.ptr_base.value = base
        expected = deque()
        pending = deque(columns)
        p_ready = rng.choice([0.3, 0.7, 1.0])
        offered = None
        while pending or expected or offered is not None:
            if offered is None and pending and rng.random() < 0.8:
                j = pending.popleft()
                value = rng.randint(act_lo, act_hi)
                offered = (act.pack(value=value, index=j), (ptr[base + j], ptr[base + j + 1], value))
            dut.i__valid.value = int(offered is not None)
            if offered is not None:
                dut.i__payload.value = offered[0]
            o_ready = int(rng.random() < p_ready)
            dut.o__ready.value = o_ready
            await edge
            if dut.o__valid.value and o_ready:
                got = job.unpack(dut.o__payload.value)
                assert expected, f"an output job nobody asked for: {got} (seed {seed})"
                start, end, value = expected.popleft()
                assert (got["start"], got["end"], got["value"]) == (start, end, value), \
                    f"base {base}: got {got}, expected start {start} end {end} value {value} (seed {seed})"
                checked += 1
            if offered is not None and dut.i__ready.value:
                expected.append(offered[1])
                offered = None
        dut.i__valid.value = 0
    dut._log.info("checked %d column jobs", checked)
