"""Activation queue: pushes and pops under random phases (bursts that fill it, drains, random
back-pressure) against a cycle model of a FIFO.

The model: an activation is accepted when the queue holds fewer than ``depth``; it can leave
``latency`` cycles after it was written (1 for the register FIFOs of depth <= 2, 2 for the
block-RAM FIFOs) and one cycle after the one before it left; ``level`` counts what is held.
"""

import random
from collections import deque

CLOCKED = True
PHASES = [(0.9, 0.1), (0.1, 0.9), (0.5, 0.5), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0), (0.7, 0.4)]


def make(*, depth, act_bits=8, index_width=6):
    from eie.hw.activation_queue import ActivationQueue
    return ActivationQueue(depth=depth, act_bits=act_bits, index_width=index_width)


def stimulus(seed, *, cycles=600, act_bits=8, index_width=6, **_):
    """Per cycle ``[push, pop, value, index]`` (``pop`` is ``o.ready``)."""
    rng = random.Random(seed)
    out = []
    for cycle in range(cycles):
        p_push, p_pop = PHASES[(cycle // 32) % len(PHASES)]
        out.append([int(rng.random() < p_push), int(rng.random() < p_pop),
                    rng.randint(-(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1), rng.randrange(1 << index_width)])
    return out


def reference(stimulus, *, depth, **_):
    latency = 1 if depth <= 2 else 2
    held = deque()  # (value, index, cycle it may leave)
    levels, ready, popped = [], [], []
    for cycle, (push, pop, value, index) in enumerate(stimulus):
        levels.append(len(held))
        accept = len(held) < depth
        ready.append(int(accept))
        if pop and held and held[0][2] <= cycle:
            v, i, _ = held.popleft()
            popped.append([cycle, v, i])
            if held:
                held[0] = (held[0][0], held[0][1], max(held[0][2], cycle + 1))
        if push and accept:
            held.append((value, index, cycle + latency))
    return {"levels": levels, "ready": ready, "popped": popped}


async def drive(bench, stimulus, **_):
    levels, ready, popped = [], [], []
    for cycle, (push, pop, value, index) in enumerate(stimulus):
        bench.set("i__valid", push)
        bench.set("i__payload", {"value": value, "index": index})
        bench.set("o__ready", pop)
        level, i_ready, o_valid, o_payload = await bench.step("level", "i__ready", "o__valid", "o__payload")
        levels.append(level)
        ready.append(i_ready)
        if o_valid and pop:
            popped.append([cycle, o_payload["value"], o_payload["index"]])
    return {"levels": levels, "ready": ready, "popped": popped}
