"""Verilog generation for :class:`~eie.hw.accelerator.EIEAccelerator` and
:class:`~eie.hw.ese_accelerator.ESEAccelerator`."""

from __future__ import annotations

from amaranth.back import verilog

from eie.hw.accelerator import EIEAccelerator
from eie.spec.config import EIEConfig
from eie.spec.ese import ESEConfig

__all__ = ["generate_verilog"]


def generate_verilog(config: EIEConfig, images=None, name: str = "eie_top") -> str:
    """Verilog of the accelerator for ``config`` (memories initialised from ``images`` if given): the
    EIE array, or the ESE array for an :class:`~eie.spec.ese.ESEConfig`.

    Deterministic: the same configuration and images give byte-identical text on any machine
    (source-location attributes, which would embed the checkout path, are left out).

    Raises
    ------
    TypeError
        ``config`` is not an :class:`EIEConfig`.
    ValueError
        ``images`` were made for another configuration, or ``name`` is not a Verilog identifier.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be a Verilog identifier, not {name!r}")
    if isinstance(config, ESEConfig):       # an ESE array (LSTM images)
        from eie.hw.ese_accelerator import ESEAccelerator
        return verilog.convert(ESEAccelerator(config=config, images=images), name=name, emit_src=False)
    top = EIEAccelerator(config=config, images=images)
    return verilog.convert(top, name=name, emit_src=False)
