"""Leading non-zero detector: the lowest-numbered valid input wins, grants follow ``o.ready``.

Purely combinational: inputs are set, the design settles (1 ns), outputs are compared with a
naive model. Parameters (``EIE_UNIT_PARAMS``): ``n_inputs``, ``act_bits``, ``index_width``,
``trials``, ``seed``.
"""

import random

import cocotb
from cocotb.triggers import Timer

from eie.tb.units import Packer, unit_params


def model(valids, ready):
    """``(o_valid, winner, grant)`` of the specification."""
    winner = next((k for k, v in enumerate(valids) if v), None)
    grant = (1 << winner) if winner is not None and ready else 0
    return winner is not None, winner, grant


def patterns(rng, n, trials):
    yield [0] * n
    yield [1] * n
    for k in range(n):
        yield [int(j == k) for j in range(n)]
        yield [int(j >= k) for j in range(n)]
    for _ in range(trials):
        density = rng.choice([0.05, 0.3, 0.7])
        yield [int(rng.random() < density) for _ in range(n)]


@cocotb.test()
async def lowest_valid_wins(dut):
    from eie.hw.layouts import activation_layout

    p = unit_params()
    n, seed = p["n_inputs"], p.get("seed", 0)
    rng = random.Random(seed)
    packer = Packer(activation_layout(p["act_bits"], p["index_width"]))
    valid = [getattr(dut, f"i__{k}__valid") for k in range(n)]
    ready = [getattr(dut, f"i__{k}__ready") for k in range(n)]
    payload = [getattr(dut, f"i__{k}__payload") for k in range(n)]
    lo, hi = -(1 << (p["act_bits"] - 1)), (1 << (p["act_bits"] - 1)) - 1
    checked = 0
    for valids in patterns(rng, n, p.get("trials", 200)):
        words = [packer.pack(value=rng.randint(lo, hi), index=rng.randrange(1 << p["index_width"]))
                 for _ in range(n)]
        o_ready = rng.randint(0, 1)
        for k in range(n):
            valid[k].value = valids[k]
            payload[k].value = words[k]
        dut.o__ready.value = o_ready
        await Timer(1, "ns")
        o_valid, winner, grant = model(valids, o_ready)
        what = f"valids {''.join(map(str, valids))}, o.ready {o_ready} (seed {seed})"
        assert int(dut.o__valid.value) == o_valid, f"o.valid wrong for {what}"
        assert int(dut.grant.value) == grant, \
            f"grant {int(dut.grant.value):#x}, expected {grant:#x} for {what}"
        assert [int(r.value) for r in ready] == [(grant >> k) & 1 for k in range(n)], \
            f"i[k].ready differ from grant for {what}"
        if o_valid:
            assert int(dut.o__payload.value) == words[winner], \
                f"o.payload is not input {winner}'s for {what}"
        checked += 1
    dut._log.info("checked %d patterns over %d inputs", checked, n)
