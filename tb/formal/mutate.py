"""Deliberately broken designs: a component with one signal's driver overridden.

A property that still passes on a broken design proves nothing, so every proof in
:mod:`eie.tb.formal.properties` is also run on a :class:`Mutant` of its component, and must fail there.
A mutation names a signal by its path in the elaborated hierarchy (``"fifo.w_rdy"``: signal
``w_rdy`` driven in submodule ``fifo``) and gives its new value, a function of the signals of that
same fragment looked up by name (``lambda s: s["data_valid"]``). The new assignment is appended to
the domain that drives the signal, so it wins over the original one (Amaranth's last-assignment
rule): the hardware under ``hw/`` is not edited, and the mutant is a real design, not a changed
observation.
"""

from __future__ import annotations

from amaranth.hdl import Const, Elaboratable, Fragment, Value

__all__ = ["Mutant", "MutationError", "component_ports"]


class MutationError(LookupError):
    """A mutation names a submodule or a signal that does not exist."""


def _signals(fragment) -> dict:
    found = {}
    for statements in fragment.statements.values():
        for statement in statements:
            for signal in list(statement._lhs_signals()) + list(statement._rhs_signals()):
                found.setdefault(signal.name, signal)
    return found


def _driving_domain(fragment, signal) -> str:
    for domain, statements in fragment.statements.items():
        if any(signal in statement._lhs_signals() for statement in statements):
            return domain
    raise MutationError(f"signal {signal.name!r} is not driven in this fragment")


class Mutant(Elaboratable):
    """``component`` with ``path``'s driver replaced by ``value``.

    Parameters
    ----------
    component : Elaboratable
        The design under test; its ports stay the same objects, so a harness that wraps the
        mutant reads and drives them as it would the original.
    path : str
        ``"sub.sub.signal"``: submodule names from the component down, then the signal name.
    value : int or callable
        The signal's new value: a constant, or a function of ``{name: signal}`` of the fragment
        that drives it.
    description : str
        What the mutation breaks, for reports.

    Raises
    ------
    MutationError
        On elaboration, if the path names no submodule or no driven signal.
    """

    def __init__(self, component, path: str, value, description: str):
        self.component = component
        self.path = path
        self.value = value
        self.description = description

    def elaborate(self, platform):
        top = Fragment.get(self.component, platform)
        *submodules, name = self.path.split(".")
        fragment = top
        for sub in submodules:
            matches = [f for f, sub_name, _ in fragment.subfragments if sub_name == sub]
            if not matches:
                names = [n for _, n, _ in fragment.subfragments]
                raise MutationError(f"no submodule {sub!r} on the way to {self.path!r}; there are {names}")
            fragment = matches[0]
        signals = _signals(fragment)
        if name not in signals:
            raise MutationError(f"no signal {name!r} in {self.path!r}; there are {sorted(signals)}")
        signal = signals[name]
        value = self.value(signals) if callable(self.value) else Const(self.value, len(signal))
        fragment.add_statements(_driving_domain(fragment, signal), signal.eq(Value.cast(value)))
        return top


def component_ports(component) -> dict:
    """The Verilog ports of ``component`` (``{"cfg__valid": (signal, direction), ...}``), to convert
    a :class:`Mutant` of it with the same ports as the original."""
    from amaranth.hdl import ValueCastable
    from amaranth.hdl._ir import PortDirection
    from amaranth.lib import wiring

    ports = {}
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if isinstance(value, Value):
            direction = PortDirection.Input if member.flow == wiring.In else PortDirection.Output
            ports["__".join(map(str, path))] = (value, direction)
    return ports
