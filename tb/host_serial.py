"""A pyserial-like port on the simulated board's UART pins, for the host client in cocotb.

:class:`SimSerial` drives ``rx`` with a cocotbext-uart ``UartSource`` and listens on ``tx`` with a
``UartSink``. Its ``write`` and ``read`` are blocking calls meant for code run in a thread started by
``cocotb.task.bridge`` (here: :class:`eie.host.Device`, unchanged); they hand the work to the
simulator with ``cocotb.task.resume``. ``timeout`` is in *simulated* seconds.
"""

from __future__ import annotations

import logging

from cocotb.task import resume
from cocotb.utils import get_sim_time
from cocotbext.uart import UartSink, UartSource

__all__ = ["SimSerial"]


class SimSerial:
    """The host end of the simulated UART.

    Parameters
    ----------
    rx, tx
        The DUT's pins (``dut.rx`` driven, ``dut.tx`` sampled).
    baudrate : float
        Bits per simulated second (the clock frequency over the DUT's divisor).
    timeout : float
        Seconds of simulated time a :meth:`read` waits for its bytes.
    """

    def __init__(self, rx, tx, *, baudrate: float, timeout: float):
        self.source = UartSource(rx, baud=baudrate)
        self.sink = UartSink(tx, baud=baudrate)
        for model in (self.source, self.sink):  # one log line per byte otherwise
            model.log.setLevel(logging.WARNING)
        self.baudrate = baudrate
        self.timeout = timeout
        self.bytes_written = 0
        self.bytes_read = 0

    def write(self, data) -> int:
        data = bytes(data)
        resume(self._write)(data)
        self.bytes_written += len(data)
        return len(data)

    def read(self, n: int) -> bytes:
        data = resume(self._read)(n)
        self.bytes_read += len(data)
        return data

    def close(self) -> None:
        pass

    async def _write(self, data: bytes) -> None:
        await self.source.write(data)

    async def _read(self, n: int) -> bytes:
        got = bytearray()
        deadline = get_sim_time("ns") + self.timeout * 1e9
        while len(got) < n:
            if not self.sink.empty():
                got += self.sink.read_nowait(min(n - len(got), self.sink.count()))
                continue
            left = deadline - get_sim_time("ns")
            if left <= 0:
                break
            await self.sink.wait(int(left) + 1, "ns")
        return bytes(got)

    async def drain(self) -> None:
        """Wait until every byte written has left the source."""
        await self.source.wait()
