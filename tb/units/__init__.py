"""Unit benches written once, run on Amaranth's simulator and on cocotb/Verilator.

A unit module (``eie.tb.units.<unit>``) provides ``make(**params)`` (the component),
``stimulus(seed, **params)`` (JSON data: what to offer, cycle by cycle), ``reference(stimulus,
**params)`` (a deliberately naive model of what must come out) and ``async drive(bench, stimulus,
**params)`` (feeds the stimulus and returns what came out), so that a test reads::

    assert run_unit(simulator, unit, params, stimulus) == unit.reference(stimulus, **params)

``drive`` talks to a :class:`Bench`, which is the same on both simulators: ``set(port, value)``
drives an input for the coming clock edge, ``await step(*ports)`` returns the ports' values at that
edge (settled with the inputs just set) and moves past it; ``await settle(*ports)`` does the same
without a clock (combinational units). Ports are named as in Verilog (``i__payload``,
``i__0__valid``); structured payloads are dicts, packed and unpacked with the port's
``amaranth.lib.data.Layout`` (``Layout.const(...).as_bits()`` / ``Layout.from_bits(...)``).

On Verilator, :func:`run_unit` builds the component alone (cached), runs the cocotb test
:mod:`eie.tb.units.cocotb_entry` with the request as a runner plus-argument, and reads the result.
"""

from __future__ import annotations

import importlib
import json
import tempfile
from pathlib import Path

__all__ = ["SIMULATORS", "Bench", "AmaranthBench", "CocotbBench", "unit_ports", "unit_verilog", "run_unit"]

SIMULATORS = ("amaranth", "verilator")


def unit_ports(component) -> dict:
    """``{verilog name: (value, shape, is_input)}`` of a component's signature (constant members,
    e.g. the ``ready`` of an ``always_ready`` stream, are not ports)."""
    from amaranth.hdl import Shape, Signal, Value, ValueCastable
    from amaranth.lib import data, wiring

    ports = {}
    for path, member, value in component.signature.flatten(component):
        raw = value.as_value() if isinstance(value, ValueCastable) else value
        if isinstance(Value.cast(raw), Signal):
            shape = member.shape
            if not isinstance(shape, data.Layout):
                try:
                    shape = data.Layout.cast(shape)
                except TypeError:
                    shape = Shape.cast(shape)
            ports["__".join(map(str, path))] = (value, shape, member.flow == wiring.In)
    return ports


def _normalise(value):
    """JSON-shaped copy: tuples become lists, Amaranth constants plain ints or dicts."""
    return json.loads(json.dumps(value))


class Bench:
    """What ``drive`` functions use; see the module docstring."""

    def __init__(self, component):
        self.ports = unit_ports(component)

    def _port(self, name):
        if name not in self.ports:
            raise KeyError(f"the unit has no port {name!r}; it has {sorted(self.ports)}")
        return self.ports[name]

    async def write_memory(self, port: str, values) -> None:
        """Write ``values`` to addresses 0, 1, ... through the write port ``port`` (``en``,
        ``addr``, ``data``), one per cycle; ``en`` is low afterwards."""
        for addr, value in enumerate(values):
            self.set(f"{port}__en", 1)
            self.set(f"{port}__addr", addr)
            self.set(f"{port}__data", value)
            await self.step()
        self.set(f"{port}__en", 0)

    @staticmethod
    def _to_python(shape, const):
        from amaranth.lib import data
        if isinstance(shape, data.StructLayout):
            return {name: Bench._to_python(field.shape, const[name]) for name, field in shape}
        return int(const)


class AmaranthBench(Bench):
    """:class:`Bench` inside an Amaranth async testbench (``ctx``)."""

    def __init__(self, ctx, component):
        super().__init__(component)
        self.ctx = ctx

    def set(self, name, value):
        self.ctx.set(self._port(name)[0], value)

    async def step(self, *names):
        samples = await self.ctx.tick().sample(*(self._port(n)[0] for n in names))
        return [self._to_python(self._port(n)[1], v) for n, v in zip(names, samples[-len(names):])] \
            if names else []

    async def settle(self, *names):
        await self.ctx.delay(1e-9)
        return [self._to_python(self._port(n)[1], self.ctx.get(self._port(n)[0])) for n in names]


class CocotbBench(Bench):
    """:class:`Bench` on a cocotb DUT whose ports are the component's, named as in Verilog."""

    def __init__(self, dut, component):
        super().__init__(component)
        self.dut = dut
        self.handles = {name: getattr(dut, name) for name in self.ports}

    def set(self, name, value):
        from amaranth.lib import data
        shape = self._port(name)[1]
        bits = shape.const(value).as_bits() if isinstance(shape, data.Layout) else int(value) & ((1 << shape.width) - 1)
        self.handles[name].value = bits

    def _read(self, name):
        from amaranth.lib import data
        shape = self._port(name)[1]
        raw = self.handles[name].value
        bits = raw.to_unsigned() if hasattr(raw, "to_unsigned") else int(raw)  # one bit: a Logic
        if isinstance(shape, data.Layout):
            return self._to_python(shape, shape.from_bits(bits))
        return bits - (1 << shape.width) if shape.signed and bits >> (shape.width - 1) else bits

    async def step(self, *names):
        from cocotb.triggers import RisingEdge
        await RisingEdge(self.dut.clk)
        return [self._read(n) for n in names]

    async def settle(self, *names):
        from cocotb.triggers import Timer
        await Timer(1, "ns")
        return [self._read(n) for n in names]


def unit_verilog(component, name: str) -> str:
    """Verilog of one Amaranth component; constant members of its signature are not ports."""
    from amaranth.back import verilog
    from amaranth.hdl import Value
    ports = [Value.cast(value) for value, _, _ in unit_ports(component).values()]
    return verilog.convert(component, name=name, ports=ports, emit_src=False)


def _run_amaranth(unit, params, stimulus):
    from eie.hw.testing import simulate
    component = unit.make(**params)
    result = {}

    async def bench(ctx):
        result["observed"] = await unit.drive(AmaranthBench(ctx, component), stimulus, **params)

    simulate(component, bench, clock=getattr(unit, "CLOCKED", True), name=unit.__name__.rsplit(".", 1)[-1])
    return result["observed"]


def _run_verilator(unit, params, stimulus):
    import hashlib

    from eie.tb.runner import build_verilog, run_cocotb
    component = unit.make(**params)
    short = unit.__name__.rsplit(".", 1)[-1]
    text = unit_verilog(component, short)
    build = build_verilog(text, short)
    with tempfile.TemporaryDirectory(prefix=f"eie-unit-{short}-") as tmp:
        request = Path(tmp) / "request.json"
        result = Path(tmp) / "result.json"
        request.write_text(json.dumps({"unit": unit.__name__, "params": params, "stimulus": stimulus,
                                       "result": str(result)}))
        digest = hashlib.sha256(request.read_bytes()).hexdigest()[:8]
        run_cocotb(build, "eie.tb.units.cocotb_entry", "run_unit", plusargs=[f"+eie_unit={request}"],
                   seed=int(digest, 16) % (1 << 31))
        return json.loads(result.read_text())


def run_unit(simulator: str, unit, params: dict, stimulus):
    """What ``unit`` (a module of :mod:`eie.tb.units`) puts out for ``stimulus`` on ``simulator``
    (``"amaranth"`` or ``"verilator"``), JSON-shaped."""
    if isinstance(unit, str):
        unit = importlib.import_module(unit)
    if simulator == "amaranth":
        return _normalise(_run_amaranth(unit, params, stimulus))
    if simulator == "verilator":
        return _normalise(_run_verilator(unit, params, stimulus))
    raise ValueError(f"simulator must be one of {SIMULATORS}, not {simulator!r}")
