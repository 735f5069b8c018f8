"""The sparse-matrix read unit of a PE (EIE section III-B)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from eie.hw.layouts import ConfiguredComponent, Widths, WritePortSignature, check_config, entry_layout, job_layout
from eie.hw.pointer_read import check_init

__all__ = ["SparseMatrixReadUnit"]

JOB_FIFO_DEPTH = 2


class SparseMatrixReadUnit(ConfiguredComponent):
    """Stream the ``(v, z)`` entries of queued column jobs, one entry per cycle.

    Column jobs ``(start, end, value)`` from the pointer read unit are registered (they come
    from block-RAM outputs) and enter a small job FIFO (``JOB_FIFO_DEPTH``). Empty columns
    (``start == end``) are dropped on the way in, so they never cost a cycle of the entry
    stream. (An empty job waits only while the FIFO is full, i.e. while queued work keeps the
    stream busy; the ready path depends on registers only.) The issue stage walks the current
    column word by word and lane by lane (no division per entry: ``start`` is split into word
    and lane once per column) and, in the cycle it issues a column's last entry, the next cycle
    issues the first entry of the job at the head of the FIFO: the entry stream has no bubble
    between columns while jobs are queued.

    The sparse-matrix SRAM (``mat_depth`` words of ``word_bits``, synchronous read port, i.e.
    block RAM) is read once per issued entry; the word is registered, then the entry selected
    from it is registered.

    Latency: an entry appears at ``o`` three cycles after it is issued; a job offered to an idle
    unit at cycle ``t`` produces its first entry at ``t + 5`` (input register, FIFO, issue, SRAM
    read, word register, entry register). Throughput: one entry per cycle. Back-pressure: none
    downstream (the arithmetic unit never stalls); upstream ``job.ready`` is low while the job
    FIFO is full.

    Parameters
    ----------
    config : EIEConfig
    init : list of int, optional
        Initial sparse-matrix words (the image), for bitstreams.

    Attributes
    ----------
    job : In(stream.Signature(job_layout))
        Column jobs.
    o : Out(stream.Signature(entry_layout, always_ready=True))
        Entries ``(v, z, first, act)``; ``first`` marks the first entry of a column.
    w : In(WritePortSignature)
        I/O-mode write of sparse-matrix word ``w.addr``.
    busy : Out(1)
        A job is queued or entries are in flight.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`EIEConfig`.
    ValueError
        ``init`` does not fit the sparse-matrix memory.
    """

    def __init__(self, *, config, init=None):
        config = check_config(config)
        self._init = check_init("sparse-matrix init", init, config.mat_depth, config.word_bits)
        self._config = config
        w = Widths(config)
        super().__init__({
            "job": In(stream.Signature(job_layout(config))),
            "o": Out(stream.Signature(entry_layout(config), always_ready=True)),
            "w": In(WritePortSignature(w.mat_addr, config.word_bits)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = self._config
        w = Widths(c)
        per_word = c.entries_per_word
        pending = data.StructLayout({
            "word": unsigned(w.mat_addr + 1),
            "lane": unsigned(w.lane),
            "count": unsigned(c.ptr_bits),
            "value": unsigned(c.act_bits),
        })

        # Job FIFO: split start into (word, lane) once per column, drop empty columns.
        m.submodules.jobs = jobs = SyncFIFO(width=pending.size, depth=JOB_FIFO_DEPTH)
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

        # Issue stage: continue the current column, else start the job at the FIFO head.
        head = data.View(pending, jobs.r_data)
        cur_valid = Signal()
        cur = Signal(pending)
        issue_valid = Signal()
        issue = Signal(pending)
        issue_first = Signal()
        with m.If(cur_valid):
            m.d.comb += [issue_valid.eq(1), issue.eq(cur)]
        with m.Elif(jobs.r_rdy):
            m.d.comb += [issue_valid.eq(1), issue.eq(head), issue_first.eq(1), jobs.r_en.eq(1)]
        with m.If(issue_valid):
            last_lane = issue.lane == per_word - 1
            m.d.sync += [
                cur_valid.eq(issue.count != 1),
                cur.count.eq(issue.count - 1),
                cur.value.eq(issue.value),
                cur.lane.eq(0 if per_word == 1 else
                            (issue.lane + 1) & ~last_lane.replicate(w.lane)),
                cur.word.eq(issue.word + last_lane),
            ]

        m.submodules.mem = mem = Memory(shape=c.word_bits, depth=c.mat_depth, init=self._init)
        wr = mem.write_port()
        rd = mem.read_port()
        m.d.comb += [
            wr.en.eq(self.w.en), wr.addr.eq(self.w.addr), wr.data.eq(self.w.data),
            rd.addr.eq(issue.word),
        ]

        # Read stage; the word is registered (block RAM output), then the selected entry.
        read_valid = Signal()
        read_lane = Signal(w.lane)
        read_first = Signal()
        read_act = Signal(c.act_bits)
        m.d.sync += [
            read_valid.eq(issue_valid),
            read_lane.eq(issue.lane),
            read_first.eq(issue_first),
            read_act.eq(issue.value),
        ]
        word_valid = Signal()
        word = Signal(c.word_bits)
        word_lane = Signal(w.lane)
        word_first = Signal()
        word_act = Signal(c.act_bits)
        m.d.sync += [
            word_valid.eq(read_valid),
            word.eq(rd.data),
            word_lane.eq(read_lane),
            word_first.eq(read_first),
            word_act.eq(read_act),
        ]
        entry = word.word_select(word_lane, c.entry_bits)
        out_valid = Signal()
        out = Signal(entry_layout(c))
        m.d.sync += [
            out_valid.eq(word_valid),
            out.v.eq(entry[:c.weight_bits]),
            out.z.eq(entry[c.weight_bits:]),
            out.first.eq(word_first),
            out.act.eq(word_act),
        ]
        m.d.comb += [
            self.o.valid.eq(out_valid),
            self.o.payload.eq(out),
            self.busy.eq(job_valid | jobs.r_rdy | cur_valid | read_valid | word_valid | out_valid),
        ]
        return m
