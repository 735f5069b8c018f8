"""The board top: the oscillator through a PLL, a reset held until lock, the host link on the board's
UART, and the PE array; status on the LEDs.

::

    oscillator ──PLL──▶ sync clock ──┬─▶ host link (UART rx/tx, framed protocol) ◀──▶ EIE PE array
                 lock ─▶ reset sync ─┘                                    status ──▶ LEDs

:class:`BoardTop` takes a :class:`~eie.hw.boards.Board` (``constraints/NAME.toml``) for the pins, the
clock and the UART rate, and builds for that board's amaranth-boards platform. Without a platform
(simulation) the PLL and the pins are left out and :class:`BoardTop` is the host-link top itself,
clocked by the simulator.
"""

from __future__ import annotations

from amaranth.build import ResourceError
from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from eie.hw.boards import Board
from eie.hw.pll import PLL, ecp5_pll_params, ice40_pll_params
from eie.spec.config import EIEConfig
from eie.spec.errors import ConfigError

__all__ = ["BoardTop", "uart_divisor"]


def uart_divisor(clock_hz: float, baud: int) -> int:
    """Clock cycles per UART bit, rounded; the rate error must stay within 2% (the UART's margin).

    Raises
    ------
    ConfigError
        The clock is too slow for the rate, or the nearest divisor is more than 2% off.
    """
    divisor = round(clock_hz / baud)
    if divisor < 4:
        raise ConfigError(f"a {clock_hz / 1e6:g} MHz clock cannot carry {baud:,} baud (at least 4 clocks per bit); "
                          f"lower the baud rate or raise the clock")
    error = abs(clock_hz / divisor - baud) / baud
    if error > 0.02:
        raise ConfigError(f"{baud:,} baud is {error:.1%} off at {clock_hz / 1e6:g} MHz (divisor {divisor}); choose a "
                          f"clock that is a multiple of the baud rate")
    return divisor


class BoardTop(Elaboratable):
    """The accelerator on a board (see the module docstring).

    Parameters
    ----------
    board : Board
    config : EIEConfig
    images : Images, optional
        Baked into the memories: the device starts with them loaded.
    freq_mhz : float
        The clock the PLL makes from the board's oscillator.
    baud : int
        The host link's rate.

    Attributes
    ----------
    pll_setting : PllParams
        The PLL's dividers and the frequency it really makes.
    divisor : int
        Clocks per UART bit at that frequency.
    """

    def __init__(self, *, board: Board, config: EIEConfig, images=None, freq_mhz: float, baud: int):
        if not isinstance(board, Board):
            raise TypeError(f"board must be a Board, not {type(board).__name__}")
        if not isinstance(config, EIEConfig):
            raise TypeError(f"config must be an EIEConfig, not {type(config).__name__}")
        self.board = board
        self.config = config
        self.images = images
        make = ecp5_pll_params if board.device.family == "ecp5" else ice40_pll_params
        try:
            self.pll_setting = make(_oscillator_mhz(board), freq_mhz)
            self.divisor = uart_divisor(self.pll_setting.f_out * 1e6, baud)
        except Exception:
            # A top refused here is never elaborated: no "created but never used" warning for it.
            self._MustUse__silence = True
            raise

    def elaborate(self, platform):
        from eie.hw.host_link import HostLinkTop
        m = Module()
        m.submodules.link = link = HostLinkTop(config=self.config, images=self.images, divisor=self.divisor)
        if platform is None:
            return m
        m.domains.sync = ClockDomain("sync")
        clk_pin = platform.request(platform.default_clk, 0, dir="-")
        if self.board.device.family == "ice40":
            # The iCE40 oscillator pin feeds the PLL's pad input directly (no input buffer between).
            m.submodules.pll = pll = PLL(self.pll_setting, pad=clk_pin)
        else:
            m.submodules.pll = pll = PLL(self.pll_setting)
            m.submodules.clk_buffer = clk_buffer = io.Buffer("i", clk_pin)
            m.d.comb += pll.clk_in.eq(clk_buffer.i)
        # nextpnr derives the PLL output's constraint from the oscillator's and the PLL's dividers.
        m.d.comb += ClockSignal("sync").eq(pll.clk_out)
        m.submodules.reset = ResetSynchronizer(~pll.locked, domain="sync")
        uart = platform.request(self.board.uart, 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [link.rx.eq(rx.i), tx.o.eq(link.tx)]
        for name in self.board.uart_enable:
            m.submodules[f"{name}_buffer"] = enable = io.Buffer("o", platform.request(name, 0, dir="-"))
            m.d.comb += enable.o.eq(1)
        status = [link.busy, link.loaded, link.error, Signal(init=1)]
        for number, signal in enumerate(status if self.board.leds else []):
            try:
                pin = platform.request(self.board.leds, number, dir="-")
            except ResourceError:
                break
            m.submodules[f"led{number}"] = led = io.Buffer("o", pin)
            m.d.comb += led.o.eq(signal)
        return m


def _oscillator_mhz(board: Board) -> float:
    platform = board.platform_class()
    resource = next(r for r in platform.resources if r.name == platform.default_clk)
    return resource.clock.frequency / 1e6
