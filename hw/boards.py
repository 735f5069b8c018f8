"""Boards: a name, an amaranth-boards platform and the constraints of ``constraints/NAME.toml``.

:func:`load_board` reads and checks one file (the format is in ``constraints/README.md``) and
returns a :class:`Board`; :func:`board_names` lists the files. Every problem is a one-line
:class:`~eie.spec.errors.ConfigError` naming the file and the key.
"""

from __future__ import annotations

import importlib
import importlib.resources
import tomllib
from dataclasses import dataclass
from pathlib import Path

from eie.spec.errors import ConfigError

__all__ = ["Device", "Board", "board_names", "load_board"]

FAMILIES = ("ecp5", "ice40")


@dataclass(frozen=True)
class Device:
    """What an FPGA offers a configuration.

    ``bram`` counts block RAMs (ECP5 DP16KD of 18 Kbit, iCE40 EBR of 4 Kbit), ``dsp`` 18×18 (or
    16×16) multipliers, ``spram`` iCE40 single-port RAMs of 256 Kbit. ``utilisation`` is the fraction
    of the LUTs a plan may use and ``bram_utilisation`` the fraction of the block RAMs the sizer may
    fill: headroom for routing. A plan (:func:`eie.hw.fit.plan`) is checked against both budgets.
    """

    family: str
    lut4: int
    ff: int
    bram: int
    dsp: int
    spram: int = 0
    utilisation: float = 0.75
    bram_utilisation: float = 1.0

    def __post_init__(self):
        for name in ("utilisation", "bram_utilisation"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ConfigError(f"{name} must be in (0, 1], not {value}")

    @property
    def lut_budget(self) -> int:
        """The LUTs a plan may use."""
        return int(self.lut4 * self.utilisation)

    @property
    def bram_budget(self) -> int:
        """The block RAMs a plan may fill."""
        return int(self.bram * self.bram_utilisation)

    @property
    def bram_bits(self) -> int:
        return 18 * 1024 if self.family == "ecp5" else 4 * 1024


@dataclass(frozen=True)
class Board:
    """A board from ``constraints/``: its platform, the resources the board top uses, its device."""

    name: str
    platform: str
    description: str
    clock_mhz: float
    uart: str
    baud: int
    uart_enable: tuple[str, ...]
    leds: str | None
    device: Device
    path: Path

    def platform_class(self):
        """The amaranth-boards platform class (imported on demand)."""
        module, _, cls = self.platform.partition(":")
        try:
            return getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"{self.path.name}: platform {self.platform} cannot be imported ({e})") from None


def _constraints_dir() -> Path:
    return Path(str(importlib.resources.files("eie.constraints")))


def board_names() -> list[str]:
    """The boards with a file in ``constraints/``, sorted."""
    return sorted(p.stem for p in _constraints_dir().glob("*.toml"))


def _get(table: dict, key: str, kind, where: str, default=...):
    if key not in table:
        if default is ...:
            raise ConfigError(f"{where}: missing key {key!r}")
        return default
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}: {key} must be {kind.__name__}, not {value!r}")
    return value


def load_board(name: str) -> Board:
    """The board called ``name`` (``constraints/NAME.toml``).

    Raises
    ------
    ConfigError
        No such board (the message lists the known ones), or the file is malformed.
    """
    path = _constraints_dir() / f"{name}.toml"
    if not isinstance(name, str) or "/" in name or not path.is_file():
        raise ConfigError(f"unknown board {name!r}; known boards: {', '.join(board_names())} (add "
                          f"constraints/{name}.toml for another amaranth-boards board)")
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path.name} is not valid TOML: {e}") from None
    tables = {}
    for section in ("board", "clock", "uart", "device"):
        if not isinstance(doc.get(section), dict):
            raise ConfigError(f"{path.name}: missing section [{section}]")
        tables[section] = doc[section]
    dev = tables["device"]
    where = f"{path.name} [device]"
    family = _get(dev, "family", str, where)
    if family not in FAMILIES:
        raise ConfigError(f"{where}: family must be one of {', '.join(FAMILIES)}, not {family!r}")
    try:
        device = Device(family=family, lut4=_get(dev, "lut4", int, where), ff=_get(dev, "ff", int, where),
                        bram=_get(dev, "bram", int, where), dsp=_get(dev, "dsp", int, where),
                        spram=_get(dev, "spram", int, where, 0),
                        utilisation=_get(dev, "utilisation", float, where, 0.75),
                        bram_utilisation=_get(dev, "bram_utilisation", float, where, 1.0))
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    clock = _get(tables["clock"], "target_mhz", float, f"{path.name} [clock]")
    uart = tables["uart"]
    leds = doc.get("leds", {})
    return Board(name=name, platform=_get(tables["board"], "platform", str, f"{path.name} [board]"),
                 description=_get(tables["board"], "description", str, f"{path.name} [board]", name),
                 clock_mhz=clock, uart=_get(uart, "resource", str, f"{path.name} [uart]"),
                 baud=_get(uart, "baud", int, f"{path.name} [uart]"),
                 uart_enable=tuple(_get(uart, "enable", list, f"{path.name} [uart]", [])),
                 leds=leds.get("resource") if isinstance(leds, dict) else None, device=device, path=path)
