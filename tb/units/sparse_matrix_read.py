"""Sparse-matrix read unit: the ``(v, z, first, act)`` entries of column jobs in order, across word
boundaries, empty columns dropped, with idle job input; offered back to back, columns of two or
more entries leave with no bubble between them."""

import random

from eie.tb.units.streams import StreamSource, pattern_of


def make(*, config):
    from eie.hw.sparse_matrix_read import SparseMatrixReadUnit
    from eie.spec.config import EIEConfig
    return SparseMatrixReadUnit(config=EIEConfig.from_dict(config))


def stimulus(seed, *, config, jobs=120, packed=False, **_):
    """``{"words": [...], "jobs": [[start, end, a], ...], "idle": pattern}``; ``packed``: columns of
    2..9 entries offered without pauses, else a third of the columns empty and 30 % idle cycles."""
    rng = random.Random(seed)
    entries = config["mat_depth"] * config["entries_per_word"]
    lo, hi = -(1 << (config["act_bits"] - 1)), (1 << (config["act_bits"] - 1)) - 1
    words = [rng.randrange(1 << (config["entries_per_word"] * (config["weight_bits"] + config["index_bits"])))
             for _ in range(config["mat_depth"])]

    def column(shortest, longest):
        start = rng.randrange(entries - longest)
        return [start, start + rng.randint(shortest, longest), rng.randint(lo, hi)]

    if packed:
        return {"words": words, "jobs": [column(2, 9) for _ in range(jobs // 2)], "idle": ["never"]}
    mixed = [column(0, 12) if rng.random() < 0.66 else [(s := rng.randrange(entries)), s, 0] for _ in range(jobs)]
    return {"words": words, "jobs": mixed, "idle": ["random", 0.3]}


def reference(stimulus, *, config, **_):
    """The entries of every job in order."""
    per_word, weight_bits = config["entries_per_word"], config["weight_bits"]
    b = weight_bits + config["index_bits"]
    out = []
    for start, end, act in stimulus["jobs"]:
        for e in range(start, end):
            entry = (stimulus["words"][e // per_word] >> ((e % per_word) * b)) & ((1 << b) - 1)
            out.append([entry & ((1 << weight_bits) - 1), entry >> weight_bits, int(e == start), act])
    return out


async def drive(bench, stimulus, **_):
    """``{"entries": [[v, z, first, act], ...], "cycles": [cycle of each entry]}``."""
    for addr, word in enumerate(stimulus["words"]):
        bench.set("w__en", 1)
        bench.set("w__addr", addr)
        bench.set("w__data", word)
        await bench.step()
    bench.set("w__en", 0)
    source = StreamSource(bench, "job", [{"start": s, "end": e, "value": a} for s, e, a in stimulus["jobs"]],
                          pattern_of(stimulus["idle"], seed=1))
    want = sum(e - s for s, e, _ in stimulus["jobs"])
    out, cycles, cycle = [], [], 0
    while len(out) < want or not source.done:
        source.drive()
        ready, valid, payload = await bench.step("job__ready", "o__valid", "o__payload")
        source.update(ready)
        if valid:
            out.append([payload["v"], payload["z"], payload["first"], payload["act"]])
            cycles.append(cycle)
        cycle += 1
        if cycle > 50 * (len(stimulus["jobs"]) + 10) + 10 * want:
            break  # entries stopped coming: the comparison shows which
    return {"entries": out, "cycles": cycles}
