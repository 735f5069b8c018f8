"""The sparse-matrix read unit of a PE (EIE section III-B)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from eie.hw.layouts import ConfiguredComponent, Widths, WritePortSignature, check_config, entry_layout, job_layout
from eie.hw.pointer_read import check_init

__all__ = ["SparseMatrixReadUnit", "JOB_FIFO_DEPTH", "UNIT_FIFO_DEPTH", "FIRST_ENTRY_LATENCY"]

JOB_FIFO_DEPTH = 2
#: Entry units in the FIFO between the SRAM read and the padding folder: enough for one unit per
#: cycle with two reads in flight.
UNIT_FIFO_DEPTH = 4
#: Cycles from a job's handshake (unit idle, job FIFO of depth <= 2) to its first entry on ``o``.
FIRST_ENTRY_LATENCY = 6


class SparseMatrixReadUnit(ConfiguredComponent):
    """Stream the non-padding ``(v, z)`` entries of queued column jobs, one per cycle, with the
    padding entries folded into the relative index of the entry after them.

    **Jobs.** Column jobs ``(start, end, value)`` from the pointer read unit are registered (they
    come from block-RAM outputs) and enter a job FIFO of ``job_depth`` jobs (the PE's queue of
    non-empty columns; a :class:`~amaranth.lib.fifo.SyncFIFOBuffered`, i.e. block RAM, above two
    jobs). Empty columns (``start == end``) are dropped on the way in, so they never cost a cycle.
    ``job.ready`` depends on registers only.

    **Fetch.** The issue stage walks the current column word by word and lane by lane (``start``
    is split into word and lane once per column) and issues a *unit* per cycle: two consecutive
    entries when both belong to the column and sit in one SRAM word, else one. In the cycle it
    issues a column's last unit, the next cycle issues the first unit of the job at the head of
    the job FIFO. The sparse-matrix SRAM (``mat_depth`` words of ``word_bits``, synchronous read,
    i.e. block RAM) is read once per unit and the word registered; the unit's entries are
    selected from it, decoded (``v == 0``: padding) and written into a ``UNIT_FIFO_DEPTH``-unit
    FIFO. A unit is issued only while the FIFO has room for it and the reads in flight.

    **Padding folder.** Each cycle the folder takes the unit at the FIFO head and registers at
    most one entry on ``o``. A padding entry (``v == 0``; the codebook's entry 0 is the zero
    weight, so it adds nothing) is never sent: its ``z + 1`` is added to the relative index of
    the next sent entry of the column, so ``z`` on ``o`` is the distance, in rows, from the
    previous sent entry (minus one) or, with ``first``, the row itself. Costs, in folder cycles
    per unit: a real entry alone or with a padding (either order) 1, two real entries 2, padding
    only 1 (nothing sent; only a unit of two paddings, or a padding that is a column's last entry
    of its word, costs a cycle). Paddings at the end of a column are dropped.

    Latency: a job offered to an idle unit at cycle ``t`` produces its first entry at
    ``t + FIRST_ENTRY_LATENCY`` (6: input register, job FIFO, issue, SRAM read, word register,
    unit FIFO, output register; one more with a job FIFO deeper than two). Throughput: one
    non-padding entry per cycle. Back-pressure: none downstream (the arithmetic unit never
    stalls); upstream ``job.ready`` is low while the job FIFO is full.

    Parameters
    ----------
    config : EIEConfig
    init : list of int, optional
        Initial sparse-matrix words (the image), for bitstreams.
    job_depth : int
        Column jobs the job FIFO holds (``>= 1``; default ``JOB_FIFO_DEPTH``).

    Attributes
    ----------
    job : In(stream.Signature(job_layout))
        Column jobs.
    o : Out(stream.Signature(entry_layout, always_ready=True))
        Entries ``(v, z, first, act)``, padding folded into ``z``; ``first`` marks the first sent
        entry of a column.
    w : In(WritePortSignature)
        I/O-mode write of sparse-matrix word ``w.addr``.
    hold : In(1)
        No unit is issued while high (jobs still queue up): the PE holds its MACs while its
        write-back uses the arithmetic unit or the codebook is being loaded.
    busy : Out(1)
        A job is queued or entries are in flight.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`EIEConfig` or ``job_depth`` not an integer.
    ValueError
        ``init`` does not fit the sparse-matrix memory or ``job_depth < 1``.
    """

    def __init__(self, *, config, init=None, job_depth=JOB_FIFO_DEPTH):
        config = check_config(config)
        if not isinstance(job_depth, int) or isinstance(job_depth, bool):
            raise TypeError(f"job_depth must be an integer, not {job_depth!r}")
        if job_depth < 1:
            raise ValueError(f"job_depth must be >= 1, not {job_depth}")
        self._init = check_init("sparse-matrix init", init, config.mat_depth, config.word_bits)
        self._config = config
        self._job_depth = job_depth
        w = Widths(config)
        super().__init__({
            "job": In(stream.Signature(job_layout(config))),
            "o": Out(stream.Signature(entry_layout(config), always_ready=True)),
            "w": In(WritePortSignature(w.mat_addr, config.word_bits)),
            "hold": In(1),
            "busy": Out(1),
        })

    @property
    def job_depth(self):
        return self._job_depth

    def elaborate(self, platform):
        m = Module()
        c = self._config
        w = Widths(c)
        per_word = c.entries_per_word
        z_w = entry_layout(c)["z"].shape.width
        pending = data.StructLayout({
            "word": unsigned(w.mat_addr + 1),
            "lane": unsigned(w.lane),
            "count": unsigned(c.ptr_bits),
            "value": unsigned(c.act_bits),
        })

        # Job FIFO: split start into (word, lane) once per column, drop empty columns.
        fifo_class = SyncFIFOBuffered if self._job_depth > 2 else SyncFIFO
        m.submodules.jobs = jobs = fifo_class(width=pending.size, depth=self._job_depth)
        # Input register: the pointers come straight from block RAM outputs.
        job_valid = Signal()
        job = Signal(job_layout(c))
        m.d.comb += self.job.ready.eq(~job_valid | jobs.w_rdy)
        with m.If(self.job.ready):
            m.d.sync += [job_valid.eq(self.job.valid), job.eq(self.job.payload)]
        push = Signal(pending)
        count = Signal(c.ptr_bits)
        start = job.start
        m.d.comb += count.eq(job.end - start)
        if per_word & (per_word - 1) == 0:
            shift = per_word.bit_length() - 1
            m.d.comb += [push.word.eq(start >> shift), push.lane.eq(start[:max(shift, 1)] if shift
                                                                  else 0)]
        else:
            m.d.comb += [push.word.eq(start // per_word), push.lane.eq(start % per_word)]
        m.d.comb += [
            push.count.eq(count),
            push.value.eq(job.value),
            jobs.w_data.eq(push),
            jobs.w_en.eq(job_valid & (count != 0)),
        ]

        # Unit FIFO between the SRAM read and the folder (declared here: it gates the issue).
        unit_layout = data.StructLayout({
            "v0": unsigned(c.weight_bits), "z0": unsigned(z_w),
            "v1": unsigned(c.weight_bits), "z1": unsigned(z_w),
            "pad0": unsigned(1), "pad1": unsigned(1), "pair": unsigned(1), "first": unsigned(1),
            "fold": unsigned(z_w), "skip": unsigned(z_w), "act": unsigned(c.act_bits),
        })
        m.submodules.units = units = SyncFIFO(width=unit_layout.size, depth=UNIT_FIFO_DEPTH)
        read_valid, word_valid = Signal(), Signal()

        # Issue stage: continue the current column, else start the job at the FIFO head; one or
        # two entries of one word per cycle.
        head = data.View(pending, jobs.r_data)
        cur_valid = Signal()
        cur = Signal(pending)
        room = Signal()
        m.d.comb += room.eq((units.level + read_valid + word_valid < UNIT_FIFO_DEPTH) & ~self.hold)
        issue_valid = Signal()
        issue = Signal(pending)
        issue_first = Signal()
        issue_pair = Signal()
        with m.If(room):
            with m.If(cur_valid):
                m.d.comb += [issue_valid.eq(1), issue.eq(cur)]
            with m.Elif(jobs.r_rdy):
                m.d.comb += [issue_valid.eq(1), issue.eq(head), issue_first.eq(1), jobs.r_en.eq(1)]
        if per_word > 1:
            m.d.comb += issue_pair.eq((issue.count > 1) & (issue.lane != per_word - 1))
        with m.If(issue_valid):
            next_lane = Signal(w.lane + 1)
            wrap = Signal()
            m.d.comb += [next_lane.eq(issue.lane + 1 + issue_pair), wrap.eq(next_lane == per_word)]
            m.d.sync += [
                cur_valid.eq(issue.count > 1 + issue_pair),
                cur.count.eq(issue.count - 1 - issue_pair),
                cur.value.eq(issue.value),
                cur.lane.eq(Mux(wrap, 0, next_lane)),
                cur.word.eq(issue.word + wrap),
            ]

        m.submodules.mem = mem = Memory(shape=c.word_bits, depth=c.mat_depth, init=self._init)
        wr = mem.write_port()
        rd = mem.read_port()
        m.d.comb += [
            wr.en.eq(self.w.en), wr.addr.eq(self.w.addr), wr.data.eq(self.w.data),
            rd.addr.eq(issue.word),
        ]

        # Read stage; the word is registered (block RAM output), then the unit's entries are
        # selected and decoded into the unit FIFO.
        meta = data.StructLayout({"lane": unsigned(w.lane), "pair": unsigned(1),
                                  "first": unsigned(1), "act": unsigned(c.act_bits)})
        read_meta = Signal(meta)
        m.d.sync += [
            read_valid.eq(issue_valid),
            read_meta.lane.eq(issue.lane), read_meta.pair.eq(issue_pair),
            read_meta.first.eq(issue_first), read_meta.act.eq(issue.value),
        ]
        word = Signal(c.word_bits)
        word_meta = Signal(meta)
        m.d.sync += [word_valid.eq(read_valid), word.eq(rd.data), word_meta.eq(read_meta)]
        e0 = word.word_select(word_meta.lane, c.entry_bits)
        unit = Signal(unit_layout)
        m.d.comb += [
            unit.v0.eq(e0[:c.weight_bits]), unit.z0.eq(e0[c.weight_bits:]),
            unit.pad0.eq(unit.v0 == 0),
            unit.pair.eq(word_meta.pair), unit.first.eq(word_meta.first), unit.act.eq(word_meta.act),
        ]
        if per_word > 1:
            # Lane + 1 is in the word whenever the unit is a pair.
            e1 = word.word_select(word_meta.lane + 1, c.entry_bits)
            m.d.comb += [unit.v1.eq(e1[:c.weight_bits]), unit.z1.eq(e1[c.weight_bits:])]
        m.d.comb += [
            unit.pad1.eq(unit.v1 == 0),
            # A padding then a real entry: the real entry's distance from before the padding.
            unit.fold.eq(unit.z0 + 1 + unit.z1),
            # Every entry of the unit a padding: the rows they skip.
            unit.skip.eq(unit.z0 + 1 + Mux(unit.pair, unit.z1 + 1, 0)),
            units.w_data.eq(unit),
            units.w_en.eq(word_valid),
        ]

        # Padding folder: at most one entry out per cycle.
        u = data.View(unit_layout, units.r_data)
        half = Signal()        # the unit's first entry has been sent, its second is due
        skipped = Signal(z_w)  # rows skipped by paddings since the column's last sent entry
        owed_first = Signal()  # the column has sent nothing yet
        base = Signal(z_w)
        is_first = Signal()
        column_start = u.first & ~half
        m.d.comb += [base.eq(Mux(column_start, 0, skipped)),
                     is_first.eq(Mux(column_start, 1, owed_first))]
        send = Signal()
        send_v = Signal(c.weight_bits)
        send_z = Signal(z_w)
        pop = Signal()
        with m.If(units.r_rdy):
            with m.If(half):
                m.d.comb += [send.eq(1), send_v.eq(u.v1), send_z.eq(u.z1), pop.eq(1)]
                m.d.sync += [half.eq(0), skipped.eq(0), owed_first.eq(0)]
            with m.Elif(~u.pad0):
                m.d.comb += [send.eq(1), send_v.eq(u.v0), send_z.eq(base + u.z0)]
                m.d.sync += owed_first.eq(0)
                with m.If(u.pair & ~u.pad1):
                    m.d.sync += [half.eq(1), skipped.eq(0)]
                with m.Else():
                    m.d.comb += pop.eq(1)
                    m.d.sync += skipped.eq(Mux(u.pair, u.z1 + 1, 0))
            with m.Elif(u.pair & ~u.pad1):
                m.d.comb += [send.eq(1), send_v.eq(u.v1), send_z.eq(base + u.fold), pop.eq(1)]
                m.d.sync += [skipped.eq(0), owed_first.eq(0)]
            with m.Else():
                m.d.comb += pop.eq(1)
                m.d.sync += [skipped.eq(base + u.skip), owed_first.eq(is_first)]
        m.d.comb += units.r_en.eq(pop)

        out_valid = Signal()
        out = Signal(entry_layout(c))
        m.d.sync += [
            out_valid.eq(send),
            out.v.eq(send_v),
            out.z.eq(send_z),
            out.first.eq(is_first),
            out.act.eq(u.act),
        ]
        m.d.comb += [
            self.o.valid.eq(out_valid),
            self.o.payload.eq(out),
            # (The job FIFO's level, not r_rdy: a buffered FIFO is not readable in the cycle
            # after a write into its empty inner FIFO.)
            self.busy.eq(job_valid | (jobs.level != 0) | cur_valid | read_valid | word_valid | units.r_rdy
                         | out_valid),
        ]
        return m
