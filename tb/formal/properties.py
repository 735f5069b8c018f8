"""The formal properties of the EIE units: harnesses, their proofs and their broken designs.

Each :class:`Property` wraps one component in a harness (free inputs are ``AnySeq``/``AnyConst``,
the environment's obligations are ``Assume``, the claims ``Assert``), names how sby checks it
(k-induction or a bounded check and its depth), and carries at least one :class:`~eie.tb.formal.mutate.Mutant`
that breaks the claim and must make the check fail. ``quick`` properties run in ``make test``;
all of them run in ``make formal``.

Stream rules (valid/ready, as ``amaranth.lib.stream`` defines them): while ``valid & ~ready`` the
producer keeps ``valid`` high and ``payload`` unchanged in the next cycle. They are assumed of
every free input stream and asserted of every producer under proof.
"""

from __future__ import annotations

import linecache
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cat, Const, Signal, Value

from eie.hw.activation_queue import ActivationQueue
from eie.hw.activation_rw import ActivationReadWriteUnit
from eie.hw.arithmetic_unit import ArithmeticUnit
from eie.hw.layouts import Widths
from eie.hw.lnzd import LeadingNonZeroDetector
from eie.hw.pointer_read import PointerReadUnit
from eie.tb.formal.harness import SMALL, Harness, free_source, stream_rules
from eie.tb.formal.liveness import LayerLiveness
from eie.tb.formal.mutate import Mutant

__all__ = ["Property", "Breakage", "PROPERTIES", "assertion_text"]

def assertion_text(failure: str) -> str:
    """The source of a failed assertion as sby names it (``path:line ...``): the whole statement
    that starts on that line."""
    match = re.match(r"(\S+?):(\d+)", failure)
    if not match:
        return failure
    path, line = match.group(1), int(match.group(2))
    text, depth = [], 0
    while (source := linecache.getline(path, line + len(text))):
        text.append(source.strip())
        depth += source.count("(") - source.count(")")
        if depth <= 0:
            break
    return " ".join(text) or failure


# --- activation queue -----------------------------------------------------------------------------

class QueueContract(Harness):
    """An :class:`ActivationQueue` never overflows or underflows, keeps order and follows the rules.

    Free producer (beats at will), free consumer (``o.ready`` at will). A counter of held
    activations must stay within ``depth``, equal ``level``, be below ``depth`` at every accepted
    write and above zero whenever ``o`` offers one. Order: the ``n``-th activation written
    (``n`` any constant) is the ``n``-th read, with its payload.
    """

    def __init__(self, depth, mutate=None):
        super().__init__(mutate)
        self.depth = depth

    def elaborate(self, platform):
        dut = ActivationQueue(depth=self.depth, act_bits=2, index_width=1)
        m = self.module(dut)
        free_source(m, dut.i, "i")
        m.d.comb += dut.o.ready.eq(AnySeq(1))
        push = dut.i.valid & dut.i.ready
        pop = dut.o.valid & dut.o.ready
        held = Signal(range(self.depth + 2))
        m.d.sync += held.eq(held + push - pop)
        m.d.comb += [
            Assert(held <= self.depth, "queue holds more than its depth"),
            Assert(~push | (held < self.depth), "overflow: write accepted while full"),
            Assert(~dut.o.valid | (held != 0), "underflow: o offers an activation while empty"),
            Assert(dut.level == held, "level differs from the activations held"),
        ]
        # Order: the n-th write comes out as the n-th read.
        limit = 2 * self.depth + 2
        n = AnyConst(range(limit))
        writes, reads = Signal(range(limit + 1)), Signal(range(limit + 1))
        tracked = Signal(len(Value.cast(dut.i.payload)))
        with m.If(push & (writes < limit)):
            m.d.sync += writes.eq(writes + 1)
            with m.If(writes == n):
                m.d.sync += tracked.eq(dut.i.payload)
        with m.If(pop & (reads < limit)):
            m.d.sync += reads.eq(reads + 1)
            with m.If(reads == n):
                m.d.comb += Assert(Value.cast(dut.o.payload) == tracked,
                                   "order: the n-th activation read is not the n-th written")
                m.d.comb += Assert(writes > n, "order: read before it was written")
        stream_rules(m, dut.o, Assert, "o")
        return m


# --- leading non-zero detector --------------------------------------------------------------------

class LNZDContract(Harness):
    """The LNZD grant is one-hot (or zero), goes to the lowest valid input, never skips one and
    never emits a zero.

    Inputs are candidate FIFOs: they follow the stream rules and offer non-zero activations
    (both assumed; :class:`ScannerContract` proves the scanner side). Asserted: ``grant`` has at
    most one bit; a granted input is valid with no valid input below it; whenever an input is
    valid and ``o.ready`` is high some input is granted (nothing offered is skipped); ``o`` carries
    the lowest valid input's payload, whose value is non-zero; ``o.valid`` is not withdrawn while
    waiting. The payload of ``o`` may change while waiting, but only to a lower-numbered input
    (the detector is combinational: the broadcast register takes whatever is offered on a
    handshake, so it does not rely on a stable payload).
    """

    def __init__(self, n_inputs, mutate=None):
        super().__init__(mutate)
        self.n_inputs = n_inputs

    def elaborate(self, platform):
        n = self.n_inputs
        dut = LeadingNonZeroDetector(n_inputs=n, act_bits=4, index_width=4)
        m = self.module(dut)
        m.d.comb += dut.o.ready.eq(AnySeq(1))
        for k in range(n):
            free_source(m, dut.i[k], f"i{k}")
            m.d.comb += Assume(~dut.i[k].valid | (dut.i[k].payload.value != 0))
        valid = Signal(n)
        m.d.comb += valid.eq(Cat(dut.i[k].valid for k in range(n)))
        lowest = valid & -valid  # the lowest set bit
        m.d.comb += [
            Assert((dut.grant & (dut.grant - 1)) == 0, "grant is not one-hot"),
            Assert((dut.grant & ~lowest) == 0, "grant goes to an input that is not the lowest valid"),
            Assert(~(valid.any() & dut.o.ready) | dut.grant.any(),
                   "skip: an input is offered and o is ready, but nothing is granted"),
            Assert(dut.o.valid == valid.any(), "o.valid differs from any input valid"),
        ]
        for k in range(n):
            with m.If(lowest[k]):
                m.d.comb += Assert(Value.cast(dut.o.payload) == Value.cast(dut.i[k].payload),
                                   "o carries another input than the lowest valid")
        with m.If(dut.o.valid):
            m.d.comb += Assert(dut.o.payload.value != 0, "zero emitted")
        waiting = Signal()
        was_lowest = Signal(n)
        m.d.sync += [waiting.eq(dut.o.valid & ~dut.o.ready), was_lowest.eq(lowest)]
        with m.If(waiting):
            m.d.comb += Assert(dut.o.valid, "o: valid withdrawn before ready")
            m.d.comb += Assert(lowest <= was_lowest, "o: payload changed to a higher-numbered input")
        return m


# --- activation read/write unit: the source scanner ------------------------------------------------

class ScannerContract(Harness):
    """The source scanner offers every non-zero activation of the layer once, with its index, and
    never a zero; ``cand`` follows the stream rules.

    Free environment: input loads and write-back writes (both into the source; not during a
    scan, never both at once), the register-file selection and ``n_in`` (stable during a scan),
    ``scan_start`` (only when the scan is done) and ``cand.ready``; the write-back limit is off.
    One local address ``k`` (any constant) is tracked through both register files: if it holds
    a non-zero activation ``j = k·n_pe + pe < n_in`` when a scan starts, it must be offered as
    ``(value, j)`` before ``scan_done``; no other offer may carry index ``j``.
    """

    def __init__(self, pe_index=1, mutate=None):
        super().__init__(mutate)
        self.pe_index = pe_index

    def elaborate(self, platform):
        c = SMALL.replace(max_rows_per_pe=3)
        dut = ActivationReadWriteUnit(config=c, pe_index=self.pe_index)
        m = self.module(dut)
        w = Widths(c)
        scanning = Signal()
        for port in (dut.load, dut.dst):
            m.d.comb += [port.en.eq(AnySeq(1) & ~scanning & ~dut.scan_start), port.addr.eq(AnySeq(w.row)),
                         port.data.eq(AnySeq(c.act_bits))]
        m.d.comb += Assume(~(dut.load.en & dut.dst.en))     # input loading and write-back never meet
        m.d.comb += [dut.scan_start.eq(AnySeq(1) & dut.scan_done & ~scanning),
                     dut.cand.ready.eq(AnySeq(1)), dut.out_addr.eq(AnySeq(w.row)),
                     dut.bias_w.en.eq(0), dut.bias_addr.eq(0),
                     # The write-back limit (test_hw_activation_rw.py) is off here: free, it puts
                     # depth 16 out of the solver's reach.
                     dut.limited.eq(0), dut.limit.eq(0)]
        select, n_in = Signal(), Signal(w.count)
        m.d.comb += [dut.select.eq(select), dut.n_in.eq(n_in)]
        idle = ~scanning & ~dut.scan_start
        with m.If(idle):
            m.d.sync += [select.eq(AnySeq(1)), n_in.eq(AnySeq(w.count))]
        m.d.comb += Assume(n_in <= c.max_width)

        k = AnyConst(range(c.max_rows_per_pe))
        shadow = [Signal(c.act_bits, name=f"shadow{f}") for f in range(2)]
        for f in range(2):
            # Inputs and write-back results both go into the source (the write-back runs after
            # the swap); one write a cycle.
            with m.If(dut.load.en & (dut.load.addr == k) & (select == f)):
                m.d.sync += shadow[f].eq(dut.load.data)
            with m.Elif(dut.dst.en & (dut.dst.addr == k) & (select == f)):
                m.d.sync += shadow[f].eq(dut.dst.data)
        j = k * c.n_pe + self.pe_index
        value = Signal(c.act_bits)
        m.d.comb += value.eq(shadow[0])
        with m.If(select):
            m.d.comb += value.eq(shadow[1])
        owed = Signal()
        with m.If(dut.scan_start):
            m.d.sync += [scanning.eq(1), owed.eq((j < n_in) & (value != 0))]
        with m.Elif(scanning & dut.scan_done):
            m.d.sync += scanning.eq(0)
            m.d.comb += Assert(~owed, "skip: the scan ended without offering a non-zero activation")
        take = dut.cand.valid & dut.cand.ready
        with m.If(take & (dut.cand.payload.index == j)):
            m.d.sync += owed.eq(0)
            m.d.comb += [Assert(owed, "an activation offered twice, or one that was not due"),
                         Assert(dut.cand.payload.value.as_unsigned() == value, "offered with the wrong value")]
        with m.If(dut.cand.valid):
            m.d.comb += [Assert(dut.cand.payload.value != 0, "zero emitted"),
                         Assert(dut.cand.payload.index < n_in, "offered an index beyond n_in")]
        stream_rules(m, dut.cand, Assert, "cand")
        return m


# --- arithmetic unit ------------------------------------------------------------------------------

class AccumulateEquivalence(Harness):
    """The arithmetic unit, hazard bypass included, equals a naive accumulate.

    Free entries ``(v, z, first, act)``, clears and codebook (constant). The naive model follows
    one row ``r`` (any constant): it computes each entry's row from the relative indices and adds
    ``codebook[v]·act`` when it is ``r``; a clear of ``r`` yields the model's sum and zeroes it.
    The value the unit reads out for ``r`` ``CLEAR_LATENCY`` cycles later must equal it, for any
    interleaving of entries, clears and idle cycles (back-to-back updates of one row at distance
    1, 2 and more included).
    """

    def elaborate(self, platform):
        c = SMALL
        dut = ArithmeticUnit(config=c)
        m = self.module(dut)
        w = Widths(c)
        codebook = AnyConst(len(Value.cast(dut.codebook)))
        m.d.comb += [
            dut.i.valid.eq(AnySeq(1)), Value.cast(dut.i.payload).eq(AnySeq(len(Value.cast(dut.i.payload)))),
            dut.clear.valid.eq(AnySeq(1)), dut.clear.payload.eq(AnySeq(w.row)),
            Value.cast(dut.codebook).eq(codebook),
        ]
        r = AnyConst(w.row)
        prev, row = Signal(w.row), Signal(w.row)
        e = dut.i.payload
        with m.If(e.first):
            m.d.comb += row.eq(e.z)
        with m.Else():
            m.d.comb += row.eq(prev + e.z + 1)
        weights = [codebook.word_select(x, c.act_bits).as_signed() for x in range(c.codebook_size)]
        weight = Signal(c.act_bits)
        for x in range(c.codebook_size):
            with m.If(e.v == x):
                m.d.comb += weight.eq(weights[x])
        model = Signal(c.acc_bits)
        pending = [Signal(c.acc_bits + 1, name=f"expected{t}") for t in range(ArithmeticUnit.CLEAR_LATENCY)]
        m.d.sync += [pending[t + 1].eq(pending[t]) for t in range(len(pending) - 1)]
        m.d.sync += pending[0].eq(0)
        with m.If(dut.i.valid):
            m.d.sync += prev.eq(row)
            with m.If(row == r):
                m.d.sync += model.eq(model + weight.as_signed() * e.act)
        with m.Elif(dut.clear.valid & (dut.clear.payload == r)):
            m.d.sync += [model.eq(0), pending[0].eq(Cat(Const(1, 1), model))]
        last = pending[-1]
        with m.If(last[0]):
            m.d.comb += [
                Assert(dut.acc.valid & (dut.acc.payload.row == r), "clear of the row read nothing out"),
                Assert(dut.acc.payload.value.as_unsigned() == last[1:],
                       "the unit's sum differs from the naive accumulate"),
            ]
        return m


# --- pointer read unit: stream rules --------------------------------------------------------------

class PointerStreamRules(Harness):
    """The pointer read unit's job stream follows the rules, whatever the pointers and the
    back-pressure: a job offered and not taken stays offered, unchanged."""

    def elaborate(self, platform):
        c = SMALL
        dut = PointerReadUnit(config=c)
        m = self.module(dut)
        w = Widths(c)
        free_source(m, dut.i, "i")
        base = AnyConst(w.ptr_addr)
        m.d.comb += [dut.o.ready.eq(AnySeq(1)), dut.ptr_base.eq(base),
                     dut.w.en.eq(AnySeq(1)), dut.w.addr.eq(AnySeq(w.ptr_addr)),
                     dut.w.data.eq(AnySeq(c.ptr_bits))]
        stream_rules(m, dut.o, Assert, "o")
        return m


# --- registry ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Breakage:
    """A deliberately broken design: ``Mutant(component, path, value)`` that must fail with an
    assertion whose source line contains ``fails``."""

    description: str
    path: str
    value: object
    fails: str

    def __call__(self, component):
        return Mutant(component, self.path, self.value, self.description)


@dataclass(frozen=True)
class Property:
    """One formal claim about one unit: how to build its harness and how sby checks it."""

    name: str
    claim: str
    harness: Callable
    mode: str
    depth: int
    breakages: tuple[Breakage, ...]
    quick: bool = True
    params: dict = field(default_factory=dict)
    timeout: float = 1800

    def design(self, breakage: Breakage | None = None):
        return self.harness(**self.params, mutate=breakage)


def _queue(depth):
    return Property(
        f"queue_depth{depth}", "activation queue: no overflow, no underflow, order kept, stream rules",
        QueueContract, "bmc", 2 * depth + 5, params={"depth": depth}, quick=depth <= 4, breakages=(
            Breakage("the FIFO accepts writes while full", "fifo.w_rdy", 1, "overflow"),
            Breakage("the FIFO offers data while empty", "fifo.r_rdy", 1, "underflow"),
            Breakage("the output shows the incoming write, not the oldest entry", "fifo.r_data",
                     lambda s: s["w_data"], "order"),
        ))


PROPERTIES = {p.name: p for p in [
    *[_queue(depth) for depth in (1, 2, 3, 4, 8)],
    *[Property(
        f"lnzd_{n}", "LNZD: one-hot grant to the lowest valid input, nothing skipped, no zero emitted",
        LNZDContract, "prove", 4, params={"n_inputs": n}, breakages=(
            Breakage("a node grants its first two children at once", "grant_1",
                     lambda s: s["node_0_0_grant"], "one-hot"),
            Breakage("the root never grants", "node_0_0_grant", 0, "skip"),
        )) for n in (3, 5, 16)],
    Property(
        "scanner", "source scanner: every non-zero activation offered once, never a zero, stream rules",
        ScannerContract, "bmc", 16, quick=False, breakages=(
            Breakage("zeros are not filtered", "w_en", lambda s: s["data_valid"], "zero emitted"),
            Breakage("candidates are never written", "w_en", 0, "skip"),
        )),
    Property(
        "arithmetic_bypass", "arithmetic unit: hazard bypass equals a naive accumulate",
        AccumulateEquivalence, "bmc", 10, breakages=(
            Breakage("no bypass from the write one cycle ahead", "forward0", 0, "naive accumulate"),
            Breakage("no bypass from the write two cycles ahead", "forward1", 0, "naive accumulate"),
        )),
    Property(
        "layer_liveness", "accelerator (2 PEs, 2 layers): every started layer finishes within a bound",
        LayerLiveness, "bmc", 90, quick=False, timeout=7200, breakages=(
            Breakage("the control never sees a layer's work finish", "quiet_q", 0, "deadlock"),
        )),
    Property(
        "layer_liveness_reach", "accelerator (2 PEs, 2 layers): a whole run (done) is reachable",
        LayerLiveness, "cover", 90, quick=False, timeout=7200, breakages=()),
    Property(
        "pointer_stream", "pointer read unit: its job stream follows the valid/ready rules",
        PointerStreamRules, "prove", 4, breakages=(
            Breakage("the output register advances while o is stalled", "advance", 1, "stream_rules(m, dut.o"),
        )),
]}
