# amaranth: UnusedElaboratable=no
"""The host link's pieces on Amaranth's simulator, each against the protocol's Python definition
(eie.spec.protocol, eie.hw.link_map); the whole link runs on Verilator in test_rtl_host_link.py."""

import random

import pytest
from amaranth.hdl import Cat, Const, Module, Signal

from eie.hw.host_link import (
    Framer,
    HostLink,
    HostLinkTop,
    RecordDecoder,
    Token,
    _lfsr_after,
    _lfsr_step,
    crc_next,
)
from eie.hw.io_map import image_writes
from eie.hw.link_map import pack_records
from eie.hw.testing import simulate
from eie.sim.random_net import random_network
from eie.spec.config import EIEConfig
from eie.spec.emit import write_images
from eie.spec.image import load_images
from eie.spec.protocol import Command, EndStatus, crc8, crc16, encode_frame

CONFIG = EIEConfig(n_pe=2, mat_depth=64, ptr_depth=64, max_rows_per_pe=16, bias_depth=32, max_layers=2)


@pytest.mark.parametrize("n_bytes", [1, 2, 5])
def test_crc_networks_equal_the_protocol_crcs(n_bytes):
    rng = random.Random(n_bytes)
    m = Module()
    crc_in, data = Signal(16), Signal(8 * n_bytes)
    out16, out8 = Signal(16), Signal(8)
    m.d.comb += [out16.eq(crc_next(crc_in, data, width=16, poly=0x1021)),
                 out8.eq(crc_next(Const(0, 8), data, width=8, poly=0x07))]

    async def bench(ctx):
        for _ in range(30):
            start, payload = rng.randrange(1 << 16), bytes(rng.randrange(256) for _ in range(n_bytes))
            ctx.set(crc_in, start)
            ctx.set(data, int.from_bytes(payload, "little"))
            await ctx.delay(1e-9)
            assert ctx.get(out16) == crc16(payload, start)
            assert ctx.get(out8) == crc8(payload)

    simulate(m, bench, clock=False, name="crc")


@pytest.mark.parametrize("width", range(2, 17))
def test_timeout_lfsr_has_full_period_and_jumps_ahead(width):
    state, period = 1, 0
    while True:
        state, period = _lfsr_step(state, width), period + 1
        if state == 1:
            break
    assert period == (1 << width) - 1
    stepped = 3 % period or 1
    for _ in range(500):
        stepped = _lfsr_step(stepped, width)
    assert _lfsr_after(3 % period or 1, 500, width) == stepped


def receive_tokens(data: bytes, *, timeout=40, gaps=()):
    """Feed ``data`` (pausing ``gap`` cycles before byte k for each (k, gap) in ``gaps``); collect tokens."""
    dut = Framer(timeout=timeout)
    tokens, header_errors = [], []
    pauses = dict(gaps)

    async def source(ctx):
        for k, b in enumerate(data):
            ctx.set(dut.rx.valid, 0)
            await ctx.tick().repeat(pauses.get(k, 0) + 1)
            ctx.set(dut.rx.valid, 1)
            ctx.set(dut.rx.payload, b)
            await ctx.tick().until(dut.rx.ready)
        ctx.set(dut.rx.valid, 0)
        await ctx.tick().repeat(timeout + 20)

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        async for _, _, valid, token, header, header_error in ctx.tick().sample(dut.o.valid, dut.o.payload,
                                                                                 dut.header, dut.header_error):
            if header_error:
                header_errors.append(len(tokens))
            if valid:
                kind = Token(token.kind)
                tokens.append((kind, {Token.HEADER: (header.cmd, header.seq, header.length), Token.DATA: token.byte,
                                      Token.END: EndStatus(token.end)}[kind]))

    simulate(dut, source, monitors=[sink], name="framer_rx")
    return tokens, header_errors


def frame_tokens(cmd, seq, payload, end=EndStatus.OK):
    return [(Token.HEADER, (cmd, seq, len(payload)))] + [(Token.DATA, b) for b in payload] + [(Token.END, end)]


def test_receiver_finds_frames_after_garbage_and_checks_crcs():
    good = encode_frame(Command.RUN, 3, b"\x01\xa5\x02")
    bad = encode_frame(Command.STATUS, 4)
    bad = bad[:-1] + bytes([bad[-1] ^ 0x40])
    empty = encode_frame(Command.STATUS, 5)
    # Garbage ending in sync bytes right before a frame: the window still finds its header.
    tokens, header_errors = receive_tokens(b"\x00\xa5\x13\xa5\xa5" + good + bad + b"\xa5" + empty)
    assert tokens == (frame_tokens(Command.RUN, 3, b"\x01\xa5\x02") + frame_tokens(Command.STATUS, 4, b"",
                      EndStatus.BAD_CRC) + frame_tokens(Command.STATUS, 5, b""))
    assert header_errors  # the stray sync bytes were noticed


def test_receiver_abandons_a_frame_that_stops_arriving():
    frame = encode_frame(Command.RUN, 7, b"abcdef")
    tokens, _ = receive_tokens(frame[:9] + frame, timeout=30, gaps=[(9, 60)])
    truncated = [(Token.HEADER, (Command.RUN, 7, 6))] + [(Token.DATA, b) for b in b"abc"]
    assert tokens == truncated + [(Token.END, EndStatus.TIMEOUT)] + frame_tokens(Command.RUN, 7, b"abcdef")


def test_transmitter_frames_equal_the_protocol_encoding():
    dut = Framer(timeout=40)
    frames = [(Command.STATUS | 0x80, 1, bytes(range(28))), (Command.ERROR, 2, b"\x02\x05\x01"), (0x82, 3, b"")]
    sent = bytearray()

    async def source(ctx):
        for cmd, seq, payload in frames:
            body = bytes([cmd, seq, len(payload) & 0xFF, len(payload) >> 8]) + payload
            tokens = [{"byte": b, "last": k == len(body) - 1} for k, b in enumerate(body)]
            for token in tokens:
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, token)
                await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
        await ctx.tick().repeat(60)

    async def sink(ctx):
        rng = random.Random(0)
        while True:
            ready = rng.random() < 0.5  # a slow line
            ctx.set(dut.tx.ready, ready)
            _, _, valid, byte = await ctx.tick().sample(dut.tx.valid, dut.tx.payload)
            if valid and ready:
                sent.append(byte)

    simulate(dut, source, monitors=[sink], name="framer_tx")
    assert bytes(sent) == b"".join(encode_frame(*f) for f in frames)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    net = random_network(2, [10, 12, 5], CONFIG, density=0.5)
    return load_images(write_images(net, CONFIG, tmp_path_factory.mktemp("img")), expect_config=CONFIG)


def record_decoder(config):
    """A :class:`RecordDecoder` with the word register :class:`HostLink` lends it."""
    m = Module()
    m.submodules.dut = dut = RecordDecoder(config=config)
    word = Signal(len(dut.word))
    with m.If(dut.shift):
        m.d.sync += word.eq(Cat(word[8:], dut.shift_byte))
    m.d.comb += dut.word.eq(word)
    return m, dut


def test_record_decoder_writes_what_the_records_hold(images):
    writes = image_writes(images)
    payloads = pack_records(CONFIG, writes, 48)
    top, dut = record_decoder(CONFIG)
    got = []
    boundaries = []

    async def source(ctx):
        for p in payloads:
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for b in p:
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, b)
                await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            await ctx.tick().until(dut.idle)
            boundaries.append((ctx.get(dut.boundary), ctx.get(dut.error)))

    async def sink(ctx):
        rng = random.Random(1)
        while True:
            ready = rng.random() < 0.6  # cfg back-pressure
            ctx.set(dut.cfg.ready, ready)
            _, _, valid, w = await ctx.tick().sample(dut.cfg.valid, dut.cfg.payload)
            if valid and ready:
                got.append((int(w.space), w.pe, w.addr, w.data))

    simulate(top, source, monitors=[sink], name="records")
    assert got == [(int(s), pe, a, d) for s, pe, a, d in writes]
    assert boundaries == [(1, 0)] * len(payloads)


@pytest.mark.parametrize("record, why", [
    (bytes([6, 0, 0, 0, 0, 0, 1, 0, 0, 0]), "no such space"),
    (bytes([0, 0, 0, 0, 1, 0, 1, 0, 0, 0]), "address beyond the cfg address field"),
    (bytes([0, 0, 0, 0, 0, 0, 0, 0]), "zero count"),
])
def test_record_decoder_flags_malformed_records(record, why):
    top, dut = record_decoder(CONFIG)

    async def bench(ctx):
        ctx.set(dut.cfg.ready, 1)
        for b in record:
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, b)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)
        await ctx.tick().repeat(3)
        assert ctx.get(dut.error), why
        assert not ctx.get(dut.cfg.valid), why

    simulate(top, bench, name="bad_record")


def test_parameters_are_checked(images):
    with pytest.raises(TypeError, match=r"^timeout must be an integer number of clock cycles, not 1.5$"):
        Framer(timeout=1.5)
    with pytest.raises(ValueError, match=r"^timeout must be at least 2 clock cycles, not 1$"):
        HostLink(config=CONFIG, timeout=1)
    with pytest.raises(ValueError, match=r"^divisor must be at least 4 clocks per bit, not 2$"):
        HostLinkTop(config=CONFIG, divisor=2)
    with pytest.raises(TypeError, match=r"^config must be an EIEConfig, not None$"):
        HostLinkTop(config=None, divisor=8)
    with pytest.raises(ValueError, match=r"were made for configuration"):
        HostLinkTop(config=CONFIG.replace(n_pe=3), images=images, divisor=8)
    top = HostLinkTop(config=CONFIG, images=images, divisor=8)
    assert (top.divisor, top.timeout) == (8, 8 * 10 * 65536)
