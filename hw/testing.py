"""Helpers for testing the components in Amaranth's Python simulator (async testbenches).

Set ``EIE_VCD=dir`` to write a waveform per simulation into ``dir``.
"""

from __future__ import annotations

import os
from pathlib import Path

from amaranth.sim import Simulator

__all__ = ["simulate", "stream_put", "stream_get", "run_cycles"]

CLOCK_PERIOD = 1e-6


def simulate(dut, *testbenches, monitors=(), clock=True, name="sim"):
    """Run ``testbenches`` (async functions of ``ctx``) against ``dut`` until they all return.

    ``monitors`` are background testbenches (checkers that run forever).
    """
    sim = Simulator(dut)
    if clock:
        sim.add_clock(CLOCK_PERIOD)
    for bench in testbenches:
        sim.add_testbench(bench)
    for monitor in monitors:
        sim.add_testbench(monitor, background=True)
    vcd_dir = os.environ.get("EIE_VCD")
    if vcd_dir:
        Path(vcd_dir).mkdir(parents=True, exist_ok=True)
        with sim.write_vcd(str(Path(vcd_dir) / f"{name}.vcd")):
            sim.run()
    else:
        sim.run()


async def stream_put(ctx, stream, payload):
    """Offer ``payload`` on ``stream`` (driven by the testbench) until it is accepted."""
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream):
    """Accept one payload from ``stream`` (driven by the DUT)."""
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


def run_cycles(dut, stimulus, observe, n_cycles, *, defaults=None, name="cycles"):
    """Drive ``dut`` cycle by cycle and record signals.

    ``stimulus[t]`` is a list of ``(signal, value)`` pairs applied in cycle ``t`` on top of
    ``defaults`` (pairs applied every cycle; signals are not hashable, hence no dicts).
    Returns, per cycle, the list of ``observe`` values in that cycle (after the inputs of the
    cycle have settled, before the clock edge that ends it).
    """
    trace = []
    defaults = defaults or []

    async def bench(ctx):
        for cycle in range(n_cycles):
            for sig, value in defaults:
                ctx.set(sig, value)
            for sig, value in (stimulus[cycle] if cycle < len(stimulus) else []):
                ctx.set(sig, value)
            trace.append([ctx.get(sig) for sig in observe])
            await ctx.tick()

    simulate(dut, bench, name=name)
    return trace
