# amaranth: UnusedElaboratable=no
"""UART receiver and transmitter on Amaranth's simulator, against a naive bit-level model of the line."""

import random

import pytest
from amaranth.hdl import Module

from eie.hw.testing import simulate
from eie.hw.uart import UARTReceiver, UARTTransmitter


def line_bits(byte, stop=1):
    """The 8N1 character: start bit, data LSB first, stop bit."""
    return [0] + [(byte >> k) & 1 for k in range(8)] + [stop]


def drive(bits_per_char, divisor):
    """Cycle-by-cycle rx levels for characters (lists of bits), each bit ``divisor`` cycles."""
    levels = []
    for bits in bits_per_char:
        for b in bits:
            levels += [b] * divisor
    return levels


def run_receiver(divisor, levels, *, ready=lambda t: 1, extra=60):
    dut = UARTReceiver(divisor=divisor)
    got, framing, overrun = [], [], []

    async def bench(ctx):
        for t in range(len(levels) + extra):
            ctx.set(dut.rx, levels[t] if t < len(levels) else 1)
            ctx.set(dut.o.ready, ready(t))
            await ctx.delay(1e-9)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                got.append(ctx.get(dut.o.payload))
            if ctx.get(dut.framing_error):
                framing.append(t)
            if ctx.get(dut.overrun):
                overrun.append(t)
            await ctx.tick()

    simulate(dut, bench, name="uart_rx")
    return got, framing, overrun


@pytest.mark.parametrize("divisor", [4, 5, 7, 16])
def test_receiver_reads_back_to_back_characters(divisor):
    rng = random.Random(divisor)
    data = [0x00, 0xFF, 0x55, 0xAA] + [rng.randrange(256) for _ in range(8)]
    got, framing, overrun = run_receiver(divisor, drive([line_bits(b) for b in data], divisor))
    assert got == data and not framing and not overrun


@pytest.mark.parametrize("divisor, stretch", [(8, 1.03), (8, 0.97), (16, 1.04), (16, 0.96)])
def test_receiver_tolerates_a_few_percent_of_rate_error(divisor, stretch):
    data = [0x00, 0xFF, 0x81, 0x7E, 0x3C]
    levels, t = [], 0.0
    for bits in [line_bits(b) for b in data]:
        for bit in bits:
            t += divisor * stretch
            levels += [bit] * (round(t) - len(levels))
    assert run_receiver(divisor, levels)[0] == data


def test_receiver_drops_a_character_with_a_low_stop_bit_and_waits_for_idle():
    d = 6
    chars = [line_bits(0x12), line_bits(0x34, stop=0), [0] * 12, [1], line_bits(0x56)]
    got, framing, overrun = run_receiver(d, drive(chars, d))
    assert got == [0x12, 0x56] and len(framing) == 1 and not overrun


def test_receiver_ignores_a_glitch_shorter_than_half_a_bit():
    d = 8
    levels = [1] * 10 + [0] * 2 + [1] * 20 + drive([line_bits(0xC3)], d)
    assert run_receiver(d, levels)[0] == [0xC3]


def test_receiver_overrun_keeps_the_first_byte_and_pulses():
    d = 4
    levels = drive([line_bits(0x01), line_bits(0x02), line_bits(0x03)], d)
    # Not ready until the second and third characters have arrived.
    got, framing, overrun = run_receiver(d, levels, ready=lambda t: int(t > 3 * 10 * d + 5), extra=80)
    assert got == [0x01] and len(overrun) == 2 and not framing


@pytest.mark.parametrize("divisor", [4, 5, 9])
def test_transmitter_sends_back_to_back_characters_at_the_line_rate(divisor):
    rng = random.Random(divisor)
    data = [rng.randrange(256) for _ in range(6)]
    dut = UARTTransmitter(divisor=divisor)
    levels = []

    async def bench(ctx):
        assert ctx.get(dut.tx) == 1
        for b in data:
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, b)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)
        await ctx.tick().repeat(12 * divisor)

    async def monitor(ctx):
        async for _, _, tx in ctx.tick().sample(dut.tx):
            levels.append(tx)

    simulate(dut, bench, monitors=[monitor], name="uart_tx")
    start = levels.index(0)
    expected = [bit for b in data for bit in line_bits(b) for _ in range(divisor)]
    assert levels[start:start + len(expected)] == expected  # no idle time between characters


def test_transmitter_to_receiver_loopback():
    m = Module()
    m.submodules.tx = tx = UARTTransmitter(divisor=5)
    m.submodules.rx = rx = UARTReceiver(divisor=5)
    m.d.comb += rx.rx.eq(tx.tx)
    data = list(range(0, 256, 17))
    got = []

    async def send(ctx):
        for b in data:
            ctx.set(tx.i.valid, 1)
            ctx.set(tx.i.payload, b)
            await ctx.tick().until(tx.i.ready)
        ctx.set(tx.i.valid, 0)
        await ctx.tick().repeat(80)

    async def receive(ctx):
        ctx.set(rx.o.ready, 1)
        async for _, _, valid, payload in ctx.tick().sample(rx.o.valid, rx.o.payload):
            if valid:
                got.append(payload)

    simulate(m, send, monitors=[receive], name="uart_loop")
    assert got == data


@pytest.mark.parametrize("cls", [UARTReceiver, UARTTransmitter])
def test_divisor_is_checked(cls):
    with pytest.raises(TypeError, match=r"^divisor must be an integer, not 4.5$"):
        cls(divisor=4.5)
    with pytest.raises(ValueError, match=r"^divisor must be at least 4 clocks per bit, not 3$"):
        cls(divisor=3)
    assert cls(divisor=4).divisor == 4
