"""Fitting the PE array to an FPGA: block RAMs, multipliers and LUTs a configuration needs.

:func:`memories` lists every memory of :class:`~eie.hw.accelerator.EIEAccelerator` for a
configuration, :func:`bram_blocks` maps one to the device's block RAMs the way Yosys'
``memory_libmap`` does for a simple dual-port memory (the cheapest aspect ratio; memories of at most
:data:`LUTRAM_BITS` bits go to distributed RAM or logic), :func:`lut_estimate` predicts the LUT count from a
linear model fitted to the project's own synthesis sweep (``make synth-sweep``), and :func:`plan`
compares all of it with a :class:`~eie.hw.boards.Device`.

:func:`size_for_device` chooses a configuration for a device: the largest PE count whose array fits,
then the deepest memories the block RAMs allow, within the device's budgets for LUTs and block RAMs
(:attr:`~eie.hw.boards.Device.utilisation`, :attr:`~eie.hw.boards.Device.bram_utilisation`), which leave
headroom for routing. The utilisation report of a real build is the final
word (``eie build`` checks it); this model chooses what to build.
"""

from __future__ import annotations

from dataclasses import dataclass

from eie.hw.boards import Device
from eie.hw.layouts import Widths
from eie.spec.config import EIEConfig
from eie.spec.errors import FitError

__all__ = ["LUTRAM_BITS", "Memory", "Plan", "memories", "bram_blocks", "lut_estimate", "plan", "size_for_device"]

#: Memories of at most this many bits go to distributed RAM (ECP5) or logic (iCE40), not block RAM:
#: Yosys maps even small synchronous memories to an iCE40 EBR, which has no distributed RAM.
LUTRAM_BITS = {"ecp5": 1024, "ice40": 64}

#: (depth, width) aspect ratios of one block RAM in simple dual-port mode.
ASPECTS = {
    "ecp5": ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
    "ice40": ((2048, 2), (1024, 4), (512, 8), (256, 16)),
}

#: LUT positions (nextpnr's TRELLIS_COMB: a LUT4, half a carry cell, half a distributed-RAM cell) per PE
#: and for the shared control, fitted to ``make synth-sweep`` on the ULX3S 85F (reference memories of
#: 512 matrix words, 1,024 pointers and 64 rows per PE; nextpnr's count after packing, host link and
#: board top included): 3,955 / 11,654 / 21,900 / 42,284 / 79,844 / 158,296 at 1 / 4 / 8 / 16 / 32 /
#: 64 PEs. The model is within 3 % of each point and above the 1-, 32- and 64-PE ones; smaller
#: configurations (the sized digits model's 20 PEs packed to 42,475, 2,080 per PE) take fewer.
LUT_PER_PE = 2480
LUT_BASE = 900
#: The host link (UART, framing, CRC) and the board top.
LUT_HOST_LINK = 600


@dataclass(frozen=True)
class Memory:
    """One memory of the array: ``copies`` instances of ``depth`` words of ``width`` bits."""

    name: str
    depth: int
    width: int
    copies: int

    @property
    def bits(self) -> int:
        return self.depth * self.width


@dataclass(frozen=True)
class Plan:
    """What a configuration needs on a device, per resource: ``{name: (needed, available)}``.

    For LUTs and block RAMs, "available" is the part of the device a plan may use
    (:attr:`~eie.hw.boards.Device.utilisation`, :attr:`~eie.hw.boards.Device.bram_utilisation`).
    """

    config: EIEConfig
    device: Device
    needs: dict

    @property
    def problems(self) -> list[str]:
        totals = {"block RAM": self.device.bram, "LUT4": self.device.lut4}
        return [f"{name} needs {need:,} but the device has {have:,}"
                + (f" ({have / totals[name]:.0%} of {totals[name]:,}; the rest is routing headroom)"
                   if totals.get(name, have) > have else "")
                for name, (need, have) in self.needs.items() if need > have]

    @property
    def fits(self) -> bool:
        return not self.problems

    def check(self) -> None:
        """Raise :class:`FitError` naming every resource that does not fit, with the numbers."""
        if self.problems:
            raise FitError(f"{self.config.n_pe} PEs do not fit the device: " + "; ".join(self.problems)
                           + "; use fewer PEs or shallower memories (eie compress --board chooses them)")


def memories(config: EIEConfig) -> list[Memory]:
    """Every memory of the accelerator for ``config`` that may take a block RAM (the FIFOs with an
    asynchronous read, and the layer table, which asks for distributed RAM, never do)."""
    c = config
    queue = [Memory("activation queues", c.queue_depth - 1, c.act_bits + Widths(c).act_index, c.n_pe)] \
        if c.queue_depth > 2 else []
    return queue + [
        Memory("sparse matrix", c.mat_depth, c.word_bits, c.n_pe),
        Memory("pointers (even and odd banks)", c.ptr_depth // 2, c.ptr_bits, 2 * c.n_pe),
        Memory("biases", c.bias_depth, c.acc_bits, c.n_pe),
        Memory("activation register files", c.max_rows_per_pe, c.act_bits, 2 * c.n_pe),
        Memory("accumulators", c.max_rows_per_pe, c.acc_bits, c.n_pe),
        Memory("codebooks", c.max_layers * c.codebook_size, c.act_bits, 1),
    ]


def bram_blocks(depth: int, width: int, family: str) -> int:
    """Block RAMs one ``depth`` × ``width`` memory takes (0 when it goes to distributed RAM).

    ECP5: Yosys uses the 36-bit pseudo-dual-port mode (``PDPW16KD``, 512 × 36) only for memories of
    at most 512 words; deeper ones are built from ``DP16KD`` of at most 18 bits (seen in the
    ``memory_libmap`` lines of the builds' ``top.rpt``).
    """
    if depth * width <= LUTRAM_BITS[family]:
        return 0
    aspects = [(d, w) for d, w in ASPECTS[family] if not (family == "ecp5" and w > 18 and depth > d)]
    return min(-(-depth // d) * -(-width // w) for d, w in aspects)


def lut_estimate(config: EIEConfig, *, host_link: bool = True) -> int:
    """Predicted LUT4 of the array for ``config`` (plus the host link and board top)."""
    return LUT_BASE + LUT_PER_PE * config.n_pe + (LUT_HOST_LINK if host_link else 0)


def plan(config: EIEConfig, device: Device) -> Plan:
    """The resources ``config`` needs on ``device``, next to what it has."""
    brams = _blocks(memories(config), device.family)
    return Plan(config, device, {"block RAM": (brams, device.bram_budget), "multipliers": (config.n_pe, device.dsp),
                                 "LUT4": (lut_estimate(config), device.lut_budget)})


def _blocks(mems, family: str) -> int:
    """Block RAMs all of ``mems`` take."""
    return sum(bram_blocks(m.depth, m.width, family) * m.copies for m in mems)


def _deepest(width: int, blocks: int, family: str) -> int:
    """The deepest memory of ``width`` bits that ``blocks`` block RAMs hold (0 if none)."""
    best = 0
    for d, w in ASPECTS[family]:
        depth = d * (blocks // -(-width // w))
        while depth > 0 and bram_blocks(depth, width, family) > blocks:     # a mode only for shallow memories
            depth -= d
        best = max(best, depth)
    return best


def size_for_device(device: Device, *, base: EIEConfig | None = None, n_pe: int | None = None,
                    shape: list[tuple[int, int]] | None = None) -> EIEConfig:
    """The configuration that uses ``device`` best: the most PEs, then the deepest sparse-matrix memory.

    Widths and the queue depth come from ``base``. The small per-PE memories (pointers, biases,
    register files, accumulators) and the layer table are sized exactly for a network of layer
    ``shape`` (``[(n_in, n_out), ...]``) when it is given, else each gets the blocks its width needs
    at least; every memory is then as deep as its blocks hold. The sparse-matrix memory takes the block
    RAMs left in the device's budget (:attr:`~eie.hw.boards.Device.bram_budget`), so that images of a
    larger network can be loaded at run time. With ``n_pe`` given, only that PE count is tried.

    Raises
    ------
    FitError
        Not even one PE fits (the message names the resources and the numbers).
    """
    base = base or EIEConfig()
    candidates = [n_pe] if n_pe is not None else range(min(256, device.dsp, device.bram), 0, -1)
    last = None
    for n in candidates:
        config = _sized(device, base, n, shape)
        if config is None and n_pe is not None:     # say what the smallest sparse-matrix memory would need
            config = _sized(device, base, n, shape, mat_blocks=bram_blocks(1, base.word_bits, device.family) or
                            min(-(-base.word_bits // w) for _, w in ASPECTS[device.family]))
        last = plan(config, device) if config is not None else last
        if config is not None and last.fits:
            return config
    if last is None:
        budget = f"{device.bram} block RAMs" if device.bram_budget == device.bram else \
            f"{device.bram_budget} of its {device.bram} block RAMs may be filled"
        raise FitError(f"no PE count leaves block RAM for the sparse matrix on this device ({budget}); a smaller "
                       f"network or a larger device is needed")
    last.check()
    raise AssertionError("unreachable")


def _fill(depth: int, width: int, family: str) -> int:
    """``depth`` rounded up to what the block RAMs it takes hold anyway."""
    blocks = bram_blocks(depth, width, family)
    return max(depth, _deepest(width, blocks, family)) if blocks else depth


def _sized(device: Device, base: EIEConfig, n: int, shape, mat_blocks: int | None = None) -> EIEConfig | None:
    family = device.family

    def one_set(width: int) -> int:
        return _deepest(width, min(-(-width // w) for _, w in ASPECTS[family]), family)

    if shape:
        rows = max(-(-max(n_in, n_out) // n) for n_in, n_out in shape)
        bias = sum(-(-n_out // n) for _, n_out in shape)
        ptrs = sum(n_in + 1 for n_in, _ in shape)
        layers = len(shape)
    else:
        rows, bias, ptrs, layers = one_set(base.acc_bits), one_set(base.acc_bits), 2 * one_set(base.ptr_bits), \
            base.max_layers
    rows = _fill(rows, base.acc_bits, family)
    bias = _fill(bias, base.acc_bits, family)
    ptr = 2 * _fill(-(-ptrs // 2), base.ptr_bits, family)
    fixed = base.replace(n_pe=n, mat_depth=1, max_rows_per_pe=rows, bias_depth=bias, ptr_depth=ptr,
                         max_layers=layers)
    used = _blocks([m for m in memories(fixed) if m.name != "sparse matrix"], family)
    mat = _deepest(base.word_bits, (device.bram_budget - used) // n if mat_blocks is None else mat_blocks, family)
    if mat < 1:
        return None
    ptr_bits = max(base.ptr_bits, (mat * base.entries_per_word).bit_length())
    return fixed.replace(mat_depth=mat, ptr_bits=ptr_bits)
