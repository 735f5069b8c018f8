# amaranth: UnusedElaboratable=no
"""The requantiser against a model written straight from docs/numerics.md."""

import random

import pytest

from eie.hw.requantize import Requantizer
from eie.hw.testing import run_cycles
from eie.spec.config import EIEConfig


def requantize_model(acc, bias, s, relu, act_bits):
    """docs/numerics.md, "One layer", for one row."""
    t = acc + bias
    r = (t + 2 ** (s - 1)) >> s if s > 0 else t
    y = min(max(r, -2 ** (act_bits - 1)), 2 ** (act_bits - 1) - 1)
    return max(y, 0) if relu else y


def vectors(config, seed):
    rng = random.Random(seed)
    c = config
    lo, hi = -2 ** (c.acc_bits - 1), 2 ** (c.acc_bits - 1) - 1
    out = []
    for s in (0, 1, 2, c.act_bits, c.max_shift):
        for relu in (0, 1):
            # Saturation both ways, zero, and the accumulator extremes.
            for acc in (lo, hi, 0, -1, 1, c.act_max << s, (c.act_max + 1) << s,
                        c.act_min << s, (c.act_min - 1) << s):
                out.append((max(lo, min(hi, acc)), 0, s, relu))
            out += [(hi, hi, s, relu), (lo, lo, s, relu), (hi, lo, s, relu)]
            if s > 0:
                # Rounding ties: +-(k + 1/2) round towards +infinity; one below / above the tie.
                for k in (0, 1, 2, 5, -1, -2, -3, -6):
                    tie = k * 2 ** s + 2 ** (s - 1)
                    for d in (-1, 0, 1):
                        a = max(lo, min(hi, tie + d - rng.randint(-1000, 1000)))
                        if lo <= tie + d - a <= hi:
                            out.append((a, tie + d - a, s, relu))
            for _ in range(15):
                out.append((rng.randint(lo, hi), rng.randint(lo, hi), s, relu))
    return out


@pytest.mark.parametrize("config", [
    EIEConfig(),
    EIEConfig(act_bits=8, acc_bits=16, max_shift=15),
], ids=["a16c40", "a8c16"])
def test_matches_numerics(config):
    seed = config.act_bits
    dut = Requantizer(config=config)
    vecs = vectors(config, seed)
    stimulus = [[(dut.i.valid, 1), (dut.i.payload, {"acc": a, "bias": b}), (dut.shift, s),
                 (dut.relu, r)] for a, b, s, r in vecs]
    trace = run_cycles(dut, stimulus, [dut.o.valid, dut.o.payload],
                       len(vecs) + Requantizer.LATENCY + 1, defaults=[(dut.i.valid, 0)],
                       name="requantize")
    got = [y for valid, y in trace if valid]
    assert [t for t, (valid, _) in enumerate(trace) if valid][0] == Requantizer.LATENCY
    want = [requantize_model(a, b, s, r, config.act_bits) for a, b, s, r in vecs]
    for n, (g, x) in enumerate(zip(got, want, strict=True)):
        assert g == x, f"seed {seed}: vector {vecs[n]} gave {g}, numerics.md says {x}"


def test_validation():
    with pytest.raises(TypeError, match=r"^config must be an EIEConfig, not 4$"):
        Requantizer(config=4)
