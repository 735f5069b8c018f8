"""A fast cycle model of the EIE array: the RTL's cycles per layer and per input, without the RTL.

The model follows one input vector through every layer as the hardware does (``hw/accelerator.py``
and the PE units), but advances per *broadcast* instead of per cycle, so its cost is
``O(non-zero activations · n_pe / vector width)`` per layer whatever the PE count (1 to 256 PEs).
Every time below is an absolute clock cycle; a unit's timing is a max-plus recurrence over the
broadcasts, vectorised over the PEs.

**Central control** (one layer). ``SETUP`` and ``LATCH`` (which waits for the codebook copy,
``2^weight_bits + 1`` cycles after it starts), ``SCAN_START`` at ``T0``, ``COMPUTE`` from ``T0 + 1``
until one cycle after every scanner, the broadcast register and every PE went quiet (the flags are
registered), ``WB_START``, the write-back sweep, and ``WB_WAIT`` (again a registered idle flag).

**Source scanners and the LNZD** (EIE III-A). PE ``p``'s scanner reads local element ``k`` (global
``j = k·n_pe + p``) at most once per cycle from ``T0 + 1``; a non-zero reaches its 4-entry candidate
FIFO two cycles later and can be granted the cycle after. A read issues only while the FIFO, the
reads in flight included, has room (:class:`_Scanner`). The LNZD grants the **lowest-numbered PE**
with a candidate, in a cycle when the broadcast register is empty or being written.

**Broadcast** (:func:`_broadcast_step`). The register writes activation ``k`` into every queue in
the first cycle ``W(k) > grant`` in which *all* queues have room; this is where one busy PE stalls
the array.

**A PE** (EIE III-B), per broadcast ``k`` and PE ``p``: the activation queue (``queue_depth``; a
register FIFO for depths 1-2, read the cycle after the write; a block-RAM FIFO with an output
register above, read two cycles after), the pointer read register, the sparse-matrix read unit's
job register and 2-entry job FIFO (empty columns pass the job register but never enter the FIFO),
and the issue stage, which streams a column's entries one per cycle with no bubble between queued
columns. An entry reaches the accumulator write ``ENTRY_TO_IDLE`` cycles after it issues.

**Padding.** A padding entry (``v = 0``) costs ``HardwareTiming.padding_cost`` issue cycles (1 on
the hardware that streams it like any entry). **Write-back**: ``ceil(n_out / n_pe)`` rows, one per
cycle, then the clear and requantiser pipeline (``WB_TAIL``).

**Output streaming.** After the last layer, one output per cycle (``OUTPUT_LATENCY`` to the first).

The per-layer figures are measured as the testbench measures them (``tb/driver.py``): layer ``l``
runs from the cycle the ``layer`` port changes to ``l`` (layer 0: from the last input's handshake)
to the cycle it changes again; the last layer ends at its first output.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from eie.sim.golden import golden_layers
from eie.spec.config import EIEConfig
from eie.spec.image import Images, encode_layer

__all__ = ["HardwareTiming", "CURRENT_HARDWARE", "LayerTiming", "ModelResult", "column_work",
           "layer_compute", "network_cycles", "model_cycles", "work_from_index",
           "steady_state_ideal"]

NEVER = -(1 << 40)      # "long ago": the time of an event that has not happened


@dataclass(frozen=True)
class HardwareTiming:
    """The timing facts of one version of the RTL that the model needs.

    Attributes
    ----------
    padding_cost : int
        Issue cycles a padding entry (``v = 0``) costs in the sparse-matrix read unit (1: streamed
        like a real entry; 0: folded into the next entry's address).
    candidate_depth : int
        Entries of a source scanner's candidate FIFO (reads in flight included).
    scan_read_latency : int
        Cycles from a scanner read to its candidate entering the FIFO.
    job_fifo_depth : int
        Column jobs the sparse-matrix read unit queues behind its job register.
    entry_to_idle : int
        Cycles from an entry's issue to the last cycle its PE reports busy (SRAM read, word and
        entry registers, then the arithmetic unit's three stages).
    wb_tail : int
        Cycles from the last write-back row's issue to the last busy cycle (clear latency 4 and
        the requantiser's 2).
    layer_start : int
        Cycles from a layer's first cycle (``SETUP``) to ``SCAN_START`` when the codebook is ready.
    quiet_to_wb : int
        Cycles from the first quiet cycle of ``COMPUTE`` to ``WB_START`` (the registered flag).
    wb_to_next : int
        Cycles from the last busy cycle of the write-back to the next layer's first cycle.
    output_latency : int
        Cycles from the last layer's end of write-back to its first output's handshake.
    last_input_offset, first_output_offset : int
        Calibration of the testbench's observation points (cycle of the last input's handshake
        and of the first output's) against the model's cycle numbers.
    """

    padding_cost: int = 1
    candidate_depth: int = 4
    scan_read_latency: int = 2
    job_fifo_depth: int = 2
    entry_to_idle: int = 6
    wb_tail: int = 6
    layer_start: int = 2
    quiet_to_wb: int = 2
    wb_to_next: int = 3
    output_latency: int = 4
    last_input_offset: int = 0
    first_output_offset: int = 0

    def replace(self, **kw) -> HardwareTiming:
        return replace(self, **kw)


#: The RTL at the commit this model was validated against (padding entries cost a cycle each,
#: the write-back is not overlapped with the next layer).
CURRENT_HARDWARE = HardwareTiming()


@dataclass(frozen=True)
class LayerTiming:
    """One layer for one input: ``cycles`` as the testbench measures them and their parts."""

    cycles: int
    compute: int           # SCAN_START to the first quiet cycle
    broadcasts: int        # non-zero input activations
    busiest: int           # the busiest PE's issue cycles
    total: int             # all PEs' issue cycles
    stall_cycles: int      # cycles the broadcast register waited for a full queue
    writeback: int         # rows of the busiest PE


@dataclass(frozen=True)
class ModelResult:
    """``layer_cycles`` ``(batch, n_layers)`` and ``cycles`` ``(batch,)`` as
    :class:`eie.tb.sim_run.SimResult` reports them; ``layers[b][l]`` the details."""

    layer_cycles: np.ndarray
    cycles: np.ndarray
    output_phase: np.ndarray
    layers: list


def column_work(images: Images, l: int, padding_cost: int = 1) -> np.ndarray:
    """``(n_pe, n_in)`` issue cycles of every PE's share of every column of layer ``l``: its real
    entries plus ``padding_cost`` per padding entry (``v == 0``)."""
    cfg = images.config
    info = images.layers[l]
    mask = (1 << cfg.weight_bits) - 1
    out = np.zeros((cfg.n_pe, info.n_in), dtype=np.int64)
    for p in range(cfg.n_pe):
        ptr = np.asarray(images.ptr[p][info.ptr_base:info.ptr_base + info.n_in + 1], dtype=np.int64)
        counts = np.diff(ptr)
        if padding_cost == 1 or ptr[-1] == ptr[0]:
            out[p] = counts
            continue
        real = (images.entries(p)[ptr[0]:ptr[-1]] & mask) != 0
        csum = np.concatenate(([0], np.cumsum(real)))
        n_real = csum[ptr[1:] - ptr[0]] - csum[ptr[:-1] - ptr[0]]
        out[p] = n_real + padding_cost * (counts - n_real)
    return out


class _Scanner:
    """One PE's source scanner and candidate FIFO, advanced lazily.

    Reads issue at most once per cycle while ``level + reads in flight < candidate_depth``; a
    non-zero read is written into the FIFO ``scan_read_latency`` cycles after its issue and can be
    granted one cycle later. Grants (pops) come in increasing time, so every read up to the
    current grant's cycle is determined by the pops already known.
    """

    __slots__ = ("nz", "n", "k", "last1", "last2", "fifo", "now", "depth", "lat", "last_pop",
                 "next_nz")

    def __init__(self, nonzero: np.ndarray, t_first: int, timing: HardwareTiming):
        self.nz = nonzero.tolist()
        self.n = len(self.nz)
        nxt = np.full(self.n + 1, self.n, dtype=np.int64)     # first non-zero position >= k
        idx = np.flatnonzero(nonzero)
        if idx.size:
            pos = np.searchsorted(idx, np.arange(self.n + 1))
            ok = pos < idx.size
            nxt[ok] = idx[pos[ok]]
        self.next_nz = nxt.tolist()
        self.k = 0
        self.last1 = self.last2 = NEVER
        self.fifo: deque = deque()   # (write cycle, local index) of candidates not yet granted
        self.now = t_first           # reads before this cycle are decided
        self.depth = timing.candidate_depth
        self.lat = timing.scan_read_latency
        self.last_pop = NEVER

    def advance(self, t_end: int) -> None:
        """Issue every read that can issue at a cycle ``<= t_end``."""
        lat = self.lat
        while self.k < self.n:
            t = max(self.now, self.last1 + 1)
            if t > t_end:
                return
            level = 0
            for w, _ in self.fifo:
                if w >= t:
                    break
                level += 1
            flying = [x for x in (self.last1, self.last2) if t - lat <= x < t]
            if level + len(flying) < self.depth:
                if self.nz[self.k]:
                    self.fifo.append((t + lat, self.k))
                self.last2, self.last1 = self.last1, t
                self.k += 1
                self.now = t + 1
            elif any(all(w != x + lat for w, _ in self.fifo) for x in flying):
                self.now = t + 1        # a zero read lands: room in a later cycle
            else:
                self.now = max(self.now, t_end + 1)   # blocked until the next grant
                return
        self.now = max(self.now, t_end + 1)

    def head(self) -> int:
        """Cycle from which the next ungranted candidate can be granted (huge if none)."""
        if self.fifo:
            return self.fifo[0][0] + 1
        m = self.next_nz[self.k]
        if m >= self.n:
            return 1 << 50
        return max(self.now, self.last1 + 1) + (m - self.k) + self.lat + 1

    def pop(self, g: int) -> int:
        """The LNZD grants the head candidate in cycle ``g``; returns its local index."""
        self.advance(g)
        _, k = self.fifo.popleft()
        self.last_pop = g
        return k

    def done(self) -> int:
        """First cycle ``scan_done`` is high, once every candidate was granted."""
        self.advance(1 << 50)
        if self.n == 0:
            return -(1 << 50)
        return max(self.last1 + self.lat + 1, self.last_pop + 1)


def layer_compute(work: np.ndarray, a_in: np.ndarray, t0: int, queue_depth: int,
                  timing: HardwareTiming = CURRENT_HARDWARE):
    """Compute phase of one layer for one input, ``SCAN_START`` in cycle ``t0``.

    ``work`` ``(n_pe, n_in)`` holds every PE's issue cycles per column (:func:`column_work`),
    ``a_in`` ``(n_in,)`` the input activations (only which are non-zero matters). Returns
    ``(quiet, broadcasts, busiest, total, stall_cycles)``: ``quiet`` is the first cycle in which
    every scanner, the broadcast register and every PE are idle; ``stall_cycles`` counts the cycles
    the broadcast register held an activation because a queue was full.
    """
    n_pe = work.shape[0]
    depth = queue_depth
    a_in = np.asarray(a_in)
    scanners = [_Scanner(a_in[p::n_pe] != 0, t0 + 1, timing) for p in range(n_pe)]
    heads = np.array([s.head() for s in scanners], dtype=np.int64)

    buffered = depth > 2
    ring = depth - 1 if buffered else depth          # history entries that gate a queue write
    hist = np.full((ring, n_pe), NEVER, dtype=np.int64)
    r_prev = np.full(n_pe, NEVER, dtype=np.int64)
    j_prev = np.full(n_pe, NEVER, dtype=np.int64)
    f_prev = np.full(n_pe, NEVER, dtype=np.int64)
    s_hist = np.full((timing.job_fifo_depth, n_pe), NEVER, dtype=np.int64)  # newest first
    end_prev = np.full(n_pe, NEVER, dtype=np.int64)
    issued = np.zeros(n_pe, dtype=np.int64)
    w_prev = NEVER
    stalls = 0
    n_bcast = int(np.count_nonzero(a_in))
    for k in range(n_bcast):
        # LNZD: the lowest-numbered PE with a candidate, once the broadcast register is free.
        g = max(w_prev, int(heads.min()))
        p = int(np.argmax(heads <= g))
        sc = scanners[p]
        j = sc.pop(g) * n_pe + p
        heads[p] = sc.head()
        # Broadcast register -> every queue, once all have room.
        slot = k % ring
        w = max(g + 1, int(hist[slot].max()) + 1)
        stalls += w - (g + 1)
        w_prev = w
        c = work[:, j]
        # Queue read (r), pointer register -> job register (jj), job register -> job FIFO (f).
        if buffered:
            m = np.maximum(w + 1, r_prev)       # inner FIFO -> output register
            r = np.maximum(m + 1, j_prev)
            hist[slot] = m
        else:
            r = np.maximum(w + 1, j_prev)
            hist[slot] = r
        jj = np.maximum(r + 1, f_prev)
        f = np.maximum(jj + 1, s_hist[-1] + 1)
        # Issue stage: a non-empty column starts once it is at the FIFO head and the previous ends.
        busy_col = c > 0
        if busy_col.any():
            s = np.maximum(f + 1, end_prev)
            s_hist = np.where(busy_col, np.vstack([s[None, :], s_hist[:-1]]), s_hist)
            end_prev = np.where(busy_col, s + c, end_prev)
            issued += c
        r_prev, j_prev, f_prev = r, jj, f
    pe_idle = np.maximum(end_prev - 1 + timing.entry_to_idle, f_prev) + 1
    scan_done = max(s.done() for s in scanners)
    quiet = max(int(pe_idle.max()), w_prev + 1, scan_done, t0 + 1)
    return quiet, n_bcast, int(issued.max()), int(issued.sum()), stalls


def network_cycles(works, acts, n_outs, *, queue_depth: int, codebook_size: int,
                   timing: HardwareTiming = CURRENT_HARDWARE) -> tuple[list[LayerTiming], int]:
    """Cycles of one input through a chain of layers, as the testbench measures them.

    ``works[l]`` is layer ``l``'s :func:`column_work`, ``acts[l]`` its input ``(n_in,)`` and
    ``n_outs[l]`` its rows. Returns the per-layer :class:`LayerTiming` (the last layer ends at the
    first output's handshake) and the output phase (first output to ``done``).
    """
    n_pe = works[0].shape[0]
    n_in = works[0].shape[1]
    # cycle 0: the last input's handshake; the first one's, n_in - 1 cycles earlier, started the
    # codebook copy of layer 0.
    start = 0
    copy_end = -(n_in - 1) + codebook_size + 1      # last cycle the copy is active
    rows = []
    for l, (work, a, n_out) in enumerate(zip(works, acts, n_outs)):
        latch = max(start + timing.layer_start - 1, copy_end + 1)
        t0 = latch + 1
        quiet, n_b, busiest, total, stalls = layer_compute(work, a, t0, queue_depth, timing)
        wb_start = quiet + timing.quiet_to_wb
        wb_rows = -(-n_out // n_pe)
        end = wb_start + wb_rows + timing.wb_tail + timing.wb_to_next
        copy_end = wb_start + codebook_size + 1
        if l == len(works) - 1:
            end += timing.output_latency + timing.first_output_offset
        cycles = end - start - (timing.last_input_offset if l == 0 else 0)
        rows.append(LayerTiming(cycles=cycles, compute=quiet - t0, broadcasts=n_b, busiest=busiest,
                                total=total, stall_cycles=stalls, writeback=wb_rows))
        start = end
    return rows, n_outs[-1] - 1


def model_cycles(images: Images, x: np.ndarray, *, queue_depth: int | None = None,
                 timing: HardwareTiming = CURRENT_HARDWARE) -> ModelResult:
    """Predict the RTL's cycles for integer inputs ``x`` ``(batch, n_in)``: per layer and per
    input as :func:`eie.tb.sim_run.simulate` reports them (outputs taken every cycle, inputs
    offered every cycle). ``queue_depth`` defaults to the images' configuration's."""
    cfg = images.config
    depth = cfg.queue_depth if queue_depth is None else queue_depth
    x = np.atleast_2d(np.asarray(x))
    acts = [x] + golden_layers(images, x)[:-1]
    works = [column_work(images, l, timing.padding_cost) for l in range(len(images.layers))]
    n_outs = [info.n_out for info in images.layers]
    per_layer = np.zeros((x.shape[0], len(works)), dtype=np.int64)
    phases = np.zeros(x.shape[0], dtype=np.int64)
    details = []
    for b in range(x.shape[0]):
        rows, phase = network_cycles(works, [a[b] for a in acts], n_outs, queue_depth=depth,
                                     codebook_size=cfg.codebook_size, timing=timing)
        per_layer[b] = [r.cycles for r in rows]
        phases[b] = phase
        details.append(rows)
    return ModelResult(layer_cycles=per_layer, cycles=per_layer.sum(axis=1) + phases,
                       output_phase=phases, layers=details)


def work_from_index(index: np.ndarray, config: EIEConfig, padding_cost: int = 1) -> np.ndarray:
    """:func:`column_work` straight from a layer's index matrix ``(n_out, n_in)`` for ``config``
    (no image files: for sweeps over PE counts)."""
    encoded = encode_layer(index, config)
    out = np.zeros((config.n_pe, index.shape[1]), dtype=np.int64)
    for p, enc in enumerate(encoded):
        counts = np.diff(enc.ptr)
        if padding_cost == 1 or enc.v.size == 0:
            out[p] = counts
            continue
        csum = np.concatenate(([0], np.cumsum(enc.v != 0)))
        n_real = csum[enc.ptr[1:]] - csum[enc.ptr[:-1]]
        out[p] = n_real + padding_cost * (counts - n_real)
    return out


def steady_state_ideal(images: Images, l: int, a_in: np.ndarray, padding_cost: int = 1) -> int:
    """``max(busiest PE's issue cycles, broadcasts)`` for one input: no stall, no latency."""
    work = column_work(images, l, padding_cost)
    nz = np.asarray(a_in) != 0
    return int(max((work[:, nz]).sum(axis=1).max(initial=0), nz.sum()))
