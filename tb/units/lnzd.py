"""Leading non-zero detector (combinational): the lowest-numbered valid input wins, the grant is
one-hot and only while ``o.ready``, ``i[k].ready`` equals ``grant[k]``, ``o`` carries the winner."""

import random

CLOCKED = False


def make(*, n_inputs, act_bits=8, index_width=7):
    from eie.hw.lnzd import LeadingNonZeroDetector
    return LeadingNonZeroDetector(n_inputs=n_inputs, act_bits=act_bits, index_width=index_width)


def stimulus(seed, *, n_inputs, trials=60, act_bits=8, index_width=7, **_):
    """``[valids, o_ready, payloads]`` per trial: none, all, each one alone, each suffix, random."""
    rng = random.Random(seed)
    n = n_inputs
    patterns = [[0] * n, [1] * n] + [[int(j == k) for j in range(n)] for k in range(n)] + \
        [[int(j >= k) for j in range(n)] for k in range(n)] + \
        [[int(rng.random() < d) for _ in range(n)] for d in (0.05, 0.3, 0.8) for _ in range(trials // 3)]
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    return [[valids, ready, [[rng.randint(lo, hi), rng.randrange(1 << index_width)] for _ in range(n)]]
            for valids in patterns for ready in (0, 1)]


def reference(stimulus, **_):
    out = []
    for valids, ready, payloads in stimulus:
        winner = next((k for k, v in enumerate(valids) if v), None)
        grant = [int(ready and k == winner) for k in range(len(valids))]
        out.append([int(winner is not None), grant, grant, None if winner is None else payloads[winner]])
    return out


async def drive(bench, stimulus, *, n_inputs, **_):
    out = []
    names = [f"i__{k}__ready" for k in range(n_inputs)]
    for valids, ready, payloads in stimulus:
        for k in range(n_inputs):
            bench.set(f"i__{k}__valid", valids[k])
            bench.set(f"i__{k}__payload", {"value": payloads[k][0], "index": payloads[k][1]})
        bench.set("o__ready", ready)
        o_valid, grant, payload, *readies = await bench.settle("o__valid", "grant", "o__payload", *names)
        out.append([o_valid, [(grant >> k) & 1 for k in range(n_inputs)], readies,
                    [payload["value"], payload["index"]] if o_valid else None])
    return out
