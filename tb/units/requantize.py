"""Requantiser: bias, round half up, shift, saturate and ReLU (``docs/numerics.md``) at the
extremes of every operand (accumulator limits, saturation thresholds and rounding ties at each
shift), one per cycle with idle gaps, ``LATENCY`` cycles from input to output."""

import random

LATENCY = 2  # eie.hw.requantize.Requantizer.LATENCY, checked by the tests


def make(*, config):
    from eie.hw.requantize import Requantizer
    from eie.spec.config import EIEConfig
    return Requantizer(config=EIEConfig.from_dict(config))


def requantize(acc, bias, shift, relu, act_bits):
    """``docs/numerics.md``, "One layer", for one row, in plain Python integers."""
    t = acc + bias
    r = (t + (1 << (shift - 1))) >> shift if shift > 0 else t
    y = max(-(1 << (act_bits - 1)), min((1 << (act_bits - 1)) - 1, r))
    return max(y, 0) if relu else y


def stimulus(seed, *, config, count=800, p_idle=0.15, **_):
    """Per cycle ``[acc, bias, shift, relu]`` or ``None`` (idle)."""
    rng = random.Random(seed)
    acc_bits, act_bits, max_shift = config["acc_bits"], config["act_bits"], config["max_shift"]
    amin, amax = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    act_min, act_max = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    special = [amin, amax, 0, -1, 1, amin + 1, amax - 1]
    out = []
    for _ in range(count):
        if rng.random() < p_idle:
            out.append(None)
            continue
        shift = rng.choice([0, 1, 2, act_bits, max_shift, max_shift - 1, rng.randint(0, max_shift)])
        half = 1 << shift
        edge = [act_max * half + half // 2 - 1, act_max * half + half // 2, act_min * half - half // 2 - 1,
                act_min * half - half // 2, half // 2, -(half // 2), half // 2 - 1, -(half // 2) - 1]
        pick = rng.random()
        if pick < 0.3:
            acc, bias = rng.choice(special), rng.choice(special)
        elif pick < 0.6:
            acc, bias = max(amin, min(amax, rng.choice(edge))), rng.choice([0, 0, 1, -1])
        else:
            acc, bias = rng.randint(amin, amax), rng.randint(amin, amax) >> rng.randint(0, 40)
        out.append([acc, bias, shift, rng.randint(0, 1)])
    return out + [None] * (LATENCY + 1)


def reference(stimulus, *, config, **_):
    """``[[cycle, y], ...]``: each input's result ``LATENCY`` cycles later."""
    return [[cycle + LATENCY, requantize(*op, config["act_bits"])] for cycle, op in enumerate(stimulus)
            if op is not None]


async def drive(bench, stimulus, **_):
    out = []
    for cycle, op in enumerate(stimulus):
        bench.set("i__valid", int(op is not None))
        if op is not None:
            acc, bias, shift, relu = op
            bench.set("i__payload", {"acc": acc, "bias": bias})
            bench.set("shift", shift)
            bench.set("relu", relu)
        valid, y = await bench.step("o__valid", "o__payload")
        if valid:
            out.append([cycle, y])
    return out
