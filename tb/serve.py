"""cocotb test that serves requests: the accelerator as a function, ``rtl(images, x)``.

:class:`eie.tb.rtl_server.RTLServer` starts this test in a Verilator simulation and sends it
requests over a Unix socket (its path is the plus-argument ``+eie_serve=PATH``), one JSON object
per line; the simulation keeps running between them, so one build and one process serve
thousands of cases. A request loads images (``cfg`` payloads) into the running accelerator,
without a reset, and runs input vectors under the request's back-pressure and idle knobs::

    {"op": "run", "writes": [cfg payload, ...], "inputs": [[a_0, ...], ...], "n_out": N,
     "p_ready": 1.0, "p_idle": 0.0, "seed": 0, "max_cycles": M}
    -> {"outputs": [[...], ...], "cycles": [...], "load_cycles": C}
    -> {"error": "..."}   (timeout or protocol error; the accelerator is then reset)
    {"op": "stop"}

Nothing is compared here: the caller compares with the golden model, so a mismatch leaves the
server running for the next case (hypothesis shrinks a failure by sending smaller ones).
"""

from __future__ import annotations

import json
import socket

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge, SimTimeoutError

from eie.tb.driver import TB, ReadyPattern, cycle_now


async def _reset(tb):
    for source in (tb.cfg, tb.inp):
        source.valid.value = 0
    tb.dut.rst.value = 1
    await ClockCycles(tb.clk, 2)
    tb.dut.rst.value = 0
    await RisingEdge(tb.clk)


async def _run(tb, request):
    seed = int(request.get("seed", 0))
    tb.out.pattern = ReadyPattern(float(request.get("p_ready", 1.0)), seed)
    tb.out.ready.value = 1 if tb.out.pattern.always else 0
    for k, source in enumerate((tb.cfg, tb.inp)):
        source.reseed(float(request.get("p_idle", 0.0)), seed + 1 + k)
    start = cycle_now()
    await tb.wait_idle()
    await tb.cfg.send(request["writes"])
    load_cycles = cycle_now() - start
    outputs, cycles = [], []
    for x in request["inputs"]:
        result = await tb.run(x, int(request["n_out"]), max_cycles=int(request["max_cycles"]))
        outputs.append(result.outputs)
        cycles.append(result.cycles)
    return {"outputs": outputs, "cycles": cycles, "load_cycles": load_cycles}


@cocotb.test()
async def serve(dut):
    """Answer requests until ``stop`` or until the client goes away."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(cocotb.plusargs["eie_serve"])
    stream = conn.makefile("rw")
    tb = TB(dut)
    await tb.start()
    served = 0
    while (line := stream.readline()):
        request = json.loads(line)
        if request["op"] == "stop":
            break
        try:
            reply = await _run(tb, request)
        except (AssertionError, SimTimeoutError) as e:
            reply = {"error": f"{type(e).__name__}: {e}"}
            await _reset(tb)
        stream.write(json.dumps(reply) + "\n")
        stream.flush()
        served += 1
    conn.close()
    dut._log.info("served %d requests", served)
