"""The cocotb side of :func:`eie.tb.units.run_unit`: one test that runs any unit's ``drive``.

The request (unit module, parameters, stimulus, where to write the result) is a JSON file named by
the runner plus-argument ``+eie_unit=PATH``.
"""

import importlib
import json
from pathlib import Path

import cocotb

from eie.tb.driver import start_clock_and_reset
from eie.tb.units import CocotbBench


@cocotb.test()
async def run_unit(dut):
    request = json.loads(Path(cocotb.plusargs["eie_unit"]).read_text())
    unit = importlib.import_module(request["unit"])
    component = unit.make(**request["params"])
    if getattr(unit, "CLOCKED", True):
        await start_clock_and_reset(dut)
    observed = await unit.drive(CocotbBench(dut, component), request["stimulus"], **request["params"])
    Path(request["result"]).write_text(json.dumps(observed))
