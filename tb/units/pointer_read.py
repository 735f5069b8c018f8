"""Pointer read unit: ``(P[base+j], P[base+j+1], a_j)`` for column requests at several bases (both
parities, every base), pointers written through ``w``, with idle inputs and output back-pressure;
without pauses one job per cycle, one cycle after its request."""

import random

from eie.tb.units.streams import StreamSink, StreamSource, pattern_of


def make(*, config):
    from eie.hw.pointer_read import PointerReadUnit
    from eie.spec.config import EIEConfig
    return PointerReadUnit(config=EIEConfig.from_dict(config))


def stimulus(seed, *, config, requests=120, pauses=True, **_):
    """``{"ptr": [...], "batches": [{"base", "requests": [[j, a], ...], "idle", "stall"}]}``."""
    rng = random.Random(seed)
    depth, bits = config["ptr_depth"], config["ptr_bits"]
    lo, hi = -(1 << (config["act_bits"] - 1)), (1 << (config["act_bits"] - 1)) - 1
    ptr, x = [], 0
    for _ in range(depth):
        ptr.append(x)
        x = min(x + rng.choice([0, 0, 1, 3, 17]), (1 << bits) - 1)  # repeats: empty columns
    batches = []
    for b in range(6):
        base = 0 if b == 0 else rng.randrange(depth - 1)
        span = depth - 1 - base
        js = list(range(span)) if b == 0 else [rng.randrange(span) for _ in range(requests // 6)]
        idle, stall = (["random", rng.choice([0.0, 0.3])], ["random", rng.choice([0.0, 0.3, 0.7])]) if pauses \
            else (["never"], ["never"])
        batches.append({"base": base, "requests": [[j, rng.randint(lo, hi)] for j in js], "idle": idle,
                        "stall": stall})
    return {"ptr": ptr, "batches": batches}


def reference(stimulus, **_):
    ptr = stimulus["ptr"]
    return [[[ptr[b["base"] + j], ptr[b["base"] + j + 1], a] for j, a in b["requests"]]
            for b in stimulus["batches"]]


async def drive(bench, stimulus, **_):
    await bench.write_memory("w", stimulus["ptr"])
    out = []
    for k, batch in enumerate(stimulus["batches"]):
        bench.set("ptr_base", batch["base"])
        source = StreamSource(bench, "i", [{"value": a, "index": j} for j, a in batch["requests"]],
                              pattern_of(batch["idle"], seed=2 * k))
        sink = StreamSink(bench, "o", pattern_of(batch["stall"], seed=2 * k + 1))
        jobs = []
        while len(jobs) < len(batch["requests"]):
            source.drive()
            sink.drive()
            i_ready, o_valid, o_payload = await bench.step("i__ready", "o__valid", "o__payload")
            source.update(i_ready)
            if sink.taken(o_valid):
                jobs.append([o_payload["start"], o_payload["end"], o_payload["value"]])
        out.append(jobs)
    return out
