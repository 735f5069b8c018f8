"""Arithmetic unit: read-after-write hazards on the accumulators at distance 1, 2, 3 and more,
clears interleaved with accumulation of the same rows, idle gaps, and the read-out through
``clear``, against a sequential model: each clear reads out ``CLEAR_LATENCY`` cycles later the
sum of ``codebook[v]·act`` of the entries before it and zeroes the row."""

import random

CLEAR_LATENCY = 4  # eie.hw.arithmetic_unit.ArithmeticUnit.CLEAR_LATENCY, checked by the tests


def make(*, config):
    from eie.hw.arithmetic_unit import ArithmeticUnit
    from eie.spec.config import EIEConfig
    return ArithmeticUnit(config=EIEConfig.from_dict(config))


def _hazard_rows(rng, rows, n):
    """Row sequences that reuse a row 1, 2 or 3 entries later, or at random."""
    out = []
    while len(out) < n:
        a, b, c = rng.randrange(rows), rng.randrange(rows), rng.randrange(rows)
        out += {"same": [a] * 5, "pair": [a, b] * 3, "triple": [a, b, c] * 3,
                "random": [rng.randrange(rows) for _ in range(6)]}[rng.choice(["same", "pair", "triple", "random"])]
    return out[:n]


def stimulus(seed, *, config, ops=600, p_idle=0.1, p_clear=0.12, **_):
    """``{"codebook": [...], "ops": [["entry", v, z, first, act] | ["clear", row] | ["idle"], ...]}``,
    ending with a clear of every row."""
    rng = random.Random(seed)
    rows, act_bits = config["max_rows_per_pe"], config["act_bits"]
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    size = 1 << config["weight_bits"]
    codebook = [0, lo] + [rng.randint(lo, hi) for _ in range(size - 2)]
    out, prev = [], -1
    for r in _hazard_rows(rng, rows, ops):
        if rng.random() < p_clear:
            out.append(["clear", r])
        else:
            first = prev < 0 or r <= prev or rng.random() < 0.3  # a column start, or relative to prev
            out.append(["entry", rng.randrange(size), r if first else r - prev - 1, int(first),
                        rng.choice([lo, hi, rng.randint(lo, hi)])])
            prev = r
        if rng.random() < p_idle:
            out.append(["idle"])
    out += [["clear", r] for r in range(rows)] + [["idle"]] * (CLEAR_LATENCY + 2)
    return {"codebook": codebook, "ops": out}


def reference(stimulus, *, config, **_):
    """``[[cycle, row, value], ...]`` of the read-outs."""
    acc = [0] * config["max_rows_per_pe"]
    out, prev = [], -1
    for cycle, (kind, *args) in enumerate(stimulus["ops"]):
        if kind == "entry":
            v, z, first, act = args
            row = z if first else prev + z + 1
            acc[row] += stimulus["codebook"][v] * act
            prev = row
        elif kind == "clear":
            out.append([cycle + CLEAR_LATENCY, args[0], acc[args[0]]])
            acc[args[0]] = 0
    return out


async def drive(bench, stimulus, **_):
    bench.set("codebook", stimulus["codebook"])
    out = []
    for cycle, (kind, *args) in enumerate(stimulus["ops"]):
        bench.set("i__valid", int(kind == "entry"))
        bench.set("clear__valid", int(kind == "clear"))
        if kind == "entry":
            v, z, first, act = args
            bench.set("i__payload", {"v": v, "z": z, "first": first, "act": act})
        elif kind == "clear":
            bench.set("clear__payload", args[0])
        valid, payload = await bench.step("acc__valid", "acc__payload")
        if valid:
            out.append([cycle, payload["row"], payload["value"]])
    return out
