"""Requantiser: bias, round half up, shift, saturate, ReLU at the extremes of every operand,
one per cycle with idle gaps, fixed latency. Parameters: ``config``, ``count``, ``seed``.
"""

import random
from collections import deque

import cocotb
from cocotb.triggers import RisingEdge

from eie.tb.driver import start_clock_and_reset
from eie.tb.units import Packer, unit_params


def model(acc, bias, shift, relu, act_bits):
    """``docs/numerics.md`` in plain Python integers."""
    t = acc + bias
    r = (t + (1 << (shift - 1))) >> shift if shift > 0 else t
    y = max(-(1 << (act_bits - 1)), min((1 << (act_bits - 1)) - 1, r))
    return max(y, 0) if relu else y


def operands(rng, config):
    amin, amax = -(1 << (config.acc_bits - 1)), (1 << (config.acc_bits - 1)) - 1
    special = [amin, amax, 0, -1, 1, amin + 1, amax - 1]
    while True:
        shift = rng.choice([0, 1, 2, config.max_shift, config.max_shift - 1,
                            rng.randint(0, config.max_shift)])
        half = 1 << shift
        # Values around the saturation thresholds and rounding ties at this shift.
        edge = [config.act_max * half + half // 2 - 1, config.act_max * half + half // 2,
                config.act_min * half - half // 2 - 1, config.act_min * half - half // 2,
                half // 2, -(half // 2), half // 2 - 1, -(half // 2) - 1]
        edge = [max(amin, min(amax, v)) for v in edge]
        pick = rng.random()
        if pick < 0.3:
            acc, bias = rng.choice(special), rng.choice(special)
        elif pick < 0.6:
            acc, bias = rng.choice(edge), rng.choice([0, 0, 1, -1])
        else:
            acc, bias = rng.randint(amin, amax), rng.randint(amin, amax) >> rng.randint(0, 40)
        yield acc, bias, shift, rng.randint(0, 1)


@cocotb.test()
async def extremes(dut):
    from amaranth.hdl import signed
    from amaranth.lib import data

    from eie.hw.requantize import Requantizer
    from eie.spec.config import EIEConfig

    p = unit_params()
    config = EIEConfig.from_dict(p["config"])
    seed = p.get("seed", 0)
    rng = random.Random(seed)
    packer = Packer(data.StructLayout({"acc": signed(config.acc_bits), "bias": signed(config.acc_bits)}))
    await start_clock_and_reset(dut)
    edge = RisingEdge(dut.clk)
    pipeline = deque()  # expected output per cycle, None when nothing was issued
    gen = operands(rng, config)
    count, checked = p.get("count", 3000), 0
    for cycle in range(count + Requantizer.LATENCY + 1):
        issue = cycle < count and rng.random() < 0.85
        if issue:
            acc, bias, shift, relu = next(gen)
            dut.i__payload.value = packer.pack(acc=acc, bias=bias)
            dut.shift.value = shift
            dut.relu.value = relu
            pipeline.append(((acc, bias, shift, relu), model(acc, bias, shift, relu, config.act_bits)))
        else:
            pipeline.append(None)
        dut.i__valid.value = int(issue)
        await edge
        if len(pipeline) > Requantizer.LATENCY:
            want = pipeline.popleft()
            valid = int(dut.o__valid.value)
            assert valid == (want is not None), f"o.valid {valid} at cycle {cycle} (seed {seed})"
            if want is not None:
                got = dut.o__payload.value.to_signed()
                assert got == want[1], \
                    f"acc, bias, shift, relu = {want[0]}: got {got}, expected {want[1]} (seed {seed})"
                checked += 1
    dut._log.info("checked %d requantisations", checked)
