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

That is EIE's PE (:data:`EIE_PADDED`). The committed PE (:data:`FOLDED_PADDING`, see
:class:`_JobQueuePEs`) takes the broadcast straight into the pointer read, queues only non-empty
column jobs, fetches a unit of up to two entries per cycle and folds padding entries away.

**Padding.** On EIE's PE a padding entry (``v = 0``) costs ``HardwareTiming.padding_cost`` issue
cycles (1: streamed like any entry); on the folded PE a unit costs ``max(1, real entries)``.
**Write-back**: ``ceil(n_out / n_pe)`` rows, one per
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

__all__ = ["HardwareTiming", "EIE_PADDED", "FOLDED_PADDING", "WB_OVERLAPPED", "CURRENT_HARDWARE", "ColumnUnits",
           "LayerTiming", "ModelResult", "column_work", "column_units", "layer_work_for", "layer_compute",
           "network_cycles", "model_cycles", "work_from_index", "work_for_index", "steady_state_ideal",
           "hardware_timing"]

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
    pe_queue : str
        ``"activations"``: EIE's queue of ``queue_depth`` activations before the pointer read, every
        column (empty or not) passing the pointer and job registers. ``"jobs"``: the pointer read
        takes the broadcast at once and the queue holds ``queue_depth`` non-empty column jobs.
    fetch : str
        ``"entries"``: one entry (padding included) per cycle. ``"units"``: one *unit* per cycle (two
        consecutive entries of one column and one SRAM word, else one) into a ``unit_fifo_depth``
        FIFO ``unit_latency`` cycles later, drained by a padding folder that spends
        ``max(1, real entries)`` cycles per unit; padding then costs a cycle only in a unit with
        no real entry.
    unit_fifo_depth, unit_latency, folder_to_idle : int
        The ``"units"`` fetch: FIFO depth, cycles from a unit's issue to the folder seeing it, and
        from the folder's last cycle to the last busy cycle of the PE.
    wb_overlap : bool
        The write-back overlaps the next layer (``"jobs"`` PE only): the next layer starts the cycle
        after ``WB_START``; a PE's scanner reads local row ``k`` only once the write-back wrote it
        (``wb_tail + 2`` cycles after the row's clear issued), and a PE issues no unit while its own
        sweep runs or the codebook is being copied; ``COMPUTE`` also waits for the copy.
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
    pe_queue: str = "activations"
    fetch: str = "entries"
    unit_fifo_depth: int = 4
    unit_latency: int = 3
    folder_to_idle: int = 4
    wb_overlap: bool = False

    def replace(self, **kw) -> HardwareTiming:
        return replace(self, **kw)


#: EIE's PE as first built (validated exactly against the RTL of commit 9ddd9b8): a queue of
#: activations before the pointer read, padding entries cost a cycle each, the write-back is not
#: overlapped with the next layer.
EIE_PADDED = HardwareTiming()
#: The PE with padding entries folded away and a queue of column jobs after the pointer read
#: (validated exactly against commit 92fcf5b).
FOLDED_PADDING = HardwareTiming(padding_cost=0, pe_queue="jobs", fetch="units")
#: The folded PE with the write-back overlapped with the next layer (validated exactly against
#: the hardware of commit 5ddd0f7).
WB_OVERLAPPED = FOLDED_PADDING.replace(wb_overlap=True)
#: The hardware the model describes by default: the committed array (5ddd0f7: padding folded, the
#: write-back overlapped). Callers that can import the HDL use :func:`hardware_timing`.
CURRENT_HARDWARE = WB_OVERLAPPED


def hardware_timing(sparse_matrix_read, accelerator=None) -> HardwareTiming:
    """The timing record of the hardware whose sparse-matrix read unit is the module
    ``sparse_matrix_read`` and whose top is ``accelerator`` (pass ``eie.hw.sparse_matrix_read`` and
    ``eie.hw.accelerator``: the caller imports the HDL, the model never does). A unit FIFO before a
    padding folder means :data:`FOLDED_PADDING`; ``WRITEBACK_OVERLAP`` in the top, ``wb_overlap``."""
    units = getattr(sparse_matrix_read, "UNIT_FIFO_DEPTH", None)
    if units is None:
        return EIE_PADDED.replace(job_fifo_depth=int(sparse_matrix_read.JOB_FIFO_DEPTH))
    timing = FOLDED_PADDING.replace(unit_fifo_depth=int(units))
    if getattr(accelerator, "WRITEBACK_OVERLAP", False):
        timing = timing.replace(wb_overlap=True)
    return timing


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
                 "next_nz", "gate")

    def __init__(self, nonzero: np.ndarray, t_first: int, timing: HardwareTiming, gate: int = NEVER):
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
        self.gate = gate             # local element k is readable from cycle gate + k

    def advance(self, t_end: int) -> None:
        """Issue every read that can issue at a cycle ``<= t_end``."""
        lat = self.lat
        while self.k < self.n:
            t = max(self.now, self.last1 + 1, self.gate + self.k)
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
        return max(max(self.now, self.last1 + 1) + (m - self.k), self.gate + m) + self.lat + 1

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


@dataclass(frozen=True)
class ColumnUnits:
    """The ``"units"`` fetch's view of a layer: PE ``p``'s units of column ``j`` are
    ``cost[base[p] + uptr[p, j] : base[p] + uptr[p, j + 1]]`` (folder cycles of each unit, in issue
    order); ``work`` ``(n_pe, n_in)`` is their sum per column."""

    uptr: np.ndarray
    base: np.ndarray
    cost: np.ndarray
    work: np.ndarray

    @property
    def shape(self):
        return self.work.shape


def _units_of_pe(ptr: np.ndarray, real: np.ndarray, per_word: int):
    """Unit pointers per column and unit costs of one PE's share of a layer (see ``fetch``).

    A unit starts at a column's first entry, then every second entry of the first SRAM word and of
    every later word (a word's last lane is a unit of its own when the pairing leaves it alone).
    """
    n_in = ptr.size - 1
    counts = np.diff(ptr)
    n = int(counts.sum())
    if n == 0:
        return np.zeros(n_in + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    col = np.repeat(np.arange(n_in), counts)
    idx = np.arange(ptr[0], ptr[-1])
    o = idx - ptr[col]
    first = per_word - ptr[col] % per_word           # the column's entries in its first word
    q = np.where(o < first, o, (o - first) % per_word)
    start = q % 2 == 0
    unit = np.cumsum(start) - 1
    n_real = np.bincount(unit, weights=real.astype(np.float64), minlength=int(unit[-1]) + 1)
    cost = np.maximum(1, n_real.astype(np.int64))
    uptr = np.zeros(n_in + 1, dtype=np.int64)
    np.cumsum(np.bincount(col[start], minlength=n_in), out=uptr[1:])
    return uptr, cost


def _column_units(ptrs, reals, per_word: int, n_in: int) -> ColumnUnits:
    uptrs, costs = zip(*(_units_of_pe(p, r, per_word) for p, r in zip(ptrs, reals)))
    uptr = np.stack(uptrs)
    base = np.concatenate(([0], np.cumsum([c.size for c in costs])[:-1])).astype(np.int64)
    cost = np.concatenate(costs) if costs else np.zeros(0, dtype=np.int64)
    csum = np.concatenate(([0], np.cumsum(cost)))
    work = csum[base[:, None] + uptr[:, 1:]] - csum[base[:, None] + uptr[:, :-1]]
    return ColumnUnits(uptr=uptr, base=base, cost=cost, work=work)


def column_units(images: Images, l: int) -> ColumnUnits:
    """:class:`ColumnUnits` of layer ``l`` from the images (entries in their stored lanes)."""
    cfg = images.config
    info = images.layers[l]
    mask = (1 << cfg.weight_bits) - 1
    ptrs, reals = [], []
    for p in range(cfg.n_pe):
        ptr = np.asarray(images.ptr[p][info.ptr_base:info.ptr_base + info.n_in + 1], dtype=np.int64)
        ptrs.append(ptr)
        reals.append((images.entries(p)[ptr[0]:ptr[-1]] & mask) != 0)
    return _column_units(ptrs, reals, cfg.entries_per_word, info.n_in)


class _ActivationQueuePEs:
    """EIE's PE front end (``pe_queue == "activations"``), all PEs at once: the activation queue,
    the pointer read register, the job register, the job FIFO of non-empty columns and the issue
    stage streaming ``work[p, j]`` cycles per column."""

    def __init__(self, work: np.ndarray, depth: int, timing: HardwareTiming):
        n_pe = work.shape[0]
        self.work = work
        self.buffered = depth > 2
        self.ring = depth - 1 if self.buffered else depth     # entries gating a queue write
        self.hist = np.full((self.ring, n_pe), NEVER, dtype=np.int64)
        self.r_prev = np.full(n_pe, NEVER, dtype=np.int64)
        self.j_prev = np.full(n_pe, NEVER, dtype=np.int64)
        self.f_prev = np.full(n_pe, NEVER, dtype=np.int64)
        self.s_hist = np.full((timing.job_fifo_depth, n_pe), NEVER, dtype=np.int64)  # newest first
        self.end_prev = np.full(n_pe, NEVER, dtype=np.int64)
        self.issued = np.zeros(n_pe, dtype=np.int64)
        self.timing = timing

    def room(self, k: int) -> int:
        """First cycle every queue can take broadcast ``k``."""
        return int(self.hist[k % self.ring].max()) + 1

    def accept(self, k: int, w: int, j: int) -> None:
        """Broadcast ``k`` (column ``j``) written into every queue in cycle ``w``."""
        c = self.work[:, j]
        slot = k % self.ring
        if self.buffered:
            m = np.maximum(w + 1, self.r_prev)      # inner FIFO -> output register
            r = np.maximum(m + 1, self.j_prev)
            self.hist[slot] = m
        else:
            r = np.maximum(w + 1, self.j_prev)
            self.hist[slot] = r
        jj = np.maximum(r + 1, self.f_prev)           # pointer register -> job register
        f = np.maximum(jj + 1, self.s_hist[-1] + 1)   # job register -> job FIFO (or dropped)
        busy_col = c > 0
        if busy_col.any():
            s = np.maximum(f + 1, self.end_prev)      # the column's first issue
            self.s_hist = np.where(busy_col, np.vstack([s[None, :], self.s_hist[:-1]]), self.s_hist)
            self.end_prev = np.where(busy_col, s + c, self.end_prev)
            self.issued += c
        self.r_prev, self.j_prev, self.f_prev = r, jj, f

    def idle(self) -> int:
        """First cycle in which no PE is busy."""
        last = np.maximum(self.end_prev - 1 + self.timing.entry_to_idle, self.f_prev)
        return int(last.max()) + 1


class _JobQueuePEs:
    """The PE front end with padding folded (``pe_queue == "jobs"``, ``fetch == "units"``), all
    PEs at once: the pointer read takes a broadcast whenever its register is free or moving on,
    the job register, a queue of ``depth`` non-empty column jobs (register FIFO up to 2, block-RAM
    FIFO with an output register above), the unit issue stage (one unit per cycle while the unit
    FIFO, reads in flight included, has room) and the padding folder."""

    def __init__(self, units: ColumnUnits, depth: int, timing: HardwareTiming):
        n_pe = units.shape[0]
        self.u = units
        self.pes = np.arange(n_pe)
        self.buffered = depth > 2
        self.ring = depth - 1 if self.buffered else depth
        self.job_hist = np.full((n_pe, self.ring), NEVER, dtype=np.int64)   # Q (or M) per job slot
        self.n_jobs = np.zeros(n_pe, dtype=np.int64)
        self.q_last = np.full(n_pe, NEVER, dtype=np.int64)
        self.j_prev = np.full(n_pe, NEVER, dtype=np.int64)
        self.f_prev = np.full(n_pe, NEVER, dtype=np.int64)
        self.fifo = timing.unit_fifo_depth
        # The folder-free cycles F = start + cost of the last ``fifo`` units, oldest first: a unit
        # issues only after the one ``fifo`` units before it left the FIFO (F), and the newest F
        # is when the folder can start the next unit.
        self.last_f = np.full((n_pe, self.fifo), NEVER, dtype=np.int64)
        self.i_last = np.full(n_pe, NEVER, dtype=np.int64)
        self.issued = np.zeros(n_pe, dtype=np.int64)
        self.timing = timing
        self.not_before = np.full(n_pe, NEVER, dtype=np.int64)   # no unit issues before (hold)
        if timing.unit_fifo_depth - 1 < timing.unit_latency:
            raise ValueError("the unit FIFO must cover its read latency (unit_fifo_depth - 1 >= "
                             "unit_latency) for the folder to run without gaps inside a column")

    def room(self, k: int) -> int:
        return int(self.j_prev.max())

    def accept(self, k: int, w: int, j: int) -> None:
        pes = self.pes
        jj = np.maximum(w + 1, self.f_prev)           # pointer register -> job register
        slot = self.n_jobs % self.ring
        f = np.maximum(jj + 1, self.job_hist[pes, slot] + 1)   # -> job queue (or dropped)
        lo, hi = self.u.uptr[:, j], self.u.uptr[:, j + 1]
        n_u = hi - lo
        busy = n_u > 0
        if busy.any():
            if self.buffered:
                m = np.maximum(f + 1, self.q_last)    # inner FIFO -> output register
                ready = m + 1
                self.job_hist[pes, slot] = np.where(busy, m, self.job_hist[pes, slot])
            else:
                ready = f + 1
            self._column(n_u, lo, ready, busy)
            if not self.buffered:
                self.job_hist[pes, slot] = np.where(busy, self.q_new, self.job_hist[pes, slot])
            self.q_last = np.where(busy, self.q_new, self.q_last)
            self.n_jobs += busy
        self.j_prev, self.f_prev = jj, f

    def _column(self, n_u, lo, ready, busy) -> None:
        """Issue and fold every PE's units of one column.

        The first unit issues at ``I0 = max(last issue + 1, F of the unit fifo units back, job
        ready)`` and is folded from ``S0 = max(I0 + latency, folder free)``. From then on the folder
        never waits inside the column (the FIFO covers the latency), so ``F_u = S0 + cost_0 + ... +
        cost_u``, and unit ``u`` issues at ``max(I_(u-1) + 1, F_(u-fifo))``, whose last value has
        the closed form ``U - 1 + max(I0, max_v F_(v-fifo) - v)``.
        """
        d = self.fifo
        width = int(n_u.max())
        cols = np.arange(width)
        inside = cols[None, :] < n_u[:, None]
        cost = np.where(inside, self.u.cost[np.where(inside, self.u.base[:, None] + lo[:, None] + cols, 0)], 0)
        i0 = np.maximum(np.maximum(self.i_last + 1, self.last_f[:, 0]), np.maximum(ready, self.not_before))
        s0 = np.maximum(i0 + self.timing.unit_latency, self.last_f[:, -1])
        f_col = s0[:, None] + np.cumsum(cost, axis=1)
        ext = np.concatenate([self.last_f[:, 1:], f_col], axis=1)      # ext[:, v - 1] = F_(v - d)
        v = np.arange(1, width)
        later = np.where(v[None, :] <= n_u[:, None] - 1, ext[:, :width - 1] - v[None, :], NEVER)
        i_end = n_u - 1 + np.maximum(i0, later.max(axis=1, initial=NEVER))
        g = np.concatenate([self.last_f, f_col], axis=1)
        new_last = np.take_along_axis(g, n_u[:, None] + np.arange(d)[None, :], axis=1)
        self.last_f = np.where(busy[:, None], new_last, self.last_f)
        self.i_last = np.where(busy, i_end, self.i_last)
        self.issued += cost.sum(axis=1)
        self.q_new = i0

    def idle(self) -> int:
        last = np.maximum(self.last_f[:, -1] - 1 + self.timing.folder_to_idle, self.f_prev)
        return int(last.max()) + 1


def layer_compute(work, a_in: np.ndarray, t0: int, queue_depth: int,
                  timing: HardwareTiming = CURRENT_HARDWARE, scan_gate: int = NEVER,
                  hold: np.ndarray | None = None):
    """Compute phase of one layer for one input, ``SCAN_START`` in cycle ``t0``.

    ``work`` is the layer's :func:`column_work` ``(n_pe, n_in)`` (issue cycles per PE and column)
    or, for the ``"units"`` fetch, its :class:`ColumnUnits`; ``a_in`` ``(n_in,)`` the input
    activations (only which are non-zero matters). Returns ``(quiet, broadcasts, busiest, total,
    stall_cycles)``: ``quiet`` is the first cycle in which every scanner, the broadcast register
    and every PE are idle; ``stall_cycles`` counts the cycles the broadcast register held an
    activation because a PE could not take it. With the write-back overlapped, ``scan_gate + k`` is
    the first cycle local element ``k`` may be read and ``hold`` ``(n_pe,)`` the first cycle each PE
    may issue a unit.
    """
    n_pe = work.shape[0]
    a_in = np.asarray(a_in)
    scanners = [_Scanner(a_in[p::n_pe] != 0, t0 + 1, timing, scan_gate) for p in range(n_pe)]
    heads = np.array([s.head() for s in scanners], dtype=np.int64)
    if timing.pe_queue == "jobs":
        if not isinstance(work, ColumnUnits):
            raise TypeError("the 'jobs' PE needs the layer's ColumnUnits (column_units)")
        pes = _JobQueuePEs(work, queue_depth, timing)
        if hold is not None:
            pes.not_before = np.asarray(hold, dtype=np.int64)
    else:
        pes = _ActivationQueuePEs(np.asarray(work), queue_depth, timing)
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
        # Broadcast register -> every PE, once all can take it.
        w = max(g + 1, pes.room(k))
        stalls += w - (g + 1)
        w_prev = w
        pes.accept(k, w, j)
    scan_done = max(s.done() for s in scanners)
    quiet = max(pes.idle(), w_prev + 1, scan_done, t0 + 1)
    return quiet, n_bcast, int(pes.issued.max()), int(pes.issued.sum()), stalls


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
    if timing.wb_overlap:
        return _overlapped_cycles(works, acts, n_outs, queue_depth, codebook_size, timing)
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


def _overlapped_cycles(works, acts, n_outs, queue_depth, codebook_size, timing):
    """:func:`network_cycles` with the write-back overlapping the next layer (``wb_overlap``):
    layer ``l`` ends the cycle after its ``WB_START``, which waits for the codebook copy too."""
    n_pe = works[0].shape[0]
    n_in = works[0].shape[1]
    start = 0
    copy_end = -(n_in - 1) + codebook_size + 1
    gate, hold, wb_busy_end = NEVER, np.full(n_pe, copy_end + 1), NEVER
    rows = []
    for l, (work, a, n_out) in enumerate(zip(works, acts, n_outs)):
        t0 = start + timing.layer_start
        quiet, n_b, busiest, total, stalls = layer_compute(work, a, t0, queue_depth, timing,
                                                          scan_gate=gate, hold=hold)
        quiet = max(quiet, wb_busy_end + 1)
        wb_start = max(quiet, copy_end) + timing.quiet_to_wb
        wb_rows = -(-n_out // n_pe)
        if l == len(works) - 1:
            end = (wb_start + wb_rows + timing.wb_tail + timing.wb_to_next + timing.output_latency
                   + timing.first_output_offset)
        else:
            end = wb_start + 1
        cycles = end - start - (timing.last_input_offset if l == 0 else 0)
        rows.append(LayerTiming(cycles=cycles, compute=quiet - t0, broadcasts=n_b, busiest=busiest,
                                total=total, stall_cycles=stalls, writeback=wb_rows))
        # the next layer: rows written from wb_start + 1 on, one per cycle, each visible
        # wb_tail + 1 cycles after its clear; the PE's MACs wait for its sweep and the copy
        pe_rows = np.array([len(range(p, n_out, n_pe)) for p in range(n_pe)], dtype=np.int64)
        copy_end = wb_start + codebook_size + 1
        gate = wb_start + 1 + timing.wb_tail + 1
        hold = np.maximum(wb_start + pe_rows + 2, copy_end + 1)
        wb_busy_end = wb_start + wb_rows + timing.wb_tail
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
    works = [layer_work_for(images, l, timing) for l in range(len(images.layers))]
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


def layer_work_for(images: Images, l: int, timing: HardwareTiming = CURRENT_HARDWARE):
    """What :func:`layer_compute` needs of layer ``l`` on the hardware ``timing`` describes."""
    if timing.fetch == "units":
        return column_units(images, l)
    return column_work(images, l, timing.padding_cost)


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


def work_for_index(index: np.ndarray, config: EIEConfig, timing: HardwareTiming = CURRENT_HARDWARE):
    """:func:`layer_work_for` of a one-layer network straight from its index matrix (the layer's
    entries from lane 0 of word 0, as :func:`eie.spec.emit.write_images` stores a first layer)."""
    if timing.fetch != "units":
        return work_from_index(index, config, timing.padding_cost)
    encoded = encode_layer(index, config)
    return _column_units([enc.ptr for enc in encoded], [enc.v != 0 for enc in encoded],
                         config.entries_per_word, index.shape[1])


def steady_state_ideal(images: Images, l: int, a_in: np.ndarray, padding_cost: int = 1) -> int:
    """``max(busiest PE's issue cycles, broadcasts)`` for one input: no stall, no latency."""
    work = column_work(images, l, padding_cost)
    nz = np.asarray(a_in) != 0
    return int(max((work[:, nz]).sum(axis=1).max(initial=0), nz.sum()))
