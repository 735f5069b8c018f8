"""The host link: the framed protocol of ``docs/host-protocol.md`` between a byte stream and the PE array.

::

    rx pin ─▶ UARTReceiver ─▶ FIFO ─▶ FrameReceiver ─tokens─▶ command engine ─cfg──▶ EIEAccelerator
                                                              (HostLink)     ─i───▶
    tx pin ◀─ UARTTransmitter ◀─ FrameTransmitter ◀─tokens──                 ◀─o───

:class:`FrameReceiver` finds frames (sync byte and a header that passes its CRC-8, anywhere in the
byte stream, so it resynchronises on the first valid header after garbage), checks the CRC-16 and the
inter-byte timeout, and hands the command engine one token per header, payload byte and frame end.
:class:`FrameTransmitter` wraps the engine's responses in frames. :class:`RecordDecoder` turns LOAD_DATA
payloads into ``cfg`` writes. :class:`HostLink` is the command engine; :class:`HostLinkTop` puts the
UART, the link and the accelerator together behind two pins.

Streaming: LOAD_DATA and RUN payloads go to ``cfg`` and ``i`` as they arrive, before their frame's CRC
is known, so nothing limits throughput but the line rate. A frame that then fails leaves a defined
state: a failed load leaves the device *not loaded*; a failed RUN has its input vector completed
with zeros and its outputs discarded, then the error is answered and the images are untouched.
"""


import functools

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
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
    LOAD_BEGIN_BYTES,
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

__all__ = ["crc_next", "Token", "rx_token_layout", "tx_token_layout", "FrameReceiver", "FrameTransmitter",
           "RecordDecoder", "HostLink", "HostLinkTop", "DEFAULT_TIMEOUT_BYTES", "RX_FIFO_DEPTH"]

#: Default inter-byte timeout of :class:`HostLinkTop`, in character times (65,536: 0.2 s at 3 Mbaud).
DEFAULT_TIMEOUT_BYTES = 1 << 16
#: Bytes the link buffers while the accelerator is not ready for a write (e.g. right after reset).
RX_FIFO_DEPTH = 16


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


def _crc8(data):
    return crc_next(Const(0, 8), data, width=8, poly=CRC8_POLY)


def _crc16(crc, data):
    return crc_next(crc, data, width=16, poly=CRC16_POLY)


# --- frame receiver and transmitter --------------------------------------------------------------

class Token(enum.Enum, shape=2):
    """Kinds of tokens between the frame receiver/transmitter and the command engine."""

    HEADER = 0
    DATA = 1
    END = 2


rx_token_layout = data.StructLayout({
    "kind": Token, "cmd": 8, "seq": 8, "length": 16, "byte": 8, "end": 2,
})
tx_token_layout = data.StructLayout({"kind": Token, "cmd": 8, "seq": 8, "length": 16, "byte": 8})


def _check_timeout(timeout) -> int:
    if not isinstance(timeout, int) or isinstance(timeout, bool):
        raise TypeError(f"timeout must be an integer number of clock cycles, not {timeout!r}")
    if timeout < 2:
        raise ValueError(f"timeout must be at least 2 clock cycles, not {timeout}")
    return timeout


class FrameReceiver(wiring.Component):
    """Bytes in, frame tokens out: one HEADER, ``length`` DATA and one END token per frame.

    The last six bytes seen outside a frame form a window; a frame starts when the window holds the
    sync byte followed by a header whose CRC-8 checks (so a frame is found right after garbage, even
    when the garbage ends in a sync byte). A sync byte whose header fails pulses ``header_error``.
    The END token's ``end`` field is an :class:`~eie.spec.protocol.EndStatus`: OK, BAD_CRC (the CRC-16
    over everything after the sync byte does not check) or TIMEOUT (no byte for ``timeout`` cycles
    while the frame's payload or CRC was awaited; the frame is abandoned).

    **Latency.** A header byte costs 2 cycles (shift, then check); payload bytes pass through in the
    cycle they arrive. **Back-pressure.** ``o.ready`` low stalls ``i``; the timeout counts only while
    ``i`` offers nothing.

    Parameters
    ----------
    timeout : int
        Inter-byte timeout in clock cycles.

    Attributes
    ----------
    i : In(stream.Signature(8))
    o : Out(stream.Signature(rx_token_layout))
    header_error : Out(1)
    in_frame : Out(1)
        Between a header and its END token.
    """

    i: In(stream.Signature(8))
    o: Out(stream.Signature(rx_token_layout))
    header_error: Out(1)
    in_frame: Out(1)

    def __init__(self, *, timeout: int):
        self._timeout = _check_timeout(timeout)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        window = Signal(8 * 6)
        fresh = Signal()
        header = window[8:]
        header_ok = (window[:8] == SYNC) & (_crc8(header) == 0)
        crc = Signal(16)
        remaining = Signal(16)
        tail = Signal()          # which CRC byte is next
        end = Signal(2)
        quiet = Signal(range(self._timeout))
        accept = self.i.valid & self.i.ready
        m.d.comb += [self.o.payload.cmd.eq(window[8:16]), self.o.payload.seq.eq(window[16:24]),
                     self.o.payload.length.eq(window[24:40]), self.o.payload.byte.eq(self.i.payload),
                     self.o.payload.end.eq(end)]

        def watch_timeout():
            with m.If(accept | self.i.valid):
                m.d.sync += quiet.eq(0)
            with m.Elif(quiet == self._timeout - 1):
                m.d.sync += end.eq(EndStatus.TIMEOUT)
                m.next = "END"
            with m.Else():
                m.d.sync += quiet.eq(quiet + 1)

        with m.If(accept):
            m.d.sync += crc.eq(_crc16(crc, self.i.payload))

        with m.FSM(name="frame_rx"):
            with m.State("HUNT"):
                m.d.comb += self.i.ready.eq(~fresh)
                m.d.sync += fresh.eq(0)
                with m.If(accept):
                    m.d.sync += [window.eq(Cat(window[8:], self.i.payload)), fresh.eq(1)]
                with m.If(fresh & header_ok):
                    m.d.sync += [crc.eq(_crc16(Const(CRC16_INIT, 16), header)), remaining.eq(window[24:40]),
                                 quiet.eq(0), tail.eq(0)]
                    m.next = "HEADER"
                with m.Elif(fresh & (window[:8] == SYNC)):
                    m.d.comb += self.header_error.eq(1)
            with m.State("HEADER"):
                m.d.comb += [self.in_frame.eq(1), self.o.valid.eq(1), self.o.payload.kind.eq(Token.HEADER)]
                with m.If(self.o.ready):
                    m.next = "PAYLOAD"
                    with m.If(remaining == 0):
                        m.next = "CRC"
            with m.State("PAYLOAD"):
                m.d.comb += [self.in_frame.eq(1), self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready),
                             self.o.payload.kind.eq(Token.DATA)]
                with m.If(accept):
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(remaining == 1):
                        m.next = "CRC"
                watch_timeout()
            with m.State("CRC"):
                m.d.comb += [self.in_frame.eq(1), self.i.ready.eq(1)]
                with m.If(accept):
                    m.d.sync += tail.eq(1)
                    with m.If(tail):
                        m.d.sync += end.eq(Cat(_crc16(crc, self.i.payload) != 0, Const(0, 1)))
                        m.next = "END"
                watch_timeout()
            with m.State("END"):
                m.d.comb += [self.in_frame.eq(1), self.o.valid.eq(1), self.o.payload.kind.eq(Token.END)]
                with m.If(self.o.ready):
                    m.d.sync += window.eq(0)
                    m.next = "HUNT"
        return m


class FrameTransmitter(wiring.Component):
    """Frame tokens in, bytes out: a HEADER token sends the sync byte and the header, then exactly
    ``length`` DATA tokens are sent as the payload, then the CRC-16 is appended.

    **Throughput.** One byte per cycle of ``o`` (the UART sets the pace). **Back-pressure.** ``i`` is
    ready only while its token's byte can go out on ``o``.

    Attributes
    ----------
    i : In(stream.Signature(tx_token_layout))
    o : Out(stream.Signature(8))
    """

    i: In(stream.Signature(tx_token_layout))
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        head = Signal(32)        # cmd, seq, length
        index = Signal(range(6))
        remaining = Signal(16)
        crc = Signal(16)
        tail = Signal()
        covered = Signal()       # the byte on ``o`` enters the CRC-16
        with m.If(self.o.valid & self.o.ready & covered):
            m.d.sync += crc.eq(_crc16(crc, self.o.payload))
        with m.FSM(name="frame_tx"):
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid & (self.i.payload.kind == Token.HEADER)):
                    p = self.i.payload
                    m.d.sync += [head.eq(Cat(p.cmd, p.seq, p.length)), remaining.eq(p.length), index.eq(0),
                                 crc.eq(CRC16_INIT), tail.eq(0)]
                    m.next = "HEADER"
            with m.State("HEADER"):
                byte = Array([Const(SYNC, 8), head[:8], head[8:16], head[16:24], head[24:32], _crc8(head)])[index]
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(byte), covered.eq(index != 0)]
                with m.If(self.o.ready):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == 5):
                        m.next = "PAYLOAD"
                        with m.If(remaining == 0):
                            m.next = "CRC"
            with m.State("PAYLOAD"):
                m.d.comb += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload.byte),
                             self.i.ready.eq(self.o.ready), covered.eq(1)]
                with m.If(self.o.valid & self.o.ready):
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(remaining == 1):
                        m.next = "CRC"
            with m.State("CRC"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(Mux(tail, crc[:8], crc[8:]))]
                with m.If(self.o.ready):
                    m.d.sync += tail.eq(1)
                    with m.If(tail):
                        m.next = "IDLE"
        return m


# --- LOAD_DATA write records ---------------------------------------------------------------------

class _Phase(enum.Enum, shape=2):
    HEADER = 0
    CHECK = 1
    WORDS = 2
    DROP = 3


class RecordDecoder(ConfiguredComponent):
    """LOAD_DATA payload bytes in, ``cfg`` writes out (record layout: :mod:`eie.hw.link_map`).

    A record header is checked when complete: the space must exist, the address fit the ``cfg``
    address field and the count be non-zero; otherwise ``error`` rises and the rest of the frame is
    dropped. ``start`` (a new frame) clears the error and expects a record header.

    **Throughput.** One byte per cycle while ``cfg`` is ready, i.e. a write per word's bytes plus one
    cycle per record header. **Back-pressure.** ``cfg`` holds one write; ``i`` stalls while it waits.

    Attributes
    ----------
    i : In(stream.Signature(8))
    cfg : Out(stream.Signature(cfg_layout(config)))
    start : In(1)
    error : Out(1)
    boundary : Out(1)
        The bytes since ``start`` end on a record boundary.
    idle : Out(1)
        No write is waiting on ``cfg``.
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
        header = Signal(8 * RECORD_HEADER_BYTES)
        hindex = Signal(range(RECORD_HEADER_BYTES))
        space, pe, addr, count = header[:8], header[8:16], header[16:48], header[48:64]
        phase = Signal(_Phase)
        word = Signal(8 * widest)
        windex = Signal(range(widest))
        last_byte = Signal(range(widest))
        left = Signal(16)
        write_addr = Signal(addr_width(c))
        assembled = Signal(8 * widest)
        accept = self.i.valid & self.i.ready
        m.d.comb += [assembled.eq(word), assembled.word_select(windex, 8).eq(self.i.payload),
                     self.idle.eq(~self.cfg.valid), self.boundary.eq((phase == _Phase.HEADER) & (hindex == 0))]
        with m.If(self.cfg.ready):
            m.d.sync += self.cfg.valid.eq(0)

        with m.Switch(phase):
            with m.Case(_Phase.HEADER):
                m.d.comb += self.i.ready.eq(1)
                with m.If(accept):
                    m.d.sync += [header.word_select(hindex, 8).eq(self.i.payload), hindex.eq(hindex + 1)]
                    with m.If(hindex == RECORD_HEADER_BYTES - 1):
                        m.d.sync += [hindex.eq(0), phase.eq(_Phase.CHECK)]
            with m.Case(_Phase.CHECK):
                with m.If((space > max(Space)) | (addr[addr_width(c):] != 0) | (count == 0)):
                    m.d.sync += [self.error.eq(1), phase.eq(_Phase.DROP)]
                with m.Else():
                    m.d.sync += [write_addr.eq(addr), left.eq(count), word.eq(0), windex.eq(0), phase.eq(_Phase.WORDS),
                                 last_byte.eq(Array(Const(nbytes[s] - 1, range(widest)) for s in Space)[space[:3]])]
            with m.Case(_Phase.WORDS):
                m.d.comb += self.i.ready.eq(~self.cfg.valid | self.cfg.ready)
                with m.If(accept):
                    m.d.sync += [word.eq(assembled), windex.eq(windex + 1)]
                    with m.If(windex == last_byte):
                        p = self.cfg.payload
                        m.d.sync += [self.cfg.valid.eq(1), p.space.eq(space[:3]), p.pe.eq(pe),
                                     p.addr.eq(write_addr), p.data.eq(assembled[:data_width(c)]),
                                     write_addr.eq(write_addr + 1), left.eq(left - 1), word.eq(0), windex.eq(0)]
                        with m.If(left == 1):
                            m.d.sync += phase.eq(_Phase.HEADER)
            with m.Case(_Phase.DROP):
                m.d.comb += self.i.ready.eq(1)
        with m.If(self.start):
            m.d.sync += [self.error.eq(0), hindex.eq(0), phase.eq(_Phase.HEADER)]
        return m


# --- the command engine --------------------------------------------------------------------------

class _Mode(enum.Enum, shape=2):
    """What the command engine does with a frame's payload bytes."""

    SKIP = 0      # drop them (the command is refused or has no payload)
    ARGS = 1      # shift them into the argument register (LOAD_BEGIN, LOAD_END)
    RECORDS = 2   # LOAD_DATA: to the record decoder
    INPUT = 3     # RUN: assemble input elements for ``i``


class _Body(enum.Enum, shape=3):
    """The fixed-layout response bodies."""

    EMPTY = 0
    STATUS = 1
    ERROR = 2     # error code, the request's command, flags
    WRITES = 3    # LOAD_END: the number of writes applied (u32)
    CYCLES = 4    # the tail of a RUN response (u32)


_BODY_BYTES = {_Body.EMPTY: 0, _Body.STATUS: STATUS_BYTES, _Body.ERROR: 3, _Body.WRITES: 4, _Body.CYCLES: 4}


def _le_bytes(value, n):
    return [value[8 * k:8 * k + 8] for k in range(n)]


class HostLink(ConfiguredComponent):
    """The command engine of the host protocol (``docs/host-protocol.md``) between byte streams and the
    accelerator's ``cfg``, ``i`` and ``o``.

    One frame is handled at a time: the host sends a request after the response to the previous one,
    except LOAD_DATA frames, which are never answered and follow each other back to back. ``rx`` has
    a :data:`RX_FIFO_DEPTH`-byte FIFO for the cycles in which ``cfg`` or ``i`` is not ready.

    **Latency.** A response's sync byte reaches the transmitter about 5 cycles after the last byte of
    its request leaves the receive FIFO (RUN: the outputs follow as the accelerator produces them and
    the line takes them).
    **Throughput.** LOAD_DATA payloads reach ``cfg`` at the line rate: one write per word's bytes,
    with no handshake per write or per frame; RUN payloads reach ``i`` at one element per
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
        act_bytes = -(-c.act_bits // 8)

        m.submodules.rx_fifo = fifo = SyncFIFO(width=8, depth=RX_FIFO_DEPTH)
        m.submodules.receiver = receiver = FrameReceiver(timeout=self._timeout)
        m.submodules.transmitter = transmitter = FrameTransmitter()
        m.submodules.records = records = RecordDecoder(config=c)
        m.d.comb += [fifo.w_en.eq(self.rx.valid), fifo.w_data.eq(self.rx.payload), self.rx.ready.eq(fifo.w_rdy)]
        wiring.connect(m, fifo.r_stream, receiver.i)
        wiring.connect(m, transmitter.o, wiring.flipped(self.tx))
        wiring.connect(m, records.cfg, wiring.flipped(self.cfg))
        tok = receiver.o
        out = transmitter.i

        # --- device state (docs/host-protocol.md, "Device state") ----------------------------------
        loaded = Signal(init=img is not None)
        loading = Signal()
        load_error = Signal(ErrorCode)
        load_writes = Signal(32)
        loaded_id = Signal(64, init=0 if img is None else int.from_bytes(hash_bytes(image_id(img)), "little"))
        n_in = Signal(16, init=0 if img is None else img.n_in)
        n_out = Signal(16, init=0 if img is None else img.n_out)
        pending = Signal(96)              # image id, n_in, n_out of the load in progress
        last_error = Signal(ErrorCode)
        error_count = Signal(16)
        failed = Signal()
        flags = Cat(loaded, loading, Const(img is not None, 1), self.busy, Const(0, 4))
        m.d.comb += [self.loaded.eq(loaded), self.error.eq(failed)]
        with m.If(self.cfg.valid & self.cfg.ready):
            m.d.sync += load_writes.eq(load_writes + 1)

        # --- the frame in hand ---------------------------------------------------------------------
        cmd = Signal(8)
        seq = Signal(8)
        mode = Signal(_Mode)
        refusal = Signal(ErrorCode)       # decided from the header
        end = Signal(2)                   # EndStatus
        rx_fault = Signal(ErrorCode)      # a UART error while the frame was arriving
        args = Signal(8 * (LOAD_BEGIN_BYTES - 8))
        hash_ok = Signal()
        index = Signal(range(LOAD_BEGIN_BYTES + 1))
        config_hash = Array(Const(b, 8) for b in hash_bytes(c.config_hash()))

        # --- the error log: one error per cycle (the last assignment wins); any error fails a load --
        record = Signal(ErrorCode)
        with m.If(record != ErrorCode.NONE):
            m.d.sync += [last_error.eq(record), error_count.eq(error_count + (error_count != 0xFFFF))]
            with m.If(loading & (load_error == ErrorCode.NONE)):
                m.d.sync += load_error.eq(record)
        with m.If(receiver.header_error):
            m.d.comb += record.eq(ErrorCode.BAD_HEADER)
        for pulse, code in ((self.framing_error, ErrorCode.FRAMING), (self.overrun, ErrorCode.OVERRUN)):
            with m.If(pulse):
                m.d.comb += record.eq(code)
                with m.If(receiver.in_frame & (rx_fault == ErrorCode.NONE)):
                    m.d.sync += rx_fault.eq(code)

        # --- RUN: input elements, the cycle counter, the outputs -----------------------------------
        element = Signal(8 * act_bytes)
        byte_index = Signal(range(act_bytes))
        sent = Signal(16)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += sent.eq(sent + 1)
        # Compute cycles: from the edge that accepts the last input to the one that could accept the
        # first output (what the RTL testbench reports as the sum of the layers' cycles).
        counting = Signal()
        cycles = Signal(32)
        with m.If(self.i.valid & self.i.ready & (sent == n_in - 1)):
            m.d.sync += [counting.eq(1), cycles.eq(0)]
        with m.Elif(counting):
            m.d.sync += cycles.eq(cycles + (cycles != 0xFFFF_FFFF))
            with m.If(self.o.valid):
                m.d.sync += counting.eq(0)
        done_seen = Signal()
        with m.If(self.done):
            m.d.sync += done_seen.eq(1)
        received = Signal(16)
        word = Signal(8 * act_bytes)
        have_word = Signal()
        word_byte = Signal(range(act_bytes))
        run_failed = Signal()

        # --- responses -----------------------------------------------------------------------------
        body = Signal(_Body)
        body_index = Signal(range(STATUS_BYTES + 1))
        response_cmd = Signal(8)
        response_length = Signal(16)
        reply_error = Signal(ErrorCode)
        body_byte = Signal(8)
        bodies = {
            _Body.STATUS: [Const(VERSION, 8), *config_hash, *_le_bytes(Const(c.n_pe, 16), 2), Const(c.act_bits, 8),
                           flags, last_error, *_le_bytes(error_count, 2), *_le_bytes(loaded_id, 8),
                           *_le_bytes(n_in, 2), *_le_bytes(n_out, 2)],
            _Body.ERROR: [reply_error, cmd, flags],
            _Body.WRITES: _le_bytes(load_writes, 4),
            _Body.CYCLES: _le_bytes(cycles, 4),
        }
        assert all(len(v) == _BODY_BYTES[k] for k, v in bodies.items())
        with m.Switch(body):
            for kind, values in bodies.items():
                with m.Case(kind):
                    m.d.comb += body_byte.eq(Array(values)[body_index])
        body_bytes = Array(Const(_BODY_BYTES[kind], range(STATUS_BYTES + 1)) for kind in _Body)[body]

        def reply(command, kind, n_bytes):
            m.d.sync += [response_cmd.eq(command), body.eq(kind), response_length.eq(n_bytes), body_index.eq(0)]
            m.next = "SEND_HEADER"

        def refuse(code):
            m.d.comb += record.eq(code)
            m.d.sync += [reply_error.eq(code), failed.eq(1)]
            reply(Command.ERROR, _Body.ERROR, _BODY_BYTES[_Body.ERROR])

        def succeed(kind):
            m.d.sync += failed.eq(0)
            reply(cmd | RESPONSE, kind, _BODY_BYTES[kind])

        # The first error of a frame, in order of precedence, then the refusal decided from its header.
        frame_error = Signal(ErrorCode)
        with m.If(end == EndStatus.TIMEOUT):
            m.d.comb += frame_error.eq(ErrorCode.TIMEOUT)
        with m.Elif(rx_fault != ErrorCode.NONE):
            m.d.comb += frame_error.eq(rx_fault)
        with m.Elif(end == EndStatus.BAD_CRC):
            m.d.comb += frame_error.eq(ErrorCode.BAD_CRC)
        with m.Else():
            m.d.comb += frame_error.eq(refusal)

        with m.FSM(name="link"):
            with m.State("IDLE"):
                m.d.comb += tok.ready.eq(1)
                with m.If(tok.valid & (tok.payload.kind == Token.HEADER)):
                    p = tok.payload
                    m.d.sync += [cmd.eq(p.cmd), seq.eq(p.seq), index.eq(0), hash_ok.eq(1), mode.eq(_Mode.SKIP),
                                 refusal.eq(ErrorCode.NONE), byte_index.eq(0), sent.eq(0), rx_fault.eq(ErrorCode.NONE)]

                    def expect(n_bytes, then):
                        with m.If(p.length == n_bytes):
                            m.d.sync += mode.eq(then)
                        with m.Else():
                            m.d.sync += refusal.eq(ErrorCode.BAD_LENGTH)

                    with m.Switch(p.cmd):
                        with m.Case(Command.STATUS):
                            expect(0, _Mode.SKIP)
                        with m.Case(Command.LOAD_BEGIN):
                            expect(LOAD_BEGIN_BYTES, _Mode.ARGS)
                        with m.Case(Command.LOAD_END):
                            expect(4, _Mode.ARGS)
                        with m.Case(Command.LOAD_DATA):
                            with m.If(~loading):
                                m.d.sync += refusal.eq(ErrorCode.NOT_LOADING)
                            with m.Elif(p.length == 0):
                                m.d.sync += refusal.eq(ErrorCode.BAD_LENGTH)
                            with m.Elif(load_error == ErrorCode.NONE):  # else the load failed already: skip
                                m.d.sync += mode.eq(_Mode.RECORDS)
                                m.d.comb += records.start.eq(1)
                        with m.Case(Command.RUN):
                            with m.If(~loaded):
                                m.d.sync += refusal.eq(ErrorCode.NOT_LOADED)
                            with m.Else():
                                m.d.sync += done_seen.eq(0)
                                expect(n_in * act_bytes, _Mode.INPUT)
                        with m.Default():
                            m.d.sync += refusal.eq(ErrorCode.UNKNOWN_COMMAND)
                    m.next = "PAYLOAD"

            with m.State("PAYLOAD"):
                is_data = tok.payload.kind == Token.DATA
                byte = tok.payload.byte
                with m.If(tok.valid & ~is_data):
                    m.d.comb += tok.ready.eq(1)
                    m.d.sync += end.eq(tok.payload.end)
                    m.next = "FINISH"
                with m.Switch(mode):
                    with m.Case(_Mode.SKIP):
                        m.d.comb += tok.ready.eq(1)
                    with m.Case(_Mode.ARGS):
                        m.d.comb += tok.ready.eq(1)
                        with m.If(tok.valid & is_data):
                            m.d.sync += [index.eq(index + 1), args.eq(Cat(args[8:], byte))]
                            with m.If((index < 8) & (byte != config_hash[index[:3]])):
                                m.d.sync += hash_ok.eq(0)
                    with m.Case(_Mode.RECORDS):
                        m.d.comb += [records.i.valid.eq(tok.valid & is_data), records.i.payload.eq(byte)]
                        with m.If(is_data):
                            m.d.comb += tok.ready.eq(records.i.ready)
                    with m.Case(_Mode.INPUT):
                        assembled = Signal(8 * act_bytes)
                        m.d.comb += [assembled.eq(element), assembled.word_select(byte_index, 8).eq(byte)]
                        with m.If(byte_index == act_bytes - 1):
                            m.d.comb += [self.i.valid.eq(tok.valid & is_data), self.i.payload.eq(assembled)]
                            with m.If(is_data):
                                m.d.comb += tok.ready.eq(self.i.ready)
                            with m.If(tok.valid & is_data & self.i.ready):
                                m.d.sync += byte_index.eq(0)
                        with m.Else():
                            with m.If(is_data):
                                m.d.comb += tok.ready.eq(1)
                            with m.If(tok.valid & is_data):
                                m.d.sync += [element.eq(assembled), byte_index.eq(byte_index + 1)]

            with m.State("FINISH"):
                with m.Switch(cmd):
                    with m.Case(Command.LOAD_DATA):   # never answered; an error fails the load
                        with m.If(records.idle):       # every write of the frame has been counted
                            code = Signal(ErrorCode)
                            with m.If(frame_error != ErrorCode.NONE):
                                m.d.comb += code.eq(frame_error)
                            with m.Elif((mode == _Mode.RECORDS) & (records.error | ~records.boundary)):
                                m.d.comb += code.eq(ErrorCode.BAD_RECORD)
                            m.d.comb += record.eq(code)
                            m.d.sync += failed.eq(code != ErrorCode.NONE)
                            m.next = "IDLE"
                    with m.Case(Command.RUN):
                        with m.If(mode != _Mode.INPUT):
                            refuse(frame_error)
                        with m.Elif(frame_error == ErrorCode.NONE):
                            m.d.sync += [failed.eq(0), run_failed.eq(0), response_cmd.eq(cmd | RESPONSE),
                                         response_length.eq(n_out * act_bytes + 4)]
                            m.next = "SEND_HEADER"
                        with m.Else():
                            m.d.comb += record.eq(frame_error)
                            m.d.sync += [failed.eq(1), run_failed.eq(1), reply_error.eq(frame_error),
                                         response_cmd.eq(Command.ERROR), body.eq(_Body.ERROR),
                                         response_length.eq(_BODY_BYTES[_Body.ERROR]), body_index.eq(0),
                                         received.eq(0)]
                            m.next = "PAD"
                    with m.Default():
                        with m.If(frame_error != ErrorCode.NONE):
                            refuse(frame_error)
                        with m.Elif(cmd == Command.STATUS):
                            succeed(_Body.STATUS)
                        with m.Elif(cmd == Command.LOAD_BEGIN):
                            with m.If(~hash_ok):
                                refuse(ErrorCode.HASH_MISMATCH)
                            with m.Else():
                                m.d.sync += [loading.eq(1), loaded.eq(0), load_error.eq(ErrorCode.NONE),
                                             load_writes.eq(0), pending.eq(args)]
                                succeed(_Body.EMPTY)
                        with m.Else():                 # LOAD_END
                            with m.If(~loading):
                                refuse(ErrorCode.NOT_LOADING)
                            with m.Else():
                                m.d.sync += loading.eq(0)
                                with m.If(load_error != ErrorCode.NONE):
                                    refuse(load_error)
                                with m.Elif(args[-32:] != load_writes):
                                    refuse(ErrorCode.COUNT_MISMATCH)
                                with m.Else():
                                    m.d.sync += [loaded.eq(1), loaded_id.eq(pending[:64]), n_in.eq(pending[64:80]),
                                                 n_out.eq(pending[80:96])]
                                    succeed(_Body.WRITES)

            # --- after a RUN frame -----------------------------------------------------------------
            with m.State("PAD"):           # complete an interrupted input vector with zeros
                with m.If(sent == n_in):
                    m.next = "DRAIN"
                with m.Else():
                    m.d.comb += [self.i.valid.eq(1), self.i.payload.eq(0)]
                    with m.If(self.i.ready & (sent == n_in - 1)):
                        m.next = "DRAIN"
            with m.State("DRAIN"):         # discard the outputs of a failed RUN
                m.d.comb += self.o.ready.eq(1)
                with m.If(self.o.valid):
                    m.d.sync += received.eq(received + 1)
                with m.If(received == n_out):
                    m.next = "WAIT_DONE"
            with m.State("OUTPUTS"):
                with m.If(received == n_out):
                    m.next = "WAIT_DONE"
                with m.Elif(~have_word):
                    m.d.comb += self.o.ready.eq(1)
                    with m.If(self.o.valid):
                        m.d.sync += [word.eq(self.o.payload), have_word.eq(1), word_byte.eq(0)]
                with m.Else():
                    m.d.comb += [out.valid.eq(1), out.payload.kind.eq(Token.DATA),
                                 out.payload.byte.eq(word.word_select(word_byte, 8))]
                    with m.If(out.ready):
                        m.d.sync += word_byte.eq(word_byte + 1)
                        with m.If(word_byte == act_bytes - 1):
                            m.d.sync += [have_word.eq(0), received.eq(received + 1)]
            with m.State("WAIT_DONE"):
                with m.If(done_seen):
                    with m.If(run_failed):
                        m.next = "SEND_HEADER"
                    with m.Else():
                        m.d.sync += [body.eq(_Body.CYCLES), body_index.eq(0)]
                        m.next = "SEND_BODY"

            # --- responses -------------------------------------------------------------------------
            with m.State("SEND_HEADER"):
                m.d.comb += [out.valid.eq(1), out.payload.kind.eq(Token.HEADER), out.payload.cmd.eq(response_cmd),
                             out.payload.seq.eq(seq), out.payload.length.eq(response_length)]
                with m.If(out.ready):
                    m.next = "SEND_BODY"
                    with m.If(response_cmd == (Command.RUN | RESPONSE)):
                        m.d.sync += [received.eq(0), have_word.eq(0)]
                        m.next = "OUTPUTS"
            with m.State("SEND_BODY"):
                with m.If(body_index == body_bytes):
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += [out.valid.eq(1), out.payload.kind.eq(Token.DATA), out.payload.byte.eq(body_byte)]
                    with m.If(out.ready):
                        m.d.sync += body_index.eq(body_index + 1)
        return m


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
