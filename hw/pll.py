"""Clock generation: the board's oscillator through a PLL to the requested frequency.

The divider search is the one of the open tools' calculators, ``ecppll`` (prjtrellis) for the ECP5
``EHXPLLL`` and ``icepll`` (IceStorm) for the iCE40 ``SB_PLL40_CORE`` in simple feedback mode, so the
chosen dividers and the achieved frequency are exactly what those tools give (the tests compare them
with ``yowasp-ecppll`` and ``yowasp-icepll``):

- **ECP5**: ``f_pfd = f_in / CLKI_DIV`` in 3.125..400 MHz, ``f_vco = f_pfd · CLKFB_DIV · CLKOP_DIV`` in
  400..800 MHz, ``f_out = f_vco / CLKOP_DIV``; closest ``f_out`` wins, ties go to the VCO nearer
  600 MHz. CLKOP is shifted by half a period (``CLKOP_CPHASE``) as Lattice's tools do.
- **iCE40**: ``f_pfd = f_in / (DIVR + 1)`` in 10..133 MHz, ``f_vco = f_pfd · (DIVF + 1)`` in
  533..1066 MHz, ``f_out = f_vco / 2^DIVQ`` with ``DIVQ`` in 1..6; the first closest wins.

:class:`PLL` instantiates the primitive and exposes the output clock and the lock signal; the board
top (:mod:`eie.hw.board`) derives its ``sync`` domain from them with a reset held until lock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Elaboratable, Instance, Module, Signal

from eie.spec.errors import ConfigError

__all__ = ["PllParams", "ecp5_pll_params", "ice40_pll_params", "PLL", "PllError"]


class PllError(ConfigError):
    """No divider setting reaches the requested frequency range."""


@dataclass(frozen=True)
class PllParams:
    """A PLL setting.

    Attributes
    ----------
    family : {"ecp5", "ice40"}
    f_in, f_out, f_vco, f_pfd : float
        Input, achieved output, VCO and phase-detector frequencies in MHz.
    params : dict
        The primitive's parameters (``CLKI_DIV``... or ``DIVR``...), as the tools write them.
    """

    family: str
    f_in: float
    f_out: float
    f_vco: float
    f_pfd: float
    params: dict


def ecp5_pll_params(f_in: float, f_out: float) -> PllParams:
    """``ecppll``'s search for an ``EHXPLLL`` from ``f_in`` to ``f_out`` (MHz)."""
    if not 8 <= f_in <= 400:
        raise PllError(f"ECP5 PLL input must be 8..400 MHz, not {f_in:g}")
    if not 10 <= f_out <= 400:
        raise PllError(f"ECP5 PLL output must be 10..400 MHz, not {f_out:g}")
    f32 = np.float32                                         # ecppll computes in single precision
    target = f32(f_out)
    best = None
    for input_div in range(1, 129):
        f_pfd = f32(f_in) / f32(input_div)
        if not 3.125 <= f_pfd <= 400:
            continue
        for feedback_div in range(1, 81):
            step = float(f_pfd) * feedback_div                  # f_vco = step · output_div in 400..800
            for output_div in range(max(1, int(400 // step)), min(128, int(800 // step) + 1) + 1):
                f_vco = f_pfd * f32(feedback_div) * f32(output_div)
                if not 400 <= f_vco <= 800:
                    continue
                fout = f_vco / f32(output_div)
                error = abs(fout - target)
                if best is None or error < best[0] or (error == best[0] and abs(f_vco - 600) < abs(best[5] - 600)):
                    best = (error, input_div, feedback_div, output_div, fout, f_vco, f_pfd)
    if best is None:
        raise PllError(f"no ECP5 PLL setting takes {f_in:g} MHz to {f_out:g} MHz")
    _, input_div, feedback_div, output_div, fout, f_vco, f_pfd = best
    # CLKOP is shifted by half a period; ecppll rounds the phase in ns to single precision.
    ns_phase = float(f32(1 / (float(fout) * 1e6) * 0.5))
    params = {"CLKI_DIV": input_div, "CLKFB_DIV": feedback_div, "CLKOP_DIV": output_div,
              "CLKOP_CPHASE": int(ns_phase * (float(f_vco) * 1e6)), "CLKOP_FPHASE": 0}
    return PllParams("ecp5", f_in, float(fout), float(f_vco), float(f_pfd), params)


def ice40_pll_params(f_in: float, f_out: float) -> PllParams:
    """``icepll``'s search for an ``SB_PLL40_CORE`` (simple feedback) from ``f_in`` to ``f_out``."""
    if not 10 <= f_in <= 133:
        raise PllError(f"iCE40 PLL input must be 10..133 MHz, not {f_in:g}")
    if not 16 <= f_out <= 275:
        raise PllError(f"iCE40 PLL output must be 16..275 MHz, not {f_out:g}")
    best = None
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10 <= f_pfd <= 133:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533 <= f_vco <= 1066:
                continue
            for divq in range(1, 7):
                fout = f_vco * 2.0 ** -divq
                if best is None or abs(fout - f_out) < abs(best[3] - f_out):
                    best = (divr, divf, divq, fout, f_vco, f_pfd)
    if best is None:
        raise PllError(f"no iCE40 PLL setting takes {f_in:g} MHz to {f_out:g} MHz")
    divr, divf, divq, fout, f_vco, f_pfd = best
    filter_range = next(r for r, limit in ((1, 17), (2, 26), (3, 44), (4, 66), (5, 101), (6, float("inf")))
                        if f_pfd < limit)
    params = {"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filter_range}
    return PllParams("ice40", f_in, fout, f_vco, f_pfd, params)


class PLL(Elaboratable):
    """The PLL primitive of a setting: ``clk_in`` → ``clk_out`` and ``locked``.

    Parameters
    ----------
    setting : PllParams

    pad : amaranth.lib.io.PortLike, optional
        iCE40: the oscillator's pin, when it is the PLL's dedicated pad (the iCEBreaker's 12 MHz pin
        35 is): the PLL is then an ``SB_PLL40_PAD`` fed straight from the pin, and ``clk_in`` is unused.

    Attributes
    ----------
    clk_in : Signal, in
        The reference clock (the board's oscillator).
    clk_out : Signal, out
        The output clock at ``setting.f_out``.
    locked : Signal, out
        High while the PLL is locked (asynchronous to ``clk_out``; synchronise before use).
    """

    def __init__(self, setting: PllParams, *, pad=None):
        if not isinstance(setting, PllParams):
            raise TypeError(f"setting must be PllParams, not {type(setting).__name__}")
        if pad is not None and setting.family != "ice40":
            raise ValueError("only the iCE40 PLL takes its reference from a pad")
        self.setting = setting
        self.pad = pad
        self.clk_in = Signal()
        self.clk_out = Signal()
        self.locked = Signal()

    def elaborate(self, platform):
        m = Module()
        s = self.setting
        p = s.params
        if s.family == "ecp5":
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{s.f_in:g}", a_FREQUENCY_PIN_CLKOP=f"{s.f_out:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
                p_CLKI_DIV=p["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p["CLKOP_DIV"],
                p_CLKOP_CPHASE=p["CLKOP_CPHASE"], p_CLKOP_FPHASE=p["CLKOP_FPHASE"], p_FEEDBK_PATH="CLKOP",
                p_CLKFB_DIV=p["CLKFB_DIV"],
                i_RST=0, i_STDBY=0, i_CLKI=self.clk_in, o_CLKOP=self.clk_out, i_CLKFB=self.clk_out,
                i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
                i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=self.locked)
        elif s.family == "ice40":
            common = dict(p_FEEDBACK_PATH="SIMPLE", p_DIVR=p["DIVR"], p_DIVF=p["DIVF"], p_DIVQ=p["DIVQ"],
                          p_FILTER_RANGE=p["FILTER_RANGE"], i_RESETB=1, i_BYPASS=0, o_PLLOUTGLOBAL=self.clk_out,
                          o_LOCK=self.locked)
            if self.pad is not None:
                m.submodules.pll = Instance("SB_PLL40_PAD", i_PACKAGEPIN=self.pad.io, **common)
            else:
                m.submodules.pll = Instance("SB_PLL40_CORE", i_REFERENCECLK=self.clk_in, **common)
        else:
            raise ValueError(f"unknown PLL family {s.family!r}")
        return m
