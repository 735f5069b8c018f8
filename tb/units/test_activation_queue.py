"""Activation queue: order, level and back-pressure against a deque, under random push/pop
phases (bursts that fill it, drains, and random back-pressure), plus its documented latency and
throughput. Parameters: ``depth``, ``act_bits``, ``index_width``, ``cycles``, ``seed``.
"""

import random
from collections import deque

import cocotb
from cocotb.triggers import RisingEdge

from eie.tb.driver import start_clock_and_reset
from eie.tb.units import Packer, unit_params


async def _idle_until_empty(dut, edge):
    dut.i__valid.value = 0
    dut.o__ready.value = 1
    for _ in range(20):
        await edge
        if not dut.o__valid.value and int(dut.level.value) == 0:
            return
    raise AssertionError("the queue did not drain")


@cocotb.test()
async def order_level_and_backpressure(dut):
    from eie.hw.layouts import activation_layout

    p = unit_params()
    depth, seed = p["depth"], p.get("seed", 0)
    rng = random.Random(seed)
    packer = Packer(activation_layout(p["act_bits"], p["index_width"]))
    await start_clock_and_reset(dut)
    edge = RisingEdge(dut.clk)
    held = deque()
    full_seen = moved = 0
    phases = [(0.9, 0.1), (0.1, 0.9), (0.5, 0.5), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0), (0.7, 0.4)]
    for cycle in range(p.get("cycles", 3000)):
        p_push, p_pop = phases[(cycle // 64) % len(phases)]
        push, pop = int(rng.random() < p_push), int(rng.random() < p_pop)
        word = packer.pack(value=rng.randint(-(1 << (p["act_bits"] - 1)), (1 << (p["act_bits"] - 1)) - 1),
                           index=rng.randrange(1 << p["index_width"]))
        dut.i__valid.value = push
        dut.i__payload.value = word
        dut.o__ready.value = pop
        await edge
        level, i_ready, o_valid = int(dut.level.value), int(dut.i__ready.value), int(dut.o__valid.value)
        where = f"cycle {cycle}, seed {seed}"
        assert level == len(held), f"level {level}, but {len(held)} activations are held ({where})"
        assert i_ready == (level < depth), f"i.ready {i_ready} with level {level}/{depth} ({where})"
        full_seen += level == depth
        if o_valid and pop:
            got = int(dut.o__payload.value)
            assert held, f"o offered an activation that was never pushed ({where})"
            want = held.popleft()
            assert got == want, f"popped {packer.unpack(got)}, expected {packer.unpack(want)} ({where})"
            moved += 1
        if push and i_ready:
            held.append(word)
    assert full_seen, "the test never filled the queue: back-pressure was not exercised"
    dut._log.info("depth %d: %d activations through, full in %d cycles", depth, moved, full_seen)


@cocotb.test()
async def latency_and_throughput(dut):
    p = unit_params()
    depth = p["depth"]
    await start_clock_and_reset(dut)
    edge = RisingEdge(dut.clk)
    await _idle_until_empty(dut, edge)
    # Latency: one activation into the empty queue.
    dut.i__valid.value = 1
    dut.i__payload.value = 5
    await edge
    dut.i__valid.value = 0
    latency = 0
    while True:
        await edge
        latency += 1
        if dut.o__valid.value:
            break
        assert latency < 10, "the activation never came out"
    # Depths up to 2 are register FIFOs (one cycle), deeper ones block-RAM FIFOs (two).
    assert latency == (1 if depth <= 2 else 2), f"latency {latency} cycles at depth {depth}"
    await _idle_until_empty(dut, edge)
    # Throughput: push and pop every cycle for 64 cycles.
    dut.i__valid.value = 1
    dut.o__ready.value = 1
    moved = 0
    for _ in range(64):
        await edge
        moved += int(dut.o__valid.value)
    dut.i__valid.value = 0
    expect = 64 - latency if depth > 1 else 32
    assert abs(moved - expect) <= 1, f"{moved} activations in 64 cycles at depth {depth}, expected ~{expect}"
