"""The host link: the framed protocol of ``docs/host-protocol.md`` between a byte stream and the PE array.

::

    rx pin ─▶ UARTReceiver ─▶ FIFO ─▶ FrameReceiver ─tokens─▶ HostLink ──────cfg──▶ EIEAccelerator
                                                              │ RecordDecoder ─┘ ─i──▶
    tx pin ◀─ UARTTransmitter ◀─ FrameTransmitter ◀─bytes──── │ ErrorLog        ◀─o──

:class:`FrameReceiver` finds frames (a sync byte and a header that passes its CRC-8, anywhere in the
byte stream, so it resynchronises on the first valid header after garbage), checks the CRC-16 and the
inter-byte timeout, and hands the command engine one token per header, payload byte and frame end.
:class:`FrameTransmitter` wraps the engine's response bytes in frames. :class:`RecordDecoder` turns
LOAD_DATA payloads into ``cfg`` writes and :class:`ErrorLog` keeps the error state. :class:`HostLink`
is the command engine; :class:`HostLinkTop` puts the UART, the link and the accelerator together
behind two pins.

Everything is byte-serial: the line leaves at least 40 clock cycles per byte (10 bits of at least 4
clocks), so each unit handles one byte at a time with narrow logic (one CRC step per byte, fields
assembled in shift registers, responses read out of a byte table) instead of wide parallel networks.

Streaming: LOAD_DATA and RUN payloads go to ``cfg`` and ``i`` as they arrive, before their frame's CRC
is known, so nothing limits throughput but the line rate. A frame that then fails leaves a defined
state: a failed load leaves the device *not loaded*; a failed RUN has its input vector completed
with zeros and its outputs discarded, then the error is answered and the images are untouched.
"""


import functools

from amaranth.hdl import Array, Cat, Const, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from eie.hw.accelerator import EIEAccelerator
from eie.hw.io_map import Space, addr_width, cfg_layout, data_width
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

__all__ = ["crc_next", "Token", "rx_token_layout", "header_layout", "tx_token_layout", "FrameReceiver",
           "FrameTransmitter", "RecordDecoder", "ErrorLog", "HostLink", "HostLinkTop", "DEFAULT_TIMEOUT_BYTES",
           "RX_FIFO_DEPTH"]

#: Default inter-byte timeout of :class:`HostLinkTop`, in character times (65,536: 0.2 s at 3 Mbaud).
DEFAULT_TIMEOUT_BYTES = 1 << 16
#: Bytes the link buffers between the UART and the frame receiver (the UART holds one more).
RX_FIFO_DEPTH = 2


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


def _crc8_step(crc, byte):
    return crc_next(crc, byte, width=8, poly=CRC8_POLY)


def _crc16_step(crc, byte):
    return crc_next(crc, byte, width=16, poly=CRC16_POLY)


def _crc8_unwind(byte):
    """What ``byte`` contributes to the CRC-8 of a 5-byte window after the window moves on by one byte:
    the CRC-8 of ``byte`` followed by five zero bytes (CRC-8 is linear, its initial value is 0)."""
    return crc_next(Const(0, 8), Cat(byte, Const(0, 8 * (HEADER_BYTES - 1))), width=8, poly=CRC8_POLY)


class ByteCrc(wiring.Component):
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


# --- frame receiver and transmitter --------------------------------------------------------------

class Token(enum.Enum, shape=2):
    """Kinds of tokens from the frame receiver to the command engine."""

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


class FrameReceiver(wiring.Component):
    """Bytes in, frame tokens out: one HEADER, ``length`` DATA and one END token per frame.

    Outside a frame the receiver keeps the last five bytes (a header candidate), whether the byte
    before them was the sync byte, and the CRC-8 of the five, updated per byte (CRC-8 is linear, so
    the byte that leaves the window is taken out again). A frame starts when the byte before the
    window is the sync byte and the CRC-8 is zero, so a frame is found right after garbage, even when
    the garbage ends in a sync byte; a sync byte whose header fails pulses ``header_error``.
    The CRC-16 then takes the five header bytes again (the window turns round once) and every later
    byte. The END token's ``end`` field is an :class:`~eie.spec.protocol.EndStatus`: OK, BAD_CRC
    (the CRC-16 over everything after the sync byte does not check) or TIMEOUT (no byte for
    ``timeout`` cycles while the frame's payload or CRC was awaited; the frame is abandoned).

    **Latency.** A byte outside a frame costs 2 cycles (shift, then check); a found header 5 more
    (the CRC-16 replay) before its HEADER token; payload bytes pass through in the cycle they arrive.
    **Back-pressure.** ``o.ready`` low stalls ``i``; the timeout counts only while ``i`` offers
    nothing. Nothing is taken from ``i`` while the END token waits, so the consumer may hold END
    (and ``header``) until it has answered the frame.

    Parameters
    ----------
    timeout : int
        Inter-byte timeout in clock cycles.

    Attributes
    ----------
    i : In(stream.Signature(8))
    o : Out(stream.Signature(rx_token_layout))
    header : Out(header_layout)
        The frame's CMD, SEQ and LEN, from its HEADER token until its END token is taken.
    header_error : Out(1)
    in_frame : Out(1)
        From a valid header until its END token is taken.
    """

    i: In(stream.Signature(8))
    o: Out(stream.Signature(rx_token_layout))
    header: Out(header_layout)
    header_error: Out(1)
    in_frame: Out(1)

    def __init__(self, *, timeout: int):
        self._timeout = _check_timeout(timeout)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        window = Signal(8 * (HEADER_BYTES - 1))   # CMD SEQ LEN_LO LEN_HI HCRC of a candidate
        after_sync = Signal()                       # the byte before the window is SYNC
        syndrome = Signal(8)                        # CRC-8 of the window
        fresh = Signal()                            # a byte entered the window in the last cycle
        length = window[16:32]                      # counts the payload down in place
        crc = Signal(16)
        steps = Signal(range(HEADER_BYTES))         # header bytes replayed, or CRC bytes received
        timed_out = Signal()
        # The quiet cycles are counted by an LFSR (no carry chain): it restarts from 1 whenever a byte
        # is offered and the timeout is the state it reaches after ``timeout - 1`` quiet cycles.
        width = max(2, (self._timeout).bit_length())
        quiet = Signal(width, init=1)
        expired = _lfsr_after(1, self._timeout - 1, width)
        watching = Signal()
        replay = Signal()
        accept = self.i.valid & self.i.ready
        byte = Mux(replay, window[:8], self.i.payload)
        m.d.comb += [self.header.eq(window[:32]), self.o.payload.byte.eq(self.i.payload),
                     self.o.payload.end.eq(Mux(timed_out, EndStatus.TIMEOUT,
                                               Mux(crc != 0, EndStatus.BAD_CRC, EndStatus.OK)))]
        with m.If(accept | replay):
            m.d.sync += crc.eq(_crc16_step(crc, byte))

        m.d.sync += quiet.eq(_lfsr_step(quiet, width))
        with m.If(~watching | self.i.valid):
            m.d.sync += quiet.eq(1)

        def watch_timeout():
            m.d.comb += watching.eq(1)
            with m.If(~self.i.valid & (quiet == expired)):
                m.d.sync += timed_out.eq(1)
                m.next = "END"

        with m.FSM(name="frame_rx"):
            with m.State("HUNT"):
                m.d.comb += self.i.ready.eq(~fresh)
                m.d.sync += fresh.eq(accept)
                with m.If(accept):
                    m.d.sync += [window.eq(Cat(window[8:], byte)), after_sync.eq(window[:8] == SYNC),
                                 syndrome.eq(_crc8_step(syndrome, byte) ^ _crc8_unwind(window[:8]))]
                with m.If(fresh & after_sync):
                    with m.If(syndrome == 0):
                        m.d.sync += [crc.eq(CRC16_INIT), steps.eq(0)]
                        m.next = "REPLAY"
                    with m.Else():
                        m.d.comb += self.header_error.eq(1)
            with m.State("REPLAY"):
                m.d.comb += [self.in_frame.eq(1), replay.eq(1)]
                m.d.sync += [window.eq(Cat(window[8:], byte)), steps.eq(steps + 1)]
                with m.If(steps == HEADER_BYTES - 2):
                    m.next = "HEADER"
            with m.State("HEADER"):
                m.d.comb += [self.in_frame.eq(1), self.o.valid.eq(1), self.o.payload.kind.eq(Token.HEADER)]
                with m.If(self.o.ready):
                    m.d.sync += steps.eq(0)
                    m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += [self.in_frame.eq(1), self.o.payload.kind.eq(Token.DATA)]
                with m.If(length == 0):
                    m.next = "CRC"
                with m.Else():
                    m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready)]
                    with m.If(accept):
                        m.d.sync += length.eq(length - 1)
                    watch_timeout()
            with m.State("CRC"):
                m.d.comb += [self.in_frame.eq(1), self.i.ready.eq(1)]
                with m.If(accept):
                    m.d.sync += steps.eq(1)
                    with m.If(steps[0]):
                        m.next = "END"
                watch_timeout()
            with m.State("END"):
                m.d.comb += [self.in_frame.eq(1), self.o.valid.eq(1), self.o.payload.kind.eq(Token.END)]
                with m.If(self.o.ready):
                    m.d.sync += [window.eq(0), after_sync.eq(0), syndrome.eq(0), timed_out.eq(0)]
                    m.next = "HUNT"
        return m


class FrameTransmitter(wiring.Component):
    """Frame bytes in, bytes out: the sync byte, the four header bytes taken from ``i`` (CMD, SEQ,
    LEN_LO, LEN_HI), their CRC-8, the payload taken from ``i`` up to the byte marked ``last``, then
    the CRC-16. A frame without payload has ``last`` on LEN_HI; LEN must count the payload bytes.

    **Throughput.** One byte per cycle of ``o`` (the UART sets the pace). **Back-pressure.** ``i`` is
    ready only while its byte can go out on ``o``; the sync byte goes out once ``i`` offers CMD.

    Attributes
    ----------
    i : In(stream.Signature(tx_token_layout))
    o : Out(stream.Signature(8))
    """

    i: In(stream.Signature(tx_token_layout))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        m.submodules.hcrc = hcrc = ByteCrc(width=8, poly=CRC8_POLY, init=0)
        m.submodules.crc = crc = ByteCrc(width=16, poly=CRC16_POLY, init=CRC16_INIT)
        head = Signal(range(4))
        empty = Signal()
        sent = self.o.valid & self.o.ready
        in_hcrc = Signal()
        m.d.comb += [hcrc.byte.eq(self.i.payload.byte), crc.byte.eq(Mux(in_hcrc, hcrc.value, self.i.payload.byte))]

        def pass_through():
            m.d.comb += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload.byte),
                         self.i.ready.eq(self.o.ready), crc.en.eq(sent)]

        with m.FSM(name="frame_tx"):
            with m.State("IDLE"):
                m.d.comb += [self.o.valid.eq(self.i.valid), self.o.payload.eq(SYNC), hcrc.restart.eq(1),
                             crc.restart.eq(1)]
                with m.If(sent):
                    m.d.sync += head.eq(0)
                    m.next = "HEADER"
            with m.State("HEADER"):
                pass_through()
                m.d.comb += hcrc.en.eq(sent)
                with m.If(sent):
                    m.d.sync += head.eq(head + 1)
                    with m.If(head == 3):
                        m.d.sync += empty.eq(self.i.payload.last)
                        m.next = "HCRC"
            with m.State("HCRC"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(hcrc.value), in_hcrc.eq(1), crc.en.eq(sent)]
                with m.If(self.o.ready):
                    m.next = "PAYLOAD"
                    with m.If(empty):
                        m.next = "CRC_HI"
            with m.State("PAYLOAD"):
                pass_through()
                with m.If(sent & self.i.payload.last):
                    m.next = "CRC_HI"
            with m.State("CRC_HI"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(crc.value[8:])]
                with m.If(self.o.ready):
                    m.next = "CRC_LO"
            with m.State("CRC_LO"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(crc.value[:8])]
                with m.If(self.o.ready):
                    m.next = "IDLE"
        return m


# --- LOAD_DATA write records ---------------------------------------------------------------------

class _Phase(enum.Enum, shape=2):
    HEADER = 0
    WORDS = 1
    DROP = 2


class RecordDecoder(ConfiguredComponent):
    """LOAD_DATA payload bytes in, ``cfg`` writes out (record layout: :mod:`eie.hw.link_map`).

    The record header's fields go straight into the registers behind ``cfg.payload`` (space, PE,
    address) and a word counter; its checks are made as its bytes pass: the space must exist, the
    address fit the ``cfg`` address field and the count be non-zero, otherwise ``error`` rises and the
    rest of the frame is dropped. A word's bytes (little-endian) shift in from the top of a register
    as wide as the widest word; a narrower word is then shifted down with zeros, one byte per cycle
    without waiting for input. ``start`` (a new frame) clears the error and expects a record header.

    **Latency.** A write is offered on ``cfg`` one cycle after its word's last byte, plus one cycle
    per byte it is narrower than the widest word. **Throughput.** One byte per cycle while ``cfg`` is
    ready. **Back-pressure.** ``cfg`` holds one write; ``i`` stalls while it waits (and, for a record
    header, until it is taken).

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
        word = Signal(8 * widest)
        count = Signal(16)
        index = Signal(range(max(RECORD_HEADER_BYTES, widest)))
        phase = Signal(_Phase)
        bad = Signal()            # the record header read so far is malformed
        bad_byte = Signal()
        accept = self.i.valid & self.i.ready
        byte = self.i.payload
        needs_byte = Signal()     # the word's next byte comes from ``i`` (else a zero aligns it)
        with m.Switch(space):
            for s, n in nbytes.items():
                with m.Case(s):
                    m.d.comb += needs_byte.eq(index < n)
        m.d.comb += [
            self.cfg.payload.space.eq(space), self.cfg.payload.pe.eq(pe), self.cfg.payload.addr.eq(addr),
            self.cfg.payload.data.eq(word), self.boundary.eq((phase == _Phase.HEADER) & (index == 0)),
            self.idle.eq(~self.cfg.valid & ~((phase == _Phase.WORDS) & ~needs_byte)),
        ]
        with m.If(self.cfg.ready):
            m.d.sync += self.cfg.valid.eq(0)
        with m.If(self.cfg.valid & self.cfg.ready):
            m.d.sync += addr.eq(addr + 1)

        with m.Switch(phase):
            with m.Case(_Phase.HEADER):
                m.d.comb += self.i.ready.eq(~self.cfg.valid)   # the fields are the pending write's
                with m.Switch(index):
                    def load(field, value):
                        with m.If(accept):
                            m.d.sync += field.eq(value)

                    with m.Case(0):
                        m.d.comb += bad_byte.eq(byte > max(Space))
                        load(space, byte[:3])
                    with m.Case(1):
                        load(pe, byte)
                    for k in range(4):         # addr, little-endian: what does not fit must be 0
                        lo, kept = 8 * k, max(0, min(8, aw - 8 * k))
                        with m.Case(2 + k):
                            if kept:
                                load(addr[lo:lo + kept], byte[:kept])
                            if kept < 8:
                                m.d.comb += bad_byte.eq(byte[kept:] != 0)
                    with m.Case(6):
                        load(count[:8], byte)
                    with m.Case(7):
                        load(count[8:], byte)
                        m.d.comb += bad_byte.eq((byte == 0) & (count[:8] == 0))
                with m.If(accept):
                    m.d.sync += [bad.eq(Mux(index == 0, 0, bad) | bad_byte), index.eq(index + 1)]
                    with m.If(index == RECORD_HEADER_BYTES - 1):
                        m.d.sync += index.eq(0)
                        with m.If(bad | bad_byte):
                            m.d.sync += [self.error.eq(1), phase.eq(_Phase.DROP)]
                        with m.Else():
                            m.d.sync += phase.eq(_Phase.WORDS)
            with m.Case(_Phase.WORDS):
                shift = Signal()
                with m.If(needs_byte):
                    m.d.comb += [self.i.ready.eq(~self.cfg.valid | self.cfg.ready), shift.eq(accept)]
                with m.Else():
                    m.d.comb += shift.eq(~self.cfg.valid | self.cfg.ready)
                with m.If(shift):
                    m.d.sync += [word.eq(Cat(word[8:], Mux(needs_byte, byte, 0))), index.eq(index + 1)]
                    with m.If(index == widest - 1):
                        m.d.sync += [index.eq(0), self.cfg.valid.eq(1), count.eq(count - 1)]
                        with m.If(count == 1):
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
        with m.If(self.code != ErrorCode.NONE):
            m.d.sync += [self.last.eq(self.code), self.count.eq(self.count + (self.count != 0xFFFF))]
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
    """The responses, as byte tables (:func:`_reply_table`)."""

    EMPTY = 0     # LOAD_BEGIN
    STATUS = 1
    ERROR = 2     # error code, the request's command, flags
    WRITES = 3    # LOAD_END: the counter (writes applied); its last 4 bytes also end a RUN response
    RUN = 4       # the header of a RUN response; the outputs follow, then the counter (compute cycles)


class _Byte(enum.Enum, shape=4):
    """Where a response byte comes from."""

    ZERO = 0
    OK_CMD = 1          # the request's CMD | RESPONSE
    ERROR_CMD = 2       # Command.ERROR
    CMD = 3             # the request's CMD
    SEQ = 4
    LENGTH = 5          # LEN_LO: the constant of the response kind, or a RUN response's
    RUN_LENGTH_HI = 6
    STATUS_CONST = 7    # the constant STATUS fields (version, configuration hash, n_pe, act_bits)
    FLAGS = 8
    LAST_ERROR = 9
    ERROR_COUNT_LO = 10
    ERROR_COUNT_HI = 11
    IMAGE = 12          # the next byte of the loaded image id, n_in, n_out (zeros when not loaded)
    CODE = 13           # the error answered
    COUNT = 14          # byte ``index % 4`` of the counter


def _status_constants(config) -> list[int]:
    """The constant leading fields of STATUS: version, configuration hash, n_pe, act_bits."""
    return [VERSION, *hash_bytes(config.config_hash()), *config.n_pe.to_bytes(2, "little"), config.act_bits]


#: Each response's bytes from CMD on (what :class:`FrameTransmitter` frames) and its payload length
#: (None: computed, for RUN).
_REPLIES = {
    _Reply.EMPTY: ([_Byte.OK_CMD, _Byte.SEQ, _Byte.LENGTH, _Byte.ZERO], 0),
    _Reply.STATUS: ([_Byte.OK_CMD, _Byte.SEQ, _Byte.LENGTH, _Byte.ZERO] + [_Byte.STATUS_CONST] * 12
                    + [_Byte.FLAGS, _Byte.LAST_ERROR, _Byte.ERROR_COUNT_LO, _Byte.ERROR_COUNT_HI]
                    + [_Byte.IMAGE] * 12, STATUS_BYTES),
    _Reply.ERROR: ([_Byte.ERROR_CMD, _Byte.SEQ, _Byte.LENGTH, _Byte.ZERO, _Byte.CODE, _Byte.CMD, _Byte.FLAGS], 3),
    _Reply.WRITES: ([_Byte.OK_CMD, _Byte.SEQ, _Byte.LENGTH, _Byte.ZERO] + [_Byte.COUNT] * 4, 4),
    _Reply.RUN: ([_Byte.OK_CMD, _Byte.SEQ, _Byte.LENGTH, _Byte.RUN_LENGTH_HI], None),
}
assert all(length is None or len(spec) == 4 + length for spec, length in _REPLIES.values())


class HostLink(ConfiguredComponent):
    """The command engine of the host protocol (``docs/host-protocol.md``) between byte streams and the
    accelerator's ``cfg``, ``i`` and ``o``.

    One frame is handled at a time: the host sends a request after the response to the previous one,
    except LOAD_DATA frames, which are never answered and follow each other back to back. While a
    frame is answered its END token is held, so nothing more is taken from ``rx`` (a
    :data:`RX_FIFO_DEPTH`-byte FIFO and the UART's own register absorb short stalls).

    Named pieces: :meth:`_decode_header` (the refusal and payload mode from CMD and LEN),
    :meth:`_take_payload`, :meth:`_finish` (the outcome of a frame and the device state),
    :meth:`_complete_failed_run`, and :meth:`_respond` (responses read from :func:`_reply_table`,
    the RUN outputs between them).

    **Latency.** A response's sync byte reaches the transmitter 2 cycles after the END token of its
    request is offered (RUN: the outputs follow as the accelerator produces them and the line takes
    them). **Throughput.** LOAD_DATA payloads reach ``cfg`` at the line rate: one write per word's
    bytes, with no handshake per write or per frame; RUN payloads reach ``i`` at one element per
    ``ceil(act_bits / 8)`` bytes. **Back-pressure.** ``tx`` and ``o`` are honoured every cycle.

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
        c = self._config
        img = self._images
        m.submodules.rx_fifo = fifo = SyncFIFO(width=8, depth=RX_FIFO_DEPTH)
        m.submodules.receiver = receiver = FrameReceiver(timeout=self._timeout)
        m.submodules.transmitter = transmitter = FrameTransmitter()
        m.submodules.records = records = RecordDecoder(config=c)
        m.submodules.errors = errors = ErrorLog()
        wiring.connect(m, wiring.flipped(self.rx), fifo.w_stream)
        wiring.connect(m, fifo.r_stream, receiver.i)
        wiring.connect(m, transmitter.o, wiring.flipped(self.tx))
        wiring.connect(m, records.cfg, wiring.flipped(self.cfg))

        e = _Engine(c, img, self.busy, receiver, transmitter, records, errors)
        m.d.comb += [self.loaded.eq(e.loaded), self.error.eq(e.failed), errors.loading.eq(e.loading)]
        with m.If(ResetSignal()):
            m.d.sync += e.image.eq(e.baked_image)
        self._count(m, e)
        self._log_line_errors(m, e)
        self._reply_bytes(m, e)
        with m.FSM(name="link"):
            with m.State("IDLE"):
                m.d.comb += e.tok.ready.eq(1)
                with m.If(e.tok.valid):                 # always a HEADER token here
                    self._decode_header(m, e)
                    m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                self._take_payload(m, e)
            with m.State("FINISH"):
                self._finish(m, e)
            self._complete_failed_run(m, e)
            self._respond(m, e)
        return m

    def _count(self, m, e):
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

    def _log_line_errors(self, m, e):
        """Bad headers and UART errors go to the log; a UART error while a frame's payload arrives
        also fails that frame (the first one is kept)."""
        uart_error = Mux(self.framing_error, ErrorCode.FRAMING, Mux(self.overrun, ErrorCode.OVERRUN, ErrorCode.NONE))
        with m.If(e.receiver.header_error):
            m.d.comb += e.errors.code.eq(ErrorCode.BAD_HEADER)
        with m.If(self.framing_error | self.overrun):
            m.d.comb += e.errors.code.eq(uart_error)
            with m.If(e.receiving & ~e.line_failed):
                m.d.sync += e.frame_error.eq(uart_error)

    def _decode_header(self, m, e):
        """The payload mode and the refusal, from the HEADER token's CMD and LEN and the device state."""
        c = self._config
        hdr = e.receiver.header
        m.d.sync += [e.index.eq(0), e.matches.eq(1), e.mode.eq(_Mode.SKIP), e.frame_error.eq(ErrorCode.NONE)]

        def refuse(code):
            m.d.sync += e.frame_error.eq(code)

        def expect(n_bytes, then):
            with m.If(hdr.length == n_bytes):
                m.d.sync += e.mode.eq(then)
            with m.Else():
                refuse(ErrorCode.BAD_LENGTH)

        with m.Switch(hdr.cmd):
            with m.Case(Command.STATUS):
                expect(0, _Mode.SKIP)
            with m.Case(Command.LOAD_BEGIN):
                expect(LOAD_BEGIN_BYTES, _Mode.HASH)
            with m.Case(Command.LOAD_END):
                with m.If(hdr.length != LOAD_END_BYTES):
                    refuse(ErrorCode.BAD_LENGTH)
                with m.Elif(~e.loading):
                    refuse(ErrorCode.NOT_LOADING)
                with m.Else():
                    m.d.sync += e.mode.eq(_Mode.COMMIT)
            with m.Case(Command.LOAD_DATA):
                with m.If(~e.loading):
                    refuse(ErrorCode.NOT_LOADING)
                with m.Elif(hdr.length == 0):
                    refuse(ErrorCode.BAD_LENGTH)
                with m.Elif(e.errors.load_error == ErrorCode.NONE):  # else the load failed already: skip
                    m.d.sync += e.mode.eq(_Mode.RECORDS)
                    m.d.comb += e.records.start.eq(1)
            with m.Case(Command.RUN):
                with m.If(~e.loaded):
                    refuse(ErrorCode.NOT_LOADED)
                with m.Else():
                    m.d.sync += e.done_seen.eq(0)
                    expect(e.n_in * e.act_bytes, _Mode.INPUT)
            with m.Default():
                refuse(ErrorCode.UNKNOWN_COMMAND)

    def _take_payload(self, m, e):
        """DATA tokens by mode; the END token moves on to :meth:`_finish` (and stays offered)."""
        tok = e.tok
        byte = tok.payload.byte
        is_data = tok.payload.kind == Token.DATA
        taken = tok.valid & tok.ready
        m.d.comb += e.receiving.eq(1)
        with m.If(tok.valid & ~is_data):
            m.next = "FINISH"
        with m.Switch(e.mode):
            with m.Case(_Mode.SKIP):
                m.d.comb += tok.ready.eq(is_data)
            with m.Case(_Mode.HASH):
                m.d.comb += tok.ready.eq(is_data)
                with m.If(taken):
                    m.d.sync += e.index.eq(e.index + 1)
                    with m.If(byte != e.config_hash[e.index[:3]]):
                        m.d.sync += e.matches.eq(0)
            with m.Case(_Mode.COMMIT):
                m.d.comb += tok.ready.eq(is_data)
                with m.If(taken):
                    m.d.sync += e.index.eq(e.index + 1)
                    with m.If(e.index < 4):
                        with m.If(byte != e.count_byte):
                            m.d.sync += e.matches.eq(0)
                    with m.Else():
                        m.d.comb += e.shift_image.eq(1)
            with m.Case(_Mode.RECORDS):
                m.d.comb += [e.records.i.valid.eq(tok.valid & is_data), e.records.i.payload.eq(byte),
                             tok.ready.eq(is_data & e.records.i.ready)]
            with m.Case(_Mode.INPUT):
                with m.If(e.index == e.act_bytes - 1):
                    m.d.comb += [self.i.valid.eq(tok.valid & is_data), self.i.payload.eq(Cat(e.element, byte)),
                                 tok.ready.eq(is_data & self.i.ready)]
                    with m.If(taken):
                        m.d.sync += e.index.eq(0)
                with m.Else():
                    m.d.comb += tok.ready.eq(is_data)
                    with m.If(taken):
                        m.d.sync += [e.element.eq(Cat(e.element[8:], byte)), e.index.eq(e.index + 1)]

    def _finish(self, m, e):
        """The END token: the frame's error by precedence (TIMEOUT, a UART error, BAD_CRC, the refusal),
        then the command's own checks and its effect on the device state."""
        hdr = e.receiver.header
        end = e.tok.payload.end
        frame_error = Signal(ErrorCode)
        with m.If(end == EndStatus.TIMEOUT):
            m.d.comb += frame_error.eq(ErrorCode.TIMEOUT)
        with m.Elif(~e.line_failed & (end == EndStatus.BAD_CRC)):
            m.d.comb += frame_error.eq(ErrorCode.BAD_CRC)
        with m.Else():
            m.d.comb += frame_error.eq(e.frame_error)

        def reply(kind):
            m.d.sync += [e.reply.eq(kind), e.index.eq(0)]
            m.next = "SEND"

        def refuse(code):
            m.d.comb += e.errors.code.eq(code)
            m.d.sync += [e.frame_error.eq(code), e.failed.eq(1)]
            reply(_Reply.ERROR)

        def succeed(kind):
            m.d.sync += e.failed.eq(0)
            reply(kind)

        with m.Switch(hdr.cmd):
            with m.Case(Command.LOAD_DATA):    # never answered; an error fails the load
                with m.If(e.records.idle):     # every write of the frame has been counted
                    code = Signal(ErrorCode)
                    with m.If(frame_error != ErrorCode.NONE):
                        m.d.comb += code.eq(frame_error)
                    with m.Elif((e.mode == _Mode.RECORDS) & (e.records.error | ~e.records.boundary)):
                        m.d.comb += code.eq(ErrorCode.BAD_RECORD)
                    m.d.comb += [e.errors.code.eq(code), e.tok.ready.eq(1)]
                    m.d.sync += e.failed.eq(code != ErrorCode.NONE)
                    m.next = "IDLE"
            with m.Case(Command.RUN):
                with m.If(e.mode != _Mode.INPUT):
                    refuse(frame_error)
                with m.Elif(frame_error == ErrorCode.NONE):
                    succeed(_Reply.RUN)
                with m.Else():
                    m.d.comb += e.errors.code.eq(frame_error)
                    m.d.sync += [e.frame_error.eq(frame_error), e.failed.eq(1), e.reply.eq(_Reply.ERROR),
                                 e.index.eq(0)]
                    m.next = "PAD"
            with m.Default():
                with m.If(frame_error != ErrorCode.NONE):
                    refuse(frame_error)
                with m.Elif(hdr.cmd == Command.STATUS):
                    succeed(_Reply.STATUS)
                with m.Elif(hdr.cmd == Command.LOAD_BEGIN):
                    with m.If(~e.matches):
                        refuse(ErrorCode.HASH_MISMATCH)
                    with m.Else():
                        m.d.comb += e.errors.restart.eq(1)
                        m.d.sync += [e.loading.eq(1), e.loaded.eq(0), e.count.eq(0)]
                        succeed(_Reply.EMPTY)
                with m.Else():                 # LOAD_END while loading
                    m.d.sync += e.loading.eq(0)
                    with m.If(e.errors.load_error != ErrorCode.NONE):
                        refuse(e.errors.load_error)
                    with m.Elif(~e.matches):
                        refuse(ErrorCode.COUNT_MISMATCH)
                    with m.Else():
                        m.d.sync += e.loaded.eq(1)
                        succeed(_Reply.WRITES)

    def _complete_failed_run(self, m, e):
        """A RUN that failed after its inputs started streaming: zeros complete the input vector while
        the accelerator takes inputs, its outputs are discarded up to ``done``, then the error is
        answered. If no input was taken, the accelerator is idle and nothing needs completing."""
        with m.State("PAD"):
            with m.If(~self.busy):
                m.next = "SEND"
            with m.Elif(self.i.ready):
                m.d.comb += [self.i.valid.eq(1), self.i.payload.eq(0)]
            with m.Else():
                m.next = "DRAIN"
        with m.State("DRAIN"):
            m.d.comb += self.o.ready.eq(1)
            with m.If(e.done_seen):
                m.next = "SEND"

    def _reply_bytes(self, m, e):
        """The byte at ``e.index`` of the response ``e.reply`` (:data:`_REPLIES`) and whether it is
        the last."""
        c = self._config
        hdr = e.receiver.header
        source = Signal(_Byte)
        with m.Switch(e.reply):
            for kind, (spec, _) in _REPLIES.items():
                with m.Case(kind):
                    with m.Switch(e.index):
                        for k, s in enumerate(spec):
                            with m.Case(k):
                                m.d.comb += source.eq(s)
                    if kind != _Reply.RUN:
                        m.d.comb += e.reply_last.eq(e.index == len(spec) - 1)
        length = Signal(8)
        run_length = Signal(16)
        m.d.comb += run_length.eq(e.n_out * e.act_bytes + 4)
        with m.Switch(e.reply):
            for kind, (_, n) in _REPLIES.items():
                with m.Case(kind):
                    m.d.comb += length.eq(run_length[:8] if n is None else n)
        status_const = Signal(8)
        with m.Switch(e.index[:4]):
            for k, value in enumerate(_status_constants(c)):
                with m.Case(4 + k):
                    m.d.comb += status_const.eq(value)
        values = {
            _Byte.OK_CMD: hdr.cmd | RESPONSE, _Byte.ERROR_CMD: Command.ERROR, _Byte.CMD: hdr.cmd, _Byte.SEQ: hdr.seq,
            _Byte.LENGTH: length, _Byte.RUN_LENGTH_HI: run_length[8:], _Byte.STATUS_CONST: status_const,
            _Byte.FLAGS: e.flags, _Byte.LAST_ERROR: e.errors.last, _Byte.ERROR_COUNT_LO: e.errors.count[:8],
            _Byte.ERROR_COUNT_HI: e.errors.count[8:], _Byte.IMAGE: Mux(e.loaded, e.image[:8], 0),
            _Byte.CODE: e.frame_error, _Byte.COUNT: e.count_byte,
        }
        with m.Switch(source):
            for s, value in values.items():
                with m.Case(s):
                    m.d.comb += e.reply_byte.eq(value)
        m.d.comb += e.reply_image.eq(source == _Byte.IMAGE)
        with m.If(e.shift_image):          # LOAD_END's payload, or a STATUS response reading it out
            m.d.sync += e.image.eq(Cat(e.image[8:], Mux(e.mode == _Mode.COMMIT, e.tok.payload.byte, e.image[:8])))

    def _respond(self, m, e):
        """The response in ``e.reply``, byte by byte; a RUN response's outputs go out as the
        accelerator produces them. The request's END token is taken with the last byte."""
        out = e.transmitter.i
        with m.State("SEND"):
            m.d.comb += [out.valid.eq(1), out.payload.byte.eq(e.reply_byte), out.payload.last.eq(e.reply_last)]
            with m.If(out.ready):
                m.d.sync += e.index.eq(e.index + 1)
                m.d.comb += e.shift_image.eq(e.reply_image)
                with m.If(e.reply_last):
                    m.d.comb += e.tok.ready.eq(1)
                    m.next = "IDLE"
                with m.Elif((e.reply == _Reply.RUN) & (e.index == 3)):
                    m.d.sync += e.index.eq(0)
                    m.next = "OUTPUTS"
        with m.State("OUTPUTS"):
            element = Signal(8 * e.act_bytes)
            m.d.comb += element.eq(self.o.payload)      # sign-extended to whole bytes
            with m.If(self.o.valid):
                m.d.comb += [out.valid.eq(1), out.payload.byte.eq(element.word_select(e.index[:3], 8))]
                with m.If(out.ready):
                    m.d.sync += e.index.eq(e.index + 1)
                    with m.If(e.index == e.act_bytes - 1):
                        m.d.comb += self.o.ready.eq(1)
                        m.d.sync += e.index.eq(0)
            with m.Elif(e.done_seen):
                m.d.sync += [e.reply.eq(_Reply.WRITES), e.index.eq(4)]
                m.next = "SEND"


class _Engine:
    """The signals the pieces of :class:`HostLink` share."""

    def __init__(self, config, images, busy, receiver, transmitter, records, errors):
        self.receiver, self.transmitter, self.records, self.errors = receiver, transmitter, records, errors
        self.tok = receiver.o
        self.act_bytes = -(-config.act_bits // 8)
        baked = images is not None
        # The loaded image set as LOAD_END sends it: image id (8 bytes), n_in, n_out.
        # Baked images are written in at reset rather than given as the initial value: iCE40
        # flip-flops power up at 0, and a 1 would cost an inverter per bit.
        self.image = Signal(96, reset_less=True)
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
        self.mode = Signal(_Mode)
        self.frame_error = Signal(ErrorCode)   # the refusal from its header, or its first UART error
        self.line_failed = self.frame_error >= ErrorCode.OVERRUN
        self.receiving = Signal()
        self.index = Signal(5)                 # payload byte, element byte or response byte
        self.matches = Signal()                # LOAD_BEGIN's hash, LOAD_END's count so far
        self.count_byte = self.count.word_select(self.index[:2], 8)
        self.element = Signal(8 * (self.act_bytes - 1))
        self.reply = Signal(_Reply)
        self.reply_byte = Signal(8)
        self.reply_last = Signal()
        self.reply_image = Signal()            # the response byte is read from ``image``
        self.config_hash = Array(Const(b, 8) for b in hash_bytes(config.config_hash()))


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
