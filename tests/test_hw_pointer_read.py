# amaranth: UnusedElaboratable=no
"""The pointer read unit: P[base+j] and P[base+j+1] from the even/odd banks in one cycle."""

import random

import pytest

from eie.hw.pointer_read import PointerReadUnit
from eie.hw.testing import run_cycles
from eie.spec.config import EIEConfig
from eie.tb.units import pointer_read, run_unit

CONFIG = EIEConfig(n_pe=2, ptr_depth=16, ptr_bits=8, mat_depth=16, entries_per_word=8,
                   max_rows_per_pe=8, act_bits=8, acc_bits=20, max_shift=8)


UNIT_CONFIG = EIEConfig(n_pe=4, ptr_depth=64, mat_depth=64, max_rows_per_pe=16, bias_depth=32, max_layers=4)


def pointers(seed):
    rng = random.Random(seed)
    p, out = 0, []
    for _ in range(CONFIG.ptr_depth):
        out.append(p)
        p += rng.randint(0, 9)
    return out


def test_even_odd_lookup_with_back_pressure(simulator):
    """Every column at base 0 (both parities), random columns at random bases, idle inputs and
    output back-pressure: the jobs the unit puts out are the pointer pairs, in order."""
    params = {"config": UNIT_CONFIG.to_dict()}
    stimulus = pointer_read.stimulus(11, **params)
    assert run_unit(simulator, pointer_read, params, stimulus) == pointer_read.reference(stimulus), "seed 11"


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
