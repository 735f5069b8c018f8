"""Sparse-matrix read unit: the ``(v, z, first, act)`` entries of column jobs in order, across word
boundaries, padding entries (``v == 0``) folded into the next entry's ``z``, empty columns dropped,
with idle job input; offered back to back, columns of two or more real entries leave with no bubble
between them."""

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
        # No padding entries: every entry costs a cycle, so the stream has no bubble.
        b, w = config["weight_bits"] + config["index_bits"], config["weight_bits"]
        for n, word in enumerate(words):
            for lane in range(config["entries_per_word"]):
                if not (word >> (lane * b)) & ((1 << w) - 1):
                    word |= 1 << (lane * b)
            words[n] = word
        return {"words": words, "jobs": [column(2, 9) for _ in range(jobs // 2)], "idle": ["never"]}
    mixed = [column(0, 12) if rng.random() < 0.66 else [(s := rng.randrange(entries)), s, 0] for _ in range(jobs)]
    return {"words": words, "jobs": mixed, "idle": ["random", 0.3]}


def z_width(config):
    """Width of ``z`` on the unit's output: a row address, or ``index_bits`` if wider."""
    return max(config["index_bits"], max(1, (config["max_rows_per_pe"] - 1).bit_length()))


def reference(stimulus, *, config, **_):
    """The real entries (``v != 0``) of every job in order; each one's ``z`` is its distance from
    the previous real entry of its column, i.e. plus ``z + 1`` of every padding entry between them
    (modulo ``2**z_width``); ``first`` marks a column's first real entry. Trailing paddings vanish."""
    per_word, weight_bits = config["entries_per_word"], config["weight_bits"]
    b = weight_bits + config["index_bits"]
    mask = (1 << z_width(config)) - 1
    out = []
    for start, end, act in stimulus["jobs"]:
        skipped, first = 0, 1
        for e in range(start, end):
            entry = (stimulus["words"][e // per_word] >> ((e % per_word) * b)) & ((1 << b) - 1)
            v, z = entry & ((1 << weight_bits) - 1), entry >> weight_bits
            if v == 0:
                skipped = (skipped + z + 1) & mask
                continue
            out.append([v, (skipped + z) & mask, first, act])
            skipped, first = 0, 0
    return out


def folder_cycles(v, jobs, *, entries_per_word):
    """Cycles the unit's output takes for ``jobs`` ``[(start, end), ...]`` offered back to back,
    from its first entry to its last, given the weight index ``v[e]`` of every stored entry: a
    column is read in units of two entries of one word (one at a word's last lane or the column's
    last entry); a unit of two real entries costs two cycles, any other unit one (nothing leaves
    for a unit of paddings). Leading and trailing padding-only units of the whole stream are not
    counted."""
    costs = []
    for start, end in jobs:
        e = start
        while e < end:
            pair = e + 1 < end and (e % entries_per_word) != entries_per_word - 1
            real = [v[e] != 0] + ([v[e + 1] != 0] if pair else [])
            costs.append((2 if all(real) and pair else 1, any(real)))
            e += 2 if pair else 1
    while costs and not costs[-1][1]:
        costs.pop()
    while costs and not costs[0][1]:
        costs.pop(0)
    return sum(cost for cost, _ in costs)


async def drive(bench, stimulus, *, config, **_):
    """``{"entries": [[v, z, first, act], ...], "cycles": [cycle of each entry]}``."""
    await bench.write_memory("w", stimulus["words"])
    bench.set("hold", 0)
    source = StreamSource(bench, "job", [{"start": s, "end": e, "value": a} for s, e, a in stimulus["jobs"]],
                          pattern_of(stimulus["idle"], seed=1))
    want = len(reference(stimulus, config=config))
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
