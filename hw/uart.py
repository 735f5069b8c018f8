"""UART receiver and transmitter (8N1) with ``amaranth.lib.stream`` byte ports.

Both take the bit time as a whole number of ``sync`` clocks, ``divisor`` (at least 4: the receiver
samples the middle of a bit through a 2-flop synchroniser, which leaves a cycle of uncertainty about
where a start bit began).
"""


from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTReceiver", "UARTTransmitter", "check_divisor", "MIN_DIVISOR"]

MIN_DIVISOR = 4


def check_divisor(divisor) -> int:
    """Return ``divisor`` if it is an integer of at least :data:`MIN_DIVISOR` clocks per bit.

    Raises
    ------
    TypeError
        ``divisor`` is not an integer.
    ValueError
        ``divisor`` is below :data:`MIN_DIVISOR`.
    """
    if not isinstance(divisor, int) or isinstance(divisor, bool):
        raise TypeError(f"divisor must be an integer, not {divisor!r}")
    if divisor < MIN_DIVISOR:
        raise ValueError(f"divisor must be at least {MIN_DIVISOR} clocks per bit, not {divisor}")
    return divisor


class UARTReceiver(wiring.Component):
    """8N1 receiver: bits on ``rx`` to bytes on ``o``.

    ``rx`` passes through a 2-flop synchroniser (idle high). A falling edge starts a character;
    the start bit is checked again at its middle (a shorter low pulse is ignored), then the eight data
    bits (LSB first) and the stop bit are sampled at their middles, ``divisor`` clocks apart.

    **Latency.** The byte is offered on ``o`` 3 cycles after the middle of its stop bit (2 for the
    synchroniser, 1 register), i.e. about 9.5 bit times after the start bit's falling edge.
    **Throughput.** Back-to-back characters at the line rate: the receiver hunts for the next start
    bit from the middle of the stop bit on.
    **Back-pressure.** ``o`` holds one byte. A byte that completes while the previous one is still
    offered is dropped and ``overrun`` pulses for one cycle; the receiver never stalls the line.
    **Errors.** A low stop bit drops the character and pulses ``framing_error``; the receiver then
    waits for the line to return high (a break) before it hunts again.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (at least 4).

    Attributes
    ----------
    rx : In(1)
        The serial input (asynchronous to the clock).
    o : Out(stream.Signature(8))
        Received bytes.
    framing_error, overrun : Out(1)
        One-cycle pulses.

    Raises
    ------
    TypeError, ValueError
        See :func:`check_divisor`.
    """

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    framing_error: Out(1)
    overrun: Out(1)

    def __init__(self, *, divisor: int):
        self._divisor = check_divisor(divisor)
        super().__init__()

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        timer = Signal(range(d))
        bit = Signal(range(10))
        shreg = Signal(8)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        def deliver():
            with m.If(self.o.valid & ~self.o.ready):
                m.d.comb += self.overrun.eq(1)
            with m.Else():
                m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(shreg)]

        with m.FSM(name="uart_rx"):
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(line):
                        m.next = "IDLE"  # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(d - 1), shreg.eq(Cat(shreg[1:], line)), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(line):
                        deliver()
                        m.next = "IDLE"
                    with m.Else():
                        m.d.comb += self.framing_error.eq(1)
                        m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m


class UARTTransmitter(wiring.Component):
    """8N1 transmitter: bytes on ``i`` to bits on ``tx``.

    ``tx`` comes straight from a flip-flop (no glitches) and idles high.

    **Latency.** The start bit begins in the cycle after the handshake on ``i``.
    **Throughput.** One byte per ``10 * divisor`` cycles, back to back: ``i.ready`` is high while idle
    and in the last cycle of a stop bit, so a waiting byte follows with no idle time on the line.
    **Back-pressure.** ``i.ready`` is low while a character is on the line.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (at least 4).

    Attributes
    ----------
    i : In(stream.Signature(8))
        Bytes to send.
    tx : Out(1)
        The serial output.

    Raises
    ------
    TypeError, ValueError
        See :func:`check_divisor`.
    """

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, *, divisor: int):
        self._divisor = check_divisor(divisor)
        super().__init__()

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        shreg = Signal(10, init=0x3FF)  # stop, data[7:0], start; shifted out LSB first
        bits_left = Signal(range(11))
        timer = Signal(range(d))
        m.d.comb += [self.tx.eq(shreg[0]),
                     self.i.ready.eq((bits_left == 0) | ((bits_left == 1) & (timer == 0)))]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [shreg.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))), bits_left.eq(10),
                         timer.eq(d - 1)]
        with m.Elif(bits_left != 0):
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [shreg.eq(Cat(shreg[1:], Const(1, 1))), bits_left.eq(bits_left - 1), timer.eq(d - 1)]
        return m
