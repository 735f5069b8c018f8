"""cocotb testbenches of single EIE units, each converted to Verilog on its own.

:func:`unit_verilog` converts a component (streams with ``always_ready`` have a constant
``ready``, which is not a port); :class:`Packer` packs and unpacks ``StructLayout`` payloads
for the Verilog ports; parameters reach the cocotb modules as JSON in ``EIE_UNIT_PARAMS``.
"""

from __future__ import annotations

import json
import os

__all__ = ["unit_verilog", "build_unit", "Packer", "unit_params"]


def unit_verilog(component, name: str) -> str:
    """Verilog of one Amaranth component; constant members of its signature are not ports."""
    from amaranth.back import verilog
    from amaranth.hdl import Signal, Value

    ports = [v for v in (Value.cast(value) for _, _, value in component.signature.flatten(component))
             if isinstance(v, Signal)]
    return verilog.convert(component, name=name, ports=ports, emit_src=False)


def build_unit(component, name: str):
    """Build (cached) one component for cocotb; returns a :class:`eie.tb.runner.Build`."""
    from eie.tb.runner import build_verilog
    return build_verilog(unit_verilog(component, name), name)


def unit_params() -> dict:
    """The parameters the pytest wrapper passed in ``EIE_UNIT_PARAMS``."""
    return json.loads(os.environ.get("EIE_UNIT_PARAMS", "{}"))


class Packer:
    """Pack a dict of field values into the flat integer of a ``StructLayout`` and back.

    Signed fields are two's complement; nested layouts are packed as plain integers.
    """

    def __init__(self, layout):
        self.fields = {}
        for name, field in layout:
            shape = field.shape
            try:
                signed = shape.signed
            except AttributeError:
                from amaranth.hdl import Shape
                signed = Shape.cast(shape).signed
            self.fields[name] = (field.offset, field.width, signed)
        self.width = layout.size

    def pack(self, **values) -> int:
        out = 0
        for name, value in values.items():
            lsb, width, signed = self.fields[name]
            value = int(value)
            lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
            if not lo <= value <= hi:
                raise ValueError(f"field {name} = {value} does not fit {width} bits")
            out |= (value & ((1 << width) - 1)) << lsb
        return out

    def unpack(self, word) -> dict:
        word = int(word)
        out = {}
        for name, (lsb, width, signed) in self.fields.items():
            v = (word >> lsb) & ((1 << width) - 1)
            if signed and v >> (width - 1):
                v -= 1 << width
            out[name] = v
        return out
