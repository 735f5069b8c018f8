"""Arithmetic unit: read-after-write hazards on the accumulators at distance 1, 2, 3 and more,
clears interleaved with accumulation of the same rows, idle gaps, and the read-out through
``clear``; every value against a sequential Python model. Parameters: ``config``, ``ops``, ``seed``.
"""

import random
from collections import deque

import cocotb
from cocotb.triggers import RisingEdge

from eie.tb.driver import start_clock_and_reset
from eie.tb.units import Packer, unit_params


def hazard_rows(rng, rows, n):
    """Row sequences that reuse a row 1, 2 or 3 entries later, or at random."""
    out = []
    while len(out) < n:
        kind = rng.choice(["same", "pair", "triple", "random"])
        a, b, c = rng.randrange(rows), rng.randrange(rows), rng.randrange(rows)
        out += {"same": [a] * 5, "pair": [a, b] * 3, "triple": [a, b, c] * 3,
                "random": [rng.randrange(rows) for _ in range(6)]}[kind]
    return out[:n]


@cocotb.test()
async def hazards_and_clears(dut):
    from amaranth.hdl import signed, unsigned
    from amaranth.lib import data

    from eie.hw.arithmetic_unit import ArithmeticUnit
    from eie.hw.layouts import Widths, entry_layout
    from eie.spec.config import EIEConfig

    p = unit_params()
    config = EIEConfig.from_dict(p["config"])
    seed = p.get("seed", 0)
    rng = random.Random(seed)
    rows = config.max_rows_per_pe
    entry = Packer(entry_layout(config))
    acc_out = Packer(data.StructLayout({"row": unsigned(Widths(config).row),
                                        "value": signed(config.acc_bits)}))
    if rows > 1 << config.index_bits:
        raise RuntimeError("choose max_rows_per_pe <= 2**index_bits: every row must be reachable "
                           "as a column start")
    codebook = [0] + [rng.randint(config.act_min, config.act_max) for _ in range(config.codebook_size - 1)]
    codebook[1] = config.act_min
    cb_word = 0
    for k, c in enumerate(codebook):
        cb_word |= (c & ((1 << config.act_bits) - 1)) << (k * config.act_bits)
    await start_clock_and_reset(dut)
    edge = RisingEdge(dut.clk)
    dut.codebook.value = cb_word

    model = [0] * rows
    expected_reads = deque()
    prev = -1
    ops = []
    for r in hazard_rows(rng, rows, p.get("ops", 3000)):
        if rng.random() < 0.12:
            ops.append(("clear", r))
        else:
            ops.append(("entry", r))
        if rng.random() < 0.1:
            ops.append(("idle", None))
    ops += [("clear", r) for r in range(rows)] + [("idle", None)] * (ArithmeticUnit.CLEAR_LATENCY + 2)

    checked = 0
    for n, (kind, r) in enumerate(ops):
        dut.i__valid.value = int(kind == "entry")
        dut.clear__valid.value = int(kind == "clear")
        if kind == "entry":
            # Row r relative to the previous entry (address accumulation) or as a column start.
            first = prev < 0 or r <= prev or rng.random() < 0.3
            z = r if first else r - prev - 1
            v = rng.randrange(config.codebook_size)
            a = rng.choice([config.act_min, config.act_max, rng.randint(config.act_min, config.act_max)])
            dut.i__payload.value = entry.pack(v=v, z=z, first=int(first), act=a)
            model[r] += codebook[v] * a
            prev = r
        elif kind == "clear":
            dut.clear__payload.value = r
            expected_reads.append((r, model[r]))
            model[r] = 0
        await edge
        if dut.acc__valid.value:
            got = acc_out.unpack(dut.acc__payload.value)
            assert expected_reads, f"unexpected accumulator read-out {got} at op {n} (seed {seed})"
            row, value = expected_reads.popleft()
            assert (got["row"], got["value"]) == (row, value), \
                f"read-out at op {n}: got row {got['row']} = {got['value']}, expected row {row} = {value} (seed {seed})"
            checked += 1
    assert not expected_reads, f"{len(expected_reads)} clears never produced a read-out"
    dut._log.info("checked %d read-outs over %d operations", checked, len(ops))
