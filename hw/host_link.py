"""The host link: the framed protocol of ``docs/host-protocol.md`` between a byte stream and the PE array.

::

    rx pin ─▶ UARTReceiver ─▶ Framer ──tokens──▶ HostLink ─▶ RecordDecoder ─cfg─▶ EIEAccelerator
                              (CRC-8,            (command     ErrorLog       ─i──▶
    tx pin ◀─ UARTTransmitter ◀─ CRC-16) ◀─bytes── engine)                   ◀─o───

:class:`Framer` finds frames (a sync byte and a header that passes its CRC-8, anywhere in the byte
stream, so it resynchronises on the first valid header after garbage), checks the CRC-16 and the
inter-byte timeout, hands the command engine one token per header, payload byte and frame end, and
wraps the engine's response bytes in frames. :class:`RecordDecoder` turns LOAD_DATA payloads into
``cfg`` writes and :class:`ErrorLog` keeps the error state. :class:`HostLink` is the command engine;
:class:`HostLinkTop` puts the UART, the link and the accelerator together behind two pins.

Everything is byte-serial: the line leaves at least 40 clock cycles per byte (10 bits of at least 4
clocks), so each unit handles one byte at a time with narrow logic instead of wide parallel networks:
one CRC step per byte, the two CRCs shared by both directions (a request and its response never
overlap), a header candidate checked by turning it round through them, the timeout counted by an
LFSR, record fields and words assembled in shift registers (the word in the register that holds the
loaded image id, which means nothing while a load is in progress), responses read out byte by byte.

Streaming: LOAD_DATA and RUN payloads go to ``cfg`` and ``i`` as they arrive, before their frame's CRC
is known, so nothing limits throughput but the line rate. A frame that then fails leaves a defined
state: a failed load leaves the device *not loaded*; a failed RUN has its input vector completed
with zeros and its outputs discarded, then the error is answered and the images are untouched.
"""


import functools

from amaranth.hdl import Cat, Const, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from eie.hw.accelerator import EIEAccelerator
from eie.hw.io_map import Space, addr_width, cfg_layout
from eie.hw.layouts import ConfiguredComponent, check_config
from eie.hw.link_map import image_id, word_bytes
from eie.hw.pe import check_images
from eie.hw.uart import UARTReceiver, UARTTransmitter, check_divisor
from eie.spec.protocol import (
    CRC8_POLY,
    CRC16_INIT,
    CRC16_POLY,
    HEADER_BYTES,
    LOAD_BEGIN_BYTES,
    LOAD_END_BYTES,
    RECORD_HEADER_BYTES,
    RESPONSE,
    STATUS_BYTES,
    SYNC,
    VERSION,
    Command,
    EndStatus,
    ErrorCode,
    hash_bytes,
)

__all__ = ["crc_next", "Token", "rx_token_layout", "header_layout", "tx_token_layout", "Framer",
           "RecordDecoder", "ErrorLog", "HostLink", "HostLinkTop", "DEFAULT_TIMEOUT_BYTES"]

#: Default inter-byte timeout of :class:`HostLinkTop`, in character times (65,536: 0.2 s at 3 Mbaud).
DEFAULT_TIMEOUT_BYTES = 1 << 16


# --- CRCs as XOR networks -------------------------------------------------------------------------

@functools.cache
def _crc_terms(width: int, poly: int, n_bytes: int) -> tuple[frozenset, ...]:
    """For each bit of the CRC register after ``n_bytes`` bytes, the input bits it is the XOR of.

    Inputs ``0 .. width-1`` are the register's bits before, ``width + 8k + b`` is bit ``b`` of byte
    ``k``; bytes enter in order, each most significant bit first (unreflected).
    """
    state = [frozenset([i]) for i in range(width)]
    for k in range(n_bytes):
        for b in reversed(range(8)):
            feedback = state[width - 1] ^ frozenset([width + 8 * k + b])
            shifted = [frozenset()] + state[:width - 1]
            state = [s ^ feedback if (poly >> i) & 1 else s for i, s in enumerate(shifted)]
    return tuple(state)


def crc_next(crc, data, *, width: int, poly: int):
    """The CRC register after the bytes of ``data`` (byte 0 in the low bits) entered it.

    Built as one XOR of input bits per output bit, so chaining several bytes costs no deeper logic
    than the bytes' total width.
    """
    n_bytes = len(data) // 8
    bits = [crc[i] for i in range(width)] + [data[i] for i in range(len(data))]
    out = []
    for term in _crc_terms(width, poly, n_bytes):
        out.append(Cat(*(bits[i] for i in sorted(term))).xor() if term else Const(0, 1))
    return Cat(*out)


class _ByteCrc(wiring.Component):
    """A CRC register that takes one byte per cycle (unreflected, no final XOR).

    **Latency.** ``value`` holds the CRC of the bytes taken up to the previous cycle.

    Parameters
    ----------
    width : int
        8 or 16.
    poly : int
    init : int
        The value after ``restart``.

    Attributes
    ----------
    byte : In(8)
    en : In(1)
        Take ``byte``.
    restart : In(1)
        Back to ``init`` (before the next byte).
    value : Out(width)
    """

    def __init__(self, *, width: int, poly: int, init: int):
        self._width, self._poly, self._init = width, poly, init
        super().__init__({"byte": In(8), "en": In(1), "restart": In(1), "value": Out(width)})

    def elaborate(self, platform):
        m = Module()
        with m.If(self.restart):
            m.d.sync += self.value.eq(self._init)
        with m.Elif(self.en):
            m.d.sync += self.value.eq(crc_next(self.value, self.byte, width=self._width, poly=self._poly))
        return m


# --- framing: finding, checking and sending frames -----------------------------------------------

class Token(enum.Enum, shape=2):
    """Kinds of tokens from the framer to the command engine."""

    HEADER = 0
    DATA = 1
    END = 2


rx_token_layout = data.StructLayout({"kind": Token, "byte": 8, "end": 2})
header_layout = data.StructLayout({"cmd": 8, "seq": 8, "length": 16})
tx_token_layout = data.StructLayout({"byte": 8, "last": 1})


def _check_timeout(timeout) -> int:
    if not isinstance(timeout, int) or isinstance(timeout, bool):
        raise TypeError(f"timeout must be an integer number of clock cycles, not {timeout!r}")
    if timeout < 2:
        raise ValueError(f"timeout must be at least 2 clock cycles, not {timeout}")
    return timeout


#: Taps of maximal-length LFSRs (Xilinx XAPP052), by width: the bits XORed into the next input bit.
_LFSR_TAPS = {2: (2, 1), 3: (3, 2), 4: (4, 3), 5: (5, 3), 6: (6, 5), 7: (7, 6), 8: (8, 6, 5, 4), 9: (9, 5),
              10: (10, 7), 11: (11, 9), 12: (12, 6, 4, 1), 13: (13, 4, 3, 1), 14: (14, 5, 3, 1), 15: (15, 14),
              16: (16, 15, 13, 4), 17: (17, 14), 18: (18, 11), 19: (19, 6, 2, 1), 20: (20, 17), 21: (21, 19),
              22: (22, 21), 23: (23, 18), 24: (24, 23, 22, 17), 25: (25, 22), 26: (26, 6, 2, 1), 27: (27, 5, 2, 1),
              28: (28, 25), 29: (29, 27), 30: (30, 6, 4, 1), 31: (31, 28), 32: (32, 22, 2, 1)}


def _lfsr_step(state, width: int):
    """The LFSR state after one step (``state`` an int or an Amaranth value)."""
    taps = [tap - 1 for tap in _LFSR_TAPS[width]]
    if isinstance(state, int):
        feedback = sum(state >> tap for tap in taps) & 1
        return ((state << 1) | feedback) & ((1 << width) - 1)
    return Cat(Cat(state[tap] for tap in taps).xor(), state[:width - 1])


def _lfsr_after(state: int, steps: int, width: int) -> int:
    """The LFSR state ``steps`` steps after ``state`` (the step is linear over GF(2): a matrix power)."""
    def apply(matrix, vector):      # matrix: the images of the unit vectors
        out = 0
        for k, column in enumerate(matrix):
            if vector >> k & 1:
                out ^= column
        return out

    power = [_lfsr_step(1 << k, width) for k in range(width)]
    while steps:
        if steps & 1:
            state = apply(power, state)
        power = [apply(power, column) for column in power]
        steps >>= 1
    return state


class Framer(wiring.Component):
    """Both directions of the framing: received bytes to frame tokens, response bytes to frames.

    **Receiving.** Outside a frame the framer keeps the last five bytes (a header candidate) and
    whether the byte before them was the sync byte. On such a candidate it turns the five bytes round
    once through the CRC-8 and the CRC-16 (one byte per cycle): if the CRC-8 is zero a frame starts,
    else ``header_error`` pulses and the hunt goes on, so a frame is found right after garbage, even
    when the garbage ends in a sync byte. Then ``o`` carries one HEADER token, ``length`` DATA tokens
    and one END token, whose ``end`` field is an :class:`~eie.spec.protocol.EndStatus`: OK, BAD_CRC
    (the CRC-16 over everything after the sync byte does not check) or TIMEOUT (no byte for
    ``timeout`` cycles while the payload or the CRC was awaited; the frame is abandoned). LEN counts
    down in the candidate's place, and only bytes that arrive after a frame are hunted again.

    **Sending.** A frame on ``i`` is CMD, SEQ, LEN_LO, LEN_HI, then the payload up to the byte
    marked ``last`` (``last`` on LEN_HI when there is none); LEN must count the payload. The framer
    sends the sync byte, those four bytes, their CRC-8, the payload and the CRC-16 on ``tx``.

    The two directions share the CRC registers, so they must take turns: the consumer of ``o`` sends
    a response only while it holds the END token of the request, and takes END once ``tx_idle``.

    **Latency.** A byte outside a frame costs 2 cycles, a candidate header 6 more before its HEADER
    token; payload bytes pass through in the cycle they arrive. A frame's sync byte is offered on
    ``tx`` as soon as ``i`` offers CMD. **Back-pressure.** ``o.ready`` low stalls ``rx``; the timeout
    counts only while ``rx`` offers nothing. ``i`` is ready only while its byte can go out on ``tx``.

    Parameters
    ----------
    timeout : int
        Inter-byte timeout in clock cycles.

    Attributes
    ----------
    rx : In(stream.Signature(8))
    o : Out(stream.Signature(rx_token_layout))
    header : Out(header_layout)
        The frame's CMD, SEQ and LEN, from its HEADER token until its END token is taken (LEN
        counts down meanwhile).
    header_error : Out(1)
    i : In(stream.Signature(tx_token_layout))
    tx : Out(stream.Signature(8))
    tx_idle : Out(1)
        No frame is being sent.
    """

    rx: In(stream.Signature(8))
    o: Out(stream.Signature(rx_token_layout))
    header: Out(header_layout)
    header_error: Out(1)
    i: In(stream.Signature(tx_token_layout))
    tx: Out(stream.Signature(8))
    tx_idle: Out(1)

    def __init__(self, *, timeout: int):
        self._timeout = _check_timeout(timeout)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc8 = crc8 = _ByteCrc(width=8, poly=CRC8_POLY, init=0)
        m.submodules.crc16 = crc16 = _ByteCrc(width=16, poly=CRC16_POLY, init=CRC16_INIT)
        crc_byte = Signal(8)
        m.d.comb += [crc8.byte.eq(crc_byte), crc16.byte.eq(crc_byte)]
        self._receive(m, crc8, crc16, crc_byte)
        self._send(m, crc8, crc16, crc_byte)
        return m

    def _receive(self, m, crc8, crc16, crc_byte):
        """Hunting, the candidate check, the tokens and the timeout."""
        window = Signal(8 * (HEADER_BYTES - 1))    # CMD SEQ LEN_LO LEN_HI HCRC of a candidate
        fresh = Signal(HEADER_BYTES - 1)            # which window bytes arrived since the last frame
        after_sync = Signal()                        # the byte before the window was a fresh SYNC
        new = Signal()                               # a byte entered the window in the last cycle
        length = window[16:32]
        turns = Signal(range(HEADER_BYTES))          # header bytes turned round, or CRC bytes received
        timed_out = Signal()
        accept = self.rx.valid & self.rx.ready
        m.d.comb += [self.header.eq(window[:32]), self.o.payload.byte.eq(self.rx.payload),
                     self.o.payload.end.eq(Mux(timed_out, EndStatus.TIMEOUT,
                                               Mux(crc16.value != 0, EndStatus.BAD_CRC, EndStatus.OK)))]
        with m.If(self.tx_idle):
            m.d.comb += crc_byte.eq(self.rx.payload)

        # The quiet cycles are counted by an LFSR (no carry chain): it restarts from 1 whenever a byte
        # is offered, and the timeout is the state it reaches after ``timeout - 1`` quiet cycles.
        width = max(2, self._timeout.bit_length())
        quiet = Signal(width, init=1)
        expired = _lfsr_after(1, self._timeout - 1, width)
        watching = Signal()
        m.d.sync += quiet.eq(_lfsr_step(quiet, width))
        with m.If(~watching | self.rx.valid):
            m.d.sync += quiet.eq(1)

        def watch_timeout():
            m.d.comb += watching.eq(1)
            with m.If(~self.rx.valid & (quiet == expired)):
                m.d.sync += timed_out.eq(1)
                m.next = "END"

        with m.FSM(name="receive"):
            with m.State("HUNT"):
                m.d.comb += self.rx.ready.eq(~new)
                m.d.sync += new.eq(accept)
                with m.If(accept):
                    m.d.sync += [window.eq(Cat(window[8:], self.rx.payload)), fresh.eq(Cat(fresh[1:], 1)),
                                 after_sync.eq(fresh[0] & (window[:8] == SYNC))]
                with m.If(new & after_sync):
                    m.d.comb += [crc8.restart.eq(1), crc16.restart.eq(1)]
                    m.d.sync += turns.eq(0)
                    m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += [crc_byte.eq(window[:8]), crc8.en.eq(1), crc16.en.eq(1)]
                m.d.sync += [window.eq(Cat(window[8:], window[:8])), turns.eq(turns + 1)]
                with m.If(turns == HEADER_BYTES - 2):
                    m.next = "CHECKED"
            with m.State("CHECKED"):
                with m.If(crc8.value == 0):
                    m.next = "HEADER"
                with m.Else():
                    m.d.comb += self.header_error.eq(1)
                    m.next = "HUNT"
            with m.State("HEADER"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.kind.eq(Token.HEADER)]
                with m.If(self.o.ready):
                    m.d.sync += turns.eq(0)
                    m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += self.o.payload.kind.eq(Token.DATA)
                with m.If(length == 0):
                    m.next = "CRC"
                with m.Else():
                    m.d.comb += [self.o.valid.eq(self.rx.valid), self.rx.ready.eq(self.o.ready), crc16.en.eq(accept)]
                    with m.If(accept):
                        m.d.sync += length.eq(length - 1)
                    watch_timeout()
            with m.State("CRC"):
                m.d.comb += [self.rx.ready.eq(1), crc16.en.eq(accept)]
                with m.If(accept):
                    m.d.sync += turns.eq(1)
                    with m.If(turns[0]):
                        m.next = "END"
                watch_timeout()
            with m.State("END"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.kind.eq(Token.END)]
                with m.If(self.o.ready):
                    m.d.sync += [fresh.eq(0), after_sync.eq(0), timed_out.eq(0)]
                    m.next = "HUNT"

    def _send(self, m, crc8, crc16, crc_byte):
        """The sync byte, the header and its CRC-8, the payload and the CRC-16 around ``i``."""
        head = Signal(range(4))
        empty = Signal()
        sent = self.tx.valid & self.tx.ready

        def pass_through():
            m.d.comb += [self.tx.valid.eq(self.i.valid), self.tx.payload.eq(self.i.payload.byte),
                         self.i.ready.eq(self.tx.ready), crc_byte.eq(self.i.payload.byte), crc16.en.eq(sent)]

        with m.FSM(name="send"):
            with m.State("IDLE"):
                m.d.comb += [self.tx_idle.eq(1), self.tx.valid.eq(self.i.valid), self.tx.payload.eq(SYNC)]
                with m.If(sent):
                    m.d.comb += [crc8.restart.eq(1), crc16.restart.eq(1)]
                    m.d.sync += head.eq(0)
                    m.next = "HEADER"
            with m.State("HEADER"):
                pass_through()
                m.d.comb += crc8.en.eq(sent)
                with m.If(sent):
                    m.d.sync += head.eq(head + 1)
                    with m.If(head == 3):
                        m.d.sync += empty.eq(self.i.payload.last)
                        m.next = "HCRC"
            with m.State("HCRC"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(crc8.value), crc_byte.eq(crc8.value),
                             crc16.en.eq(sent)]
                with m.If(self.tx.ready):
                    m.next = "PAYLOAD"
                    with m.If(empty):
                        m.next = "CRC_HI"
            with m.State("PAYLOAD"):
                pass_through()
                with m.If(sent & self.i.payload.last):
                    m.next = "CRC_HI"
            with m.State("CRC_HI"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(crc16.value[8:])]
                with m.If(self.tx.ready):
                    m.next = "CRC_LO"
            with m.State("CRC_LO"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(crc16.value[:8])]
                with m.If(self.tx.ready):
                    m.next = "IDLE"


# --- LOAD_DATA write records ---------------------------------------------------------------------

class _Phase(enum.Enum, shape=2):
    HEADER = 0
    COUNT = 1     # one cycle between the header and the words: the word count is made ``count - 1``
    WORDS = 2
    DROP = 3


class RecordDecoder(ConfiguredComponent):
    """LOAD_DATA payload bytes in, ``cfg`` writes out (record layout: :mod:`eie.hw.link_map`).

    The record header's fields go straight into the registers behind ``cfg.payload`` (space, PE,
    address) and a word counter, and are checked as they pass: the space must exist, the address fit
    the ``cfg`` address field and the count be non-zero (seen from the borrow of ``count - 1``);
    otherwise ``error`` rises and the rest of the frame is dropped. A word is assembled in a shift
    register outside the decoder (:class:`HostLink` lends the register that holds the loaded image id,
    which means nothing while a load is in progress): its bytes (little-endian) shift in at the top, a
    narrower word is then shifted down with zeros, one byte per cycle without waiting for input, and
    ``word`` (the register's top bytes, as many as the widest word has) is the write's data.
    ``start`` (a new frame) clears the error and expects a record header.

    **Latency.** A write is offered on ``cfg`` one cycle after its word's last byte, plus one cycle
    per byte it is narrower than the widest word. **Throughput.** One byte per cycle while ``cfg`` is
    ready, one cycle more per record. **Back-pressure.** ``cfg`` holds one write; ``i`` stalls while
    it waits (and, for a record header, until it is taken).

    Attributes
    ----------
    i : In(stream.Signature(8))
    cfg : Out(stream.Signature(cfg_layout(config)))
    start : In(1)
    error : Out(1)
    boundary : Out(1)
        The bytes since ``start`` end on a record boundary.
    idle : Out(1)
        No write is waiting on ``cfg`` or being aligned.
    shift : Out(1)
        Shift the word register down by a byte, ``shift_byte`` entering at the top.
    shift_byte : Out(8)
        The byte on ``i``, or a zero while a word is aligned.
    word : In(8 * widest word bytes)
        The word register's top bytes.
    """

    def __init__(self, *, config):
        self._config = check_config(config)
        super().__init__({
            "i": In(stream.Signature(8)),
            "cfg": Out(stream.Signature(cfg_layout(config))),
            "start": In(1),
            "error": Out(1),
            "boundary": Out(1),
            "idle": Out(1),
            "shift": Out(1),
            "shift_byte": Out(8),
            "word": In(8 * max(word_bytes(config).values())),
        })

    def elaborate(self, platform):
        m = Module()
        c = self._config
        nbytes = word_bytes(c)
        widest = max(nbytes.values())
        aw = addr_width(c)
        space = Signal(Space)
        pe = Signal(8)
        addr = Signal(aw)
        left = Signal(17)           # words left after the one being assembled; bit 16 the borrow
        fewer = Signal(17)
        index = Signal(range(max(RECORD_HEADER_BYTES, widest)))
        phase = Signal(_Phase)
        accept = self.i.valid & self.i.ready
        byte = self.i.payload
        needs_byte = Signal()       # the word's next byte comes from ``i`` (else a zero aligns it)
        with m.Switch(space):
            for s, n in nbytes.items():
                with m.Case(s):
                    m.d.comb += needs_byte.eq(index < n)
        free = ~self.cfg.valid | self.cfg.ready
        filling = (phase == _Phase.WORDS) & ~needs_byte
        m.d.comb += [
            fewer.eq(left - 1),
            self.cfg.payload.space.eq(space), self.cfg.payload.pe.eq(pe), self.cfg.payload.addr.eq(addr),
            self.cfg.payload.data.eq(self.word), self.shift_byte.eq(Mux(filling, 0, byte)),
            self.boundary.eq((phase == _Phase.HEADER) & (index == 0)),
            self.idle.eq(~self.cfg.valid & (phase != _Phase.COUNT) & ~filling),
        ]
        with m.If(self.cfg.ready):
            m.d.sync += self.cfg.valid.eq(0)
        with m.If(self.cfg.valid & self.cfg.ready):
            m.d.sync += addr.eq(addr + 1)

        def malformed():
            m.d.sync += [self.error.eq(1), phase.eq(_Phase.DROP)]

        with m.Switch(phase):
            with m.Case(_Phase.HEADER):
                m.d.comb += self.i.ready.eq(~self.cfg.valid)   # the fields are the pending write's
                with m.If(accept):
                    m.d.sync += index.eq(index + 1)
                    with m.Switch(index):
                        with m.Case(0):
                            m.d.sync += space.eq(byte[:3])
                            with m.If(byte > max(Space)):
                                malformed()
                        with m.Case(1):
                            m.d.sync += pe.eq(byte)
                        for k in range(4):         # addr, little-endian: what does not fit must be 0
                            lo, kept = 8 * k, max(0, min(8, aw - 8 * k))
                            with m.Case(2 + k):
                                if kept:
                                    m.d.sync += addr[lo:lo + kept].eq(byte[:kept])
                                if kept < 8:
                                    with m.If(byte[kept:] != 0):
                                        malformed()
                        with m.Case(6):
                            m.d.sync += left.eq(byte)
                        with m.Case(7):
                            m.d.sync += [left[8:16].eq(byte), index.eq(0), phase.eq(_Phase.COUNT)]
            with m.Case(_Phase.COUNT):
                m.d.sync += [left.eq(fewer), phase.eq(_Phase.WORDS)]
                with m.If(fewer[16]):      # a count of 0
                    malformed()
            with m.Case(_Phase.WORDS):
                with m.If(needs_byte):
                    m.d.comb += [self.i.ready.eq(free), self.shift.eq(accept)]
                with m.Else():
                    m.d.comb += self.shift.eq(free)
                with m.If(self.shift):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == widest - 1):
                        m.d.sync += [index.eq(0), self.cfg.valid.eq(1), left.eq(fewer)]
                        with m.If(fewer[16]):
                            m.d.sync += phase.eq(_Phase.HEADER)
            with m.Case(_Phase.DROP):
                m.d.comb += self.i.ready.eq(1)
        with m.If(self.start):
            m.d.sync += [self.error.eq(0), index.eq(0), phase.eq(_Phase.HEADER)]
        return m


# --- the error log -------------------------------------------------------------------------------

class ErrorLog(wiring.Component):
    """The device's error state: the last error (sticky), the error count (saturating) and the first
    error of the load in progress (any error while loading fails the load).

    **Latency.** An error offered on ``code`` (one per cycle; :data:`ErrorCode.NONE` for none) shows
    on the outputs in the next cycle.

    Attributes
    ----------
    code : In(ErrorCode)
        An error that happened in this cycle.
    loading : In(1)
        A load is in progress.
    restart : In(1)
        A load begins: forget the previous load's error.
    last : Out(ErrorCode)
    count : Out(16)
    load_error : Out(ErrorCode)
    """

    code: In(ErrorCode)
    loading: In(1)
    restart: In(1)
    last: Out(ErrorCode)
    count: Out(16)
    load_error: Out(ErrorCode)

    def elaborate(self, platform):
        m = Module()
        more = Signal(17)                  # bit 16: the count is at its maximum already
        m.d.comb += more.eq(self.count + 1)
        with m.If(self.code != ErrorCode.NONE):
            m.d.sync += self.last.eq(self.code)
            with m.If(~more[16]):
                m.d.sync += self.count.eq(more)
            with m.If(self.loading & (self.load_error == ErrorCode.NONE)):
                m.d.sync += self.load_error.eq(self.code)
        with m.If(self.restart):
            m.d.sync += self.load_error.eq(ErrorCode.NONE)
        return m


# --- the command engine --------------------------------------------------------------------------

class _Mode(enum.Enum, shape=3):
    """What the command engine does with a frame's payload bytes."""

    SKIP = 0      # drop them (the command is refused or has no payload)
    HASH = 1      # LOAD_BEGIN: compare them with the configuration hash
    COMMIT = 2    # LOAD_END: compare the write count, then shift the image id, n_in and n_out in
    RECORDS = 3   # LOAD_DATA: to the record decoder
    INPUT = 4     # RUN: assemble input elements for ``i``


class _Reply(enum.Enum, shape=3):
    """The responses (:data:`_REPLY_LENGTH`)."""

    EMPTY = 0     # LOAD_BEGIN
    STATUS = 1
    ERROR = 2     # error code, the request's command, flags
    WRITES = 3    # LOAD_END: the counter (writes applied); bytes 4..7 also end a RUN response
    RUN = 4       # the header of a RUN response; the outputs follow, then the counter (compute cycles)


#: Response bytes from CMD on (what :class:`Framer` frames): the payload lengths. Byte ``k`` of a
#: response comes from: ``k < 4``, the header (CMD | RESPONSE or ERROR, SEQ, LEN); STATUS, ``4 <= k
#: < 16`` its constant fields, ``16 <= k < 20`` flags, last error and error count, ``k >= 20`` the
#: loaded image id, n_in and n_out (zeros when not loaded); ERROR: the error, the request's CMD,
#: flags; WRITES: the counter, byte ``k % 4``.
_REPLY_LENGTH = {_Reply.EMPTY: 0, _Reply.STATUS: STATUS_BYTES, _Reply.ERROR: 3, _Reply.WRITES: 4}


#: Where STATUS has the configuration hash, and its live fields (then the image id, n_in, n_out).
_STATUS_HASH = 5
_STATUS_LIVE = 16


def _status_constants(config) -> list[int]:
    """The constant leading fields of STATUS: version, configuration hash, n_pe, act_bits."""
    return [VERSION, *hash_bytes(config.config_hash()), *config.n_pe.to_bytes(2, "little"), config.act_bits]


class HostLink(ConfiguredComponent):
    """The command engine of the host protocol (``docs/host-protocol.md``) between byte streams and the
    accelerator's ``cfg``, ``i`` and ``o``.

    One frame is handled at a time: the host sends a request after the response to the previous one,
    except LOAD_DATA frames, which are never answered and follow each other back to back. While a
    request is answered its END token is held, so nothing is taken from ``rx`` (the UART's register
    holds one byte); every other step takes a few cycles, well inside the 40 or more of a byte.

    The engine's pieces, each a method: :meth:`_counter`, :meth:`_line_errors`, :meth:`_on_header`
    (the refusal and the payload mode from CMD, LEN and the device state), :meth:`_on_payload`,
    :meth:`_on_end` (the frame's error), :meth:`_apply` (its effect on the device state),
    :meth:`_complete_failed_run`, :meth:`_reply_byte` and :meth:`_respond`.

    **Latency.** A response's sync byte reaches ``tx`` 3 cycles after the END token of its request
    (RUN: the outputs follow as the accelerator produces them and the line takes them).
    **Throughput.** LOAD_DATA payloads reach ``cfg`` at the line rate (each byte waits one cycle in a
    register before the record decoder): one write per word's bytes, with no handshake per write or
    per frame; RUN payloads reach ``i`` at one element per
    ``ceil(act_bits / 8)`` bytes, each offered in the cycle after its last byte arrives.
    **Back-pressure.** ``tx`` and ``o`` are honoured every cycle.

    Parameters
    ----------
    config : EIEConfig
    images : Images, optional
        The images baked into the accelerator: the link starts loaded with their id and widths.
    timeout : int
        Inter-byte timeout in clock cycles.

    Attributes
    ----------
    rx : In(stream.Signature(8))
    tx : Out(stream.Signature(8))
    framing_error, overrun : In(1)
        Pulses from the UART receiver.
    cfg : Out(stream.Signature(cfg_layout(config)))
    i : Out(stream.Signature(signed(act_bits)))
    o : In(stream.Signature(signed(act_bits)))
    busy, done : In(1)
        From the accelerator.
    loaded : Out(1)
        A complete image set is loaded.
    error : Out(1)
        The last frame handled ended in an error.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`EIEConfig`; ``timeout`` is not an integer.
    ValueError
        ``images`` were made for another configuration; ``timeout`` is below 2.
    """

    def __init__(self, *, config, images=None, timeout: int):
        config = check_config(config)
        check_images(config, images)
        self._config = config
        self._images = images
        self._timeout = _check_timeout(timeout)
        act = signed(config.act_bits)
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "framing_error": In(1),
            "overrun": In(1),
            "cfg": Out(stream.Signature(cfg_layout(config))),
            "i": Out(stream.Signature(act)),
            "o": In(stream.Signature(act)),
            "busy": In(1),
            "done": In(1),
            "loaded": Out(1),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.framer = framer = Framer(timeout=self._timeout)
        m.submodules.records = records = RecordDecoder(config=self._config)
        m.submodules.errors = errors = ErrorLog()
        wiring.connect(m, wiring.flipped(self.rx), framer.rx)
        wiring.connect(m, framer.tx, wiring.flipped(self.tx))
        wiring.connect(m, records.cfg, wiring.flipped(self.cfg))
        e = _Engine(self._config, self._images, self.busy, framer, records, errors)
        m.d.comb += [self.loaded.eq(e.loaded), self.error.eq(e.failed), errors.loading.eq(e.loading),
                     self.i.valid.eq(e.element_valid), self.i.payload.eq(e.element)]
        with m.If(self.i.ready):
            m.d.sync += e.element_valid.eq(0)
        with m.If(ResetSignal()):
            m.d.sync += e.image.eq(e.baked_image)
        # One shift register: LOAD_END's payload shifts in, a STATUS response turns it round, and
        # while a load is in progress (nothing is loaded) the record decoder assembles words in it.
        m.d.comb += records.word.eq(e.image[-len(records.word):])
        with m.If(e.shift_image | records.shift):
            m.d.sync += e.image.eq(Cat(e.image[8:], Mux(records.shift, records.shift_byte,
                                                        Mux(e.state_is_payload, e.tok.payload.byte, e.image[:8]))))
        # LOAD_DATA bytes reach the record decoder through a one-byte register, so the framer's
        # ready never waits on the decoder's state (that chain was the iCE40's critical path); the
        # bytes come a character time apart, the register takes one every other cycle.
        m.d.comb += [records.i.valid.eq(e.held_valid), records.i.payload.eq(e.held)]
        with m.If(records.i.ready):
            m.d.sync += e.held_valid.eq(0)
        self._counter(m, e)
        self._line_errors(m, e)
        self._reply_byte(m, e)
        with m.FSM(name="link"):
            with m.State("IDLE"):
                m.d.comb += e.tok.ready.eq(1)
                with m.If(e.tok.valid):                 # always a HEADER token here
                    self._on_header(m, e)
                    m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += e.state_is_payload.eq(1)
                self._on_payload(m, e)
            with m.State("FINISH"):
                self._on_end(m, e)
            with m.State("APPLY"):
                self._apply(m, e)
            self._complete_failed_run(m, e)
            self._respond(m, e)
        return m

    def _counter(self, m, e):
        """The counter: ``cfg`` writes while loading (LOAD_BEGIN clears it), and in a RUN the clock
        cycles from the edge that accepts the last input to the one that could accept the first
        output (what the RTL testbench reports as the sum of the layers' cycles). A RUN is refused
        while loading, so the two never overlap."""
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [e.count.eq(0), e.counting.eq(1)]
        with m.Elif((self.cfg.valid & self.cfg.ready) | e.counting):
            m.d.sync += e.count.eq(e.count + 1)
        with m.If(self.o.valid):
            m.d.sync += e.counting.eq(0)
        with m.If(self.done):
            m.d.sync += e.done_seen.eq(1)

    def _line_errors(self, m, e):
        """Bad headers and UART errors go to the log; the first UART error while a frame's payload
        arrives also fails that frame."""
        with m.If(e.framer.header_error):
            m.d.comb += e.errors.code.eq(ErrorCode.BAD_HEADER)
        for pulse, code in ((self.overrun, ErrorCode.OVERRUN), (self.framing_error, ErrorCode.FRAMING)):
            with m.If(pulse):
                m.d.comb += e.errors.code.eq(code)
                with m.If(e.state_is_payload & (e.line_error == ErrorCode.NONE)):
                    m.d.sync += e.line_error.eq(code)

    def _on_header(self, m, e):
        """The HEADER token: the refusal and the payload mode, from CMD, LEN and the device state."""
        length = e.framer.header.length
        length_ok = Signal()
        refusal = Signal(ErrorCode)
        mode = Signal(_Mode)
        with m.Switch(e.framer.header.cmd):
            with m.Case(Command.STATUS):
                m.d.comb += length_ok.eq(length == 0)
            with m.Case(Command.LOAD_BEGIN):
                m.d.comb += [length_ok.eq(length == LOAD_BEGIN_BYTES), mode.eq(_Mode.HASH)]
            with m.Case(Command.LOAD_END):
                m.d.comb += [length_ok.eq(length == LOAD_END_BYTES), mode.eq(_Mode.COMMIT)]
                with m.If(~e.loading):
                    m.d.comb += refusal.eq(ErrorCode.NOT_LOADING)
            with m.Case(Command.LOAD_DATA):
                m.d.comb += [length_ok.eq(length != 0), mode.eq(Mux(e.errors.load_error == ErrorCode.NONE,
                                                                     _Mode.RECORDS, _Mode.SKIP))]
                with m.If(~e.loading):   # NOT_LOADING before BAD_LENGTH
                    m.d.comb += [refusal.eq(ErrorCode.NOT_LOADING), length_ok.eq(1)]
            with m.Case(Command.RUN):
                m.d.comb += [length_ok.eq(length == e.n_in * e.act_bytes), mode.eq(_Mode.INPUT)]
                with m.If(~e.loaded):   # NOT_LOADED before BAD_LENGTH
                    m.d.comb += [refusal.eq(ErrorCode.NOT_LOADED), length_ok.eq(1)]
            with m.Default():
                m.d.comb += [refusal.eq(ErrorCode.UNKNOWN_COMMAND), length_ok.eq(1)]
        with m.If(~length_ok):
            m.d.comb += refusal.eq(ErrorCode.BAD_LENGTH)
        # LOAD_BEGIN's hash is compared with STATUS's copy of it, LOAD_END's count with bytes
        # ``index % 4`` of the counter and its image id goes where STATUS reads it: the index starts
        # at the STATUS byte the payload lines up with.
        m.d.sync += [e.refusal.eq(refusal), e.mode.eq(Mux(refusal == ErrorCode.NONE, mode, _Mode.SKIP)),
                     e.line_error.eq(ErrorCode.NONE), e.matches.eq(1), e.done_seen.eq(0),
                     e.index.eq(Mux(mode == _Mode.HASH, _STATUS_HASH, Mux(mode == _Mode.COMMIT, _STATUS_LIVE, 0)))]
        m.d.comb += e.records.start.eq(1)

    def _on_payload(self, m, e):
        """DATA tokens by mode; the END token moves on to :meth:`_on_end` (and stays offered)."""
        tok = e.tok
        byte = tok.payload.byte
        is_data = tok.payload.kind == Token.DATA
        taken = tok.valid & tok.ready
        with m.If(tok.valid & ~is_data):
            m.next = "FINISH"
        with m.Switch(e.mode):
            with m.Case(_Mode.SKIP):
                m.d.comb += tok.ready.eq(is_data)
            with m.Case(_Mode.HASH):
                m.d.comb += tok.ready.eq(is_data)
                with m.If(taken):
                    m.d.sync += e.index.eq(e.index + 1)
                    with m.If(byte != e.status_constant):
                        m.d.sync += e.matches.eq(0)
            with m.Case(_Mode.COMMIT):
                m.d.comb += tok.ready.eq(is_data)
                with m.If(taken):
                    m.d.sync += e.index.eq(e.index + 1)
                    with m.If(e.index[2:4] == 0):      # the count; then the image id, n_in, n_out
                        with m.If(byte != e.count_byte):
                            m.d.sync += e.matches.eq(0)
                    with m.Else():
                        m.d.comb += e.shift_image.eq(1)
            with m.Case(_Mode.RECORDS):
                m.d.comb += tok.ready.eq(is_data & ~e.held_valid)
                with m.If(taken):
                    m.d.sync += [e.held.eq(byte), e.held_valid.eq(1)]
            with m.Case(_Mode.INPUT):
                m.d.comb += tok.ready.eq(is_data & ~e.element_valid)
                with m.If(taken):
                    m.d.sync += [e.element.eq(Cat(e.element[8:], byte)), e.index.eq(e.index + 1)]
                    with m.If(e.index == e.act_bytes - 1):
                        m.d.sync += [e.element_valid.eq(1), e.index.eq(0)]

    def _on_end(self, m, e):
        """The END token: the frame's error by precedence (TIMEOUT, a UART error, BAD_CRC, the refusal,
        then the command's own check), registered for :meth:`_apply`."""
        cmd = e.framer.header.cmd
        end = e.tok.payload.end
        frame_error = Signal(ErrorCode)
        with m.If(end == EndStatus.TIMEOUT):
            m.d.comb += frame_error.eq(ErrorCode.TIMEOUT)
        with m.Elif(e.line_error != ErrorCode.NONE):
            m.d.comb += frame_error.eq(e.line_error)
        with m.Elif(end == EndStatus.BAD_CRC):
            m.d.comb += frame_error.eq(ErrorCode.BAD_CRC)
        with m.Else():
            m.d.comb += frame_error.eq(e.refusal)
        code = Signal(ErrorCode)
        with m.If(frame_error != ErrorCode.NONE):
            m.d.comb += code.eq(frame_error)
        with m.Elif((e.mode == _Mode.RECORDS) & (e.records.error | ~e.records.boundary)):
            m.d.comb += code.eq(ErrorCode.BAD_RECORD)
        with m.Elif((e.mode == _Mode.HASH) & ~e.matches):
            m.d.comb += code.eq(ErrorCode.HASH_MISMATCH)
        with m.Elif(e.mode == _Mode.COMMIT):
            with m.If(e.errors.load_error != ErrorCode.NONE):
                m.d.comb += code.eq(e.errors.load_error)
            with m.Elif(~e.matches):
                m.d.comb += code.eq(ErrorCode.COUNT_MISMATCH)
        with m.If(~(cmd == Command.LOAD_DATA) | (e.records.idle & ~e.held_valid)):    # every write counted
            m.d.sync += [e.code.eq(code), e.frame_ok.eq(frame_error == ErrorCode.NONE)]
            m.next = "APPLY"

    def _apply(self, m, e):
        """The frame's outcome (``e.code``, registered by :meth:`_on_end`): logged, its effect on the
        device state, then the response (none for LOAD_DATA)."""
        cmd = e.framer.header.cmd
        ok = e.code == ErrorCode.NONE
        reply = Signal(_Reply)
        with m.Switch(cmd):
            with m.Case(Command.STATUS):
                m.d.comb += reply.eq(_Reply.STATUS)
            with m.Case(Command.LOAD_BEGIN):
                m.d.comb += reply.eq(_Reply.EMPTY)
            with m.Case(Command.LOAD_END):
                m.d.comb += reply.eq(_Reply.WRITES)
            with m.Case(Command.RUN):
                m.d.comb += reply.eq(_Reply.RUN)
        m.d.comb += e.errors.code.eq(e.code)
        m.d.sync += [e.failed.eq(~ok), e.reply.eq(Mux(ok, reply, _Reply.ERROR)), e.index.eq(0), e.element.eq(0)]
        with m.If((e.mode == _Mode.HASH) & ok):
            m.d.comb += e.errors.restart.eq(1)
            m.d.sync += [e.loading.eq(1), e.loaded.eq(0), e.count.eq(0)]
        with m.If((e.mode == _Mode.COMMIT) & e.frame_ok):
            m.d.sync += [e.loading.eq(0), e.loaded.eq(ok)]
        with m.If(cmd == Command.LOAD_DATA):      # never answered; an error fails the load
            m.d.comb += e.tok.ready.eq(1)
            m.next = "IDLE"
        with m.Elif((e.mode == _Mode.INPUT) & ~ok):
            m.next = "PAD"
        with m.Else():
            m.next = "SEND"

    def _complete_failed_run(self, m, e):
        """A RUN that failed after its inputs started streaming: zeros complete the input vector while
        the accelerator takes inputs, its outputs are discarded up to ``done``, then the error is
        answered. If no input was taken, the accelerator is idle and nothing needs completing."""
        with m.State("PAD"):
            with m.If(~self.busy):
                m.next = "SEND"
            with m.Elif(self.i.ready):
                m.d.comb += self.i.valid.eq(1)       # ``element`` was cleared
            with m.Else():
                m.next = "DRAIN"
        with m.State("DRAIN"):
            m.d.comb += self.o.ready.eq(1)
            with m.If(e.done_seen):
                m.next = "SEND"

    def _reply_byte(self, m, e):
        """Byte ``e.index`` of the response ``e.reply`` (see :data:`_REPLY_LENGTH`), and whether it
        is the last."""
        hdr = e.framer.header
        k = e.index
        run_length = Signal(16)
        m.d.comb += run_length.eq(e.n_out * e.act_bytes + 4)
        header = Signal(8)
        with m.Switch(k[:2]):
            with m.Case(0):
                m.d.comb += header.eq(Mux(e.reply == _Reply.ERROR, Command.ERROR, hdr.cmd | RESPONSE))
            with m.Case(1):
                m.d.comb += header.eq(hdr.seq)
            with m.Case(2):
                with m.Switch(e.reply):
                    for kind, n in _REPLY_LENGTH.items():
                        with m.Case(kind):
                            m.d.comb += header.eq(n)
                    with m.Case(_Reply.RUN):
                        m.d.comb += header.eq(run_length[:8])
            with m.Case(3):
                m.d.comb += header.eq(Mux(e.reply == _Reply.RUN, run_length[8:], 0))
        constant = e.status_constant
        with m.Switch(k[:4]):
            for n, value in enumerate(_status_constants(self._config)):
                with m.Case(4 + n):
                    m.d.comb += constant.eq(value)
        live = Signal(8)
        with m.Switch(k[:2]):
            for n, value in enumerate([e.flags, e.errors.last, e.errors.count[:8], e.errors.count[8:]]):
                with m.Case(n):
                    m.d.comb += live.eq(value)
        error = Signal(8)
        with m.Switch(k[:2]):
            for n, value in enumerate([e.code, hdr.cmd, e.flags]):
                with m.Case(n):
                    m.d.comb += error.eq(value)
        with m.If(k < 4):
            m.d.comb += e.reply_byte.eq(header)
        with m.Else():
            with m.Switch(e.reply):
                with m.Case(_Reply.STATUS):
                    with m.If(~k[4]):
                        m.d.comb += e.reply_byte.eq(constant)
                    with m.Elif(k[2:4] == 0):
                        m.d.comb += e.reply_byte.eq(live)
                    with m.Else():
                        m.d.comb += [e.reply_byte.eq(Mux(e.loaded, e.image[:8], 0)), e.reply_image.eq(1)]
                with m.Case(_Reply.ERROR):
                    m.d.comb += e.reply_byte.eq(error)
                with m.Default():
                    m.d.comb += e.reply_byte.eq(e.count_byte)
        with m.Switch(e.reply):
            for kind, n in _REPLY_LENGTH.items():
                with m.Case(kind):
                    m.d.comb += e.reply_last.eq(k == 3 + n)

    def _respond(self, m, e):
        """The response in ``e.reply``, byte by byte; a RUN response's outputs go out as the
        accelerator produces them. The request's END token is taken once the framer has sent the
        response (it shares its CRC registers between the two directions)."""
        out = e.framer.i
        with m.State("SEND"):
            m.d.comb += [out.valid.eq(1), out.payload.byte.eq(e.reply_byte), out.payload.last.eq(e.reply_last)]
            with m.If(out.ready):
                m.d.sync += e.index.eq(e.index + 1)
                m.d.comb += e.shift_image.eq(e.reply_image)
                with m.If(e.reply_last):
                    m.next = "SENT"
                with m.Elif((e.reply == _Reply.RUN) & (e.index == 3)):
                    m.d.sync += e.index.eq(0)
                    m.next = "OUTPUTS"
        with m.State("OUTPUTS"):
            # Each output is taken into ``e.out_element`` (sign-extended to whole bytes) and sent from
            # there, so the accelerator's ``o.ready`` never waits on the UART (the iCE40's critical
            # path ran from the transmitter's timer into the output collector).
            m.d.comb += self.o.ready.eq(~e.out_valid)
            with m.If(self.o.valid & ~e.out_valid):
                m.d.sync += [e.out_element.eq(self.o.payload), e.out_valid.eq(1)]
            with m.If(e.out_valid):
                m.d.comb += [out.valid.eq(1), out.payload.byte.eq(e.out_element.word_select(e.index[:3], 8))]
                with m.If(out.ready):
                    m.d.sync += e.index.eq(e.index + 1)
                    with m.If(e.index == e.act_bytes - 1):
                        m.d.sync += [e.index.eq(0), e.out_valid.eq(0)]
            with m.Elif(~self.o.valid & e.done_seen):
                m.d.sync += [e.reply.eq(_Reply.WRITES), e.index.eq(4)]
                m.next = "SEND"
        with m.State("SENT"):
            with m.If(e.framer.tx_idle):
                m.d.comb += e.tok.ready.eq(1)
                m.next = "IDLE"


class _Engine:
    """The signals the pieces of :class:`HostLink` share."""

    def __init__(self, config, images, busy, framer, records, errors):
        self.framer, self.records, self.errors = framer, records, errors
        self.tok = framer.o
        self.act_bytes = -(-config.act_bits // 8)
        baked = images is not None
        # The loaded image set as LOAD_END sends it: image id (8 bytes), n_in, n_out. Baked images are
        # written in at reset rather than given as the initial value: iCE40 flip-flops power up at 0,
        # and a 1 would cost an inverter per bit.
        self.image = Signal(max(96, 8 * max(word_bytes(config).values())), reset_less=True)
        self.baked_image = 0 if not baked else int.from_bytes(
            hash_bytes(image_id(images)) + images.n_in.to_bytes(2, "little") + images.n_out.to_bytes(2, "little"),
            "little")
        self.n_in, self.n_out = self.image[64:80], self.image[80:96]
        self.shift_image = Signal()
        self.loaded = Signal(init=baked)
        self.loading = Signal()
        self.failed = Signal()
        self.count = Signal(32)
        self.counting = Signal()
        self.done_seen = Signal()
        self.flags = Cat(self.loaded, self.loading, Const(baked, 1), busy)
        # The frame in hand.
        self.state_is_payload = Signal()
        self.mode = Signal(_Mode)
        self.refusal = Signal(ErrorCode)       # decided from its header
        self.line_error = Signal(ErrorCode)    # the first UART error while its payload arrived
        self.code = Signal(ErrorCode)          # the error it ended with
        self.frame_ok = Signal()               # no error of the frame itself (only the command's)
        self.held = Signal(8)                  # a LOAD_DATA byte on its way to the record decoder
        self.held_valid = Signal()
        self.index = Signal(5)                 # payload byte, element byte or response byte
        self.matches = Signal()                # LOAD_BEGIN's hash, LOAD_END's count so far
        self.count_byte = self.count.word_select(self.index[:2], 8)
        self.element = Signal(8 * self.act_bytes)
        self.element_valid = Signal()
        self.out_element = Signal(8 * self.act_bytes)    # an output on its way to the line
        self.out_valid = Signal()
        self.reply = Signal(_Reply)
        self.reply_byte = Signal(8)
        self.reply_last = Signal()
        self.reply_image = Signal()            # the response byte is read from ``image``
        self.status_constant = Signal(8)       # STATUS byte ``index`` if it is a constant one


class HostLinkTop(ConfiguredComponent):
    """The accelerator behind a UART: :class:`UARTReceiver`, :class:`HostLink`, :class:`UARTTransmitter`
    and :class:`~eie.hw.accelerator.EIEAccelerator`, with two pins.

    The board top (:class:`eie.hw.board.BoardTop`) adds the clock, the reset and the LEDs; in
    simulation this is the top itself.

    Parameters
    ----------
    config : EIEConfig
    images : Images, optional
        Baked into the memories (bitstream mode): the device starts loaded with them.
    divisor : int
        Clock cycles per UART bit (at least 4): ``clock_hz / baud``.
    timeout : int, optional
        Inter-byte timeout in clock cycles; default :data:`DEFAULT_TIMEOUT_BYTES` character times.

    Attributes
    ----------
    rx : In(1)
        From the host (idle high).
    tx : Out(1)
        To the host (idle high).
    busy : Out(1)
        The PE array is computing.
    loaded : Out(1)
        A complete image set is loaded (or baked in).
    error : Out(1)
        The last frame ended in an error.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`EIEConfig`; ``divisor`` or ``timeout`` is not an integer.
    ValueError
        ``images`` were made for another configuration; ``divisor`` is below 4; ``timeout`` below 2.
    """

    def __init__(self, *, config, images=None, divisor: int, timeout: int | None = None):
        config = check_config(config)
        check_images(config, images)
        self._divisor = check_divisor(divisor)
        self._timeout = _check_timeout(10 * divisor * DEFAULT_TIMEOUT_BYTES if timeout is None else timeout)
        self._config = config
        self._images = images
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "busy": Out(1),
            "loaded": Out(1),
            "error": Out(1),
        })

    @property
    def divisor(self) -> int:
        return self._divisor

    @property
    def timeout(self) -> int:
        return self._timeout

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = uart_rx = UARTReceiver(divisor=self._divisor)
        m.submodules.uart_tx = uart_tx = UARTTransmitter(divisor=self._divisor)
        m.submodules.link = link = HostLink(config=self._config, images=self._images, timeout=self._timeout)
        m.submodules.accelerator = accel = EIEAccelerator(config=self._config, images=self._images)
        wiring.connect(m, uart_rx.o, link.rx)
        wiring.connect(m, link.tx, uart_tx.i)
        wiring.connect(m, link.cfg, accel.cfg)
        wiring.connect(m, link.i, accel.i)
        wiring.connect(m, accel.o, link.o)
        m.d.comb += [
            uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx),
            link.framing_error.eq(uart_rx.framing_error), link.overrun.eq(uart_rx.overrun),
            link.busy.eq(accel.busy), link.done.eq(accel.done),
            self.busy.eq(accel.busy), self.loaded.eq(link.loaded), self.error.eq(link.error),
        ]
        return m
