"""The host client of the accelerator's serial link (``docs/host-protocol.md``).

:class:`Device` talks to a board (or to the simulated one of ``tb/test_host_link.py``) through any
pyserial-like port: an object with ``write(bytes)``, ``read(n)`` (which returns fewer bytes when its
``timeout`` in seconds runs out) and ``timeout``; ``baudrate``, when present, lets a long load wait
for the line. Every failure is an :class:`~eie.spec.errors.EIEError` with a one-line message::

    with Device.open("/dev/ttyUSB0", baud=3_000_000) as device:
        if not device.holds(images):
            device.load(images)
        outputs, cycles = device.run(x_int)
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from eie.hw.io_map import image_writes
from eie.hw.link_map import image_id, pack_records
from eie.spec.errors import EIEError
from eie.spec.protocol import (
    HEADER_BYTES,
    LOAD_BEGIN_BYTES,
    LOAD_END_BYTES,
    MAX_PAYLOAD,
    RESPONSE,
    SYNC,
    Command,
    ErrorCode,
    Flag,
    Status,
    crc16,
    encode_frame,
    hash_bytes,
    parse_header,
)

__all__ = ["LinkError", "LinkTimeout", "DeviceError", "Device", "DeviceRun", "run_on_device", "DEFAULT_BAUD",
           "DEFAULT_TIMEOUT", "LOAD_FRAME_BYTES", "describe_error"]

DEFAULT_BAUD = 3_000_000
DEFAULT_TIMEOUT = 2.0
#: LOAD_DATA payload size: the load streams without waiting, so this only bounds what one bad frame
#: costs to find (the whole load is repeated after any error).
LOAD_FRAME_BYTES = 1024
_MAX_GARBAGE = 1 << 16


class LinkError(EIEError):
    """The link failed: a corrupt or unexpected response, a port that cannot be used."""


class LinkTimeout(LinkError):
    """The device did not answer in time."""


class DeviceError(LinkError):
    """The device answered a request with an error code.

    Attributes
    ----------
    code : ErrorCode
    command : int
        The request it refused.
    flags : Flag
        The device's state after the error.
    """

    def __init__(self, message: str, code: ErrorCode, command: int, flags: Flag):
        super().__init__(message)
        self.code = code
        self.command = command
        self.flags = flags


_EXPLAIN = {
    ErrorCode.BAD_HEADER: "a frame header failed its CRC",
    ErrorCode.BAD_CRC: "the device received a corrupted frame (CRC-16 failed); check the cable and the baud rate",
    ErrorCode.UNKNOWN_COMMAND: "the device does not know the command (protocol version mismatch?)",
    ErrorCode.BAD_LENGTH: "the frame's length does not suit the command (for RUN: the loaded network's n_in)",
    ErrorCode.HASH_MISMATCH: "the images were made for another hardware configuration; nothing was written",
    ErrorCode.NOT_LOADED: "no complete image set is loaded on the device; load the images first",
    ErrorCode.NOT_LOADING: "LOAD_DATA or LOAD_END without LOAD_BEGIN",
    ErrorCode.BAD_RECORD: "a malformed write record; the device is not loaded",
    ErrorCode.COUNT_MISMATCH: "the device applied a different number of writes than were sent (frames lost); "
                              "it is not loaded, load again",
    ErrorCode.TIMEOUT: "the device timed out waiting for the rest of a frame",
    ErrorCode.OVERRUN: "the device lost received bytes (overrun)",
    ErrorCode.FRAMING: "the device saw a UART framing error; check the baud rate",
}


def describe_error(code: int) -> str:
    try:
        return f"{ErrorCode(code).name}: {_EXPLAIN[ErrorCode(code)]}"
    except (ValueError, KeyError):
        return f"unknown error code {code}"


def _command_name(cmd: int) -> str:
    try:
        return Command(cmd).name
    except ValueError:
        return f"command 0x{cmd:02x}"


class Device:
    """An accelerator at the other end of a serial port.

    Parameters
    ----------
    port
        A pyserial-like object (``write``, ``read``, ``timeout``; ``baudrate`` optional).
    load_frame_bytes : int
        Payload bytes per LOAD_DATA frame.
    """

    def __init__(self, port, *, load_frame_bytes: int = LOAD_FRAME_BYTES):
        for attr in ("write", "read"):
            if not callable(getattr(port, attr, None)):
                raise TypeError(f"port must have a {attr}() method like serial.Serial, not {type(port).__name__}")
        self.port = port
        self.load_frame_bytes = load_frame_bytes
        self._seq = 0
        self._status: Status | None = None

    @classmethod
    def open(cls, name: str, *, baud: int = DEFAULT_BAUD, timeout: float = DEFAULT_TIMEOUT) -> Device:
        """Open a serial port with pyserial (8N1, no flow control)."""
        import serial
        try:
            port = serial.Serial(name, baudrate=baud, timeout=timeout)
        except (serial.SerialException, ValueError, OSError) as e:
            raise LinkError(f"cannot open serial port {name} at {baud} baud: {e}") from None
        return cls(port)

    def close(self) -> None:
        close = getattr(self.port, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- frames ---------------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
        except Exception as e:  # pyserial raises SerialException, OSError, ...
            raise LinkError(f"writing to the serial port failed: {e}") from None

    def _read(self, n: int, what: str, patience: int = 1) -> bytes:
        """Exactly ``n`` bytes, giving up after ``patience`` reads in a row bring nothing."""
        got = bytearray()
        idle = 0
        while len(got) < n:
            try:
                chunk = self.port.read(n - len(got))
            except Exception as e:
                raise LinkError(f"reading from the serial port failed: {e}") from None
            if chunk:
                got += chunk
                idle = 0
                continue
            idle += 1
            if idle >= patience:
                seconds = (getattr(self.port, "timeout", None) or 0) * patience
                raise LinkTimeout(f"no response from the device to {what} within {seconds:g} s "
                                  f"({len(got)} of {n} bytes); check the port, the baud rate and that the "
                                  f"bitstream is loaded")
        return bytes(got)

    def receive(self, seq: int, cmd: int, patience: int = 1) -> bytes:
        """The payload of the response to request ``seq`` (a :data:`RESPONSE` to ``cmd``).

        Garbage and responses to other requests (left over after a timeout) are skipped.

        Raises
        ------
        DeviceError
            The device answered with an error.
        LinkTimeout, LinkError
            No answer, or a corrupt one.
        """
        what = _command_name(cmd)
        window = bytearray()
        skipped = 0
        while True:
            window += self._read(HEADER_BYTES - len(window), what, patience)
            header = parse_header(bytes(window))
            if header is None:
                # Resynchronise on the next sync byte after the first one.
                nxt = window.find(SYNC, 1)
                skipped += len(window) if nxt < 0 else nxt
                window = bytearray() if nxt < 0 else window[nxt:]
                if skipped > _MAX_GARBAGE:
                    raise LinkError(f"no valid frame in {skipped} bytes from the device while waiting for the "
                                    f"response to {what}; check the baud rate")
                continue
            r_cmd, r_seq, length = header
            rest = self._read(length + 2, what, patience)
            if crc16(bytes(window[1:]) + rest) != 0:
                raise LinkError(f"the response to {what} failed its CRC-16 (line noise or a wrong baud rate)")
            payload = rest[:-2]
            if r_seq != seq:
                window = bytearray()
                continue  # an answer to an earlier request (after a timeout): not ours
            if r_cmd == Command.ERROR:
                if len(payload) != 3:
                    raise LinkError(f"malformed ERROR response to {what} ({len(payload)} bytes)")
                code, req, flags = payload
                raise DeviceError(f"the device refused {what}: {describe_error(code)}", ErrorCode(code)
                                  if code in ErrorCode._value2member_map_ else code, req, Flag(flags))
            if r_cmd != cmd | RESPONSE:
                raise LinkError(f"the device answered {what} with {_command_name(r_cmd & ~RESPONSE)}")
            return payload

    def transact(self, cmd: int, payload: bytes = b"", patience: int = 1) -> bytes:
        """Send one request and return its response's payload (see :meth:`receive`)."""
        seq = self._next_seq()
        self._write(encode_frame(cmd, seq, payload))
        return self.receive(seq, cmd, patience)

    # --- commands -------------------------------------------------------------------------------

    def status(self) -> Status:
        """The device's configuration, state and last error."""
        payload = self.transact(Command.STATUS)
        try:
            status = Status.unpack(payload)
        except ValueError as e:
            raise LinkError(f"malformed STATUS response: {e}") from None
        self._status = status
        return status

    def holds(self, images) -> bool:
        """Whether the device has exactly these images loaded (or baked in)."""
        st = self.status()
        return st.loaded and st.config_hash == images.config.config_hash() and st.image_id == image_id(images)

    def _check_fits(self, images) -> int:
        act_bytes = -(-images.config.act_bits // 8)
        if images.n_in * act_bytes > MAX_PAYLOAD or images.n_out * act_bytes + 4 > MAX_PAYLOAD:
            raise LinkError(f"a {images.n_in}-input, {images.n_out}-output network does not fit one frame of "
                            f"{MAX_PAYLOAD} bytes per input or output vector")
        return act_bytes

    def load(self, images) -> int:
        """Load ``images`` into the device; returns the number of writes.

        The device checks the configuration hash before anything is written; the LOAD_DATA frames
        then stream without waiting, and LOAD_END confirms that every write arrived and names what
        was loaded (image id, n_in, n_out).

        Raises
        ------
        DeviceError
            The images were made for another configuration (nothing was written, the device's
            state is unchanged), or the load failed (the device is then not loaded).
        """
        self._check_fits(images)
        config = images.config
        begin = hash_bytes(config.config_hash())
        assert len(begin) == LOAD_BEGIN_BYTES
        try:
            self.transact(Command.LOAD_BEGIN, begin)
        except DeviceError as e:
            if e.code == ErrorCode.HASH_MISMATCH:
                device_hash = self.status().config_hash
                raise DeviceError(f"the device is built for configuration {device_hash} but the images were made "
                                  f"for {config.config_hash()}; nothing was written (build a bitstream for these "
                                  f"images, or compress for the device's configuration)", e.code, e.command,
                                  e.flags) from None
            raise
        writes = image_writes(images)
        stream = b"".join(encode_frame(Command.LOAD_DATA, self._next_seq(), p)
                          for p in pack_records(config, writes, self.load_frame_bytes))
        self._write(stream)
        # The answer comes once the device has taken the whole stream off the line.
        patience = 1
        baud, timeout = getattr(self.port, "baudrate", None), getattr(self.port, "timeout", None)
        if baud and timeout:
            patience += math.ceil(len(stream) * 10 / baud / timeout)
        end = struct.pack("<I", len(writes)) + hash_bytes(image_id(images)) + struct.pack("<HH", images.n_in,
                                                                                            images.n_out)
        assert len(end) == LOAD_END_BYTES
        applied = self.transact(Command.LOAD_END, end, patience)
        if len(applied) != 4 or struct.unpack("<I", applied)[0] != len(writes):
            raise LinkError(f"LOAD_END confirmed {applied.hex()} instead of {len(writes)} writes")
        return len(writes)

    def run(self, x_int) -> tuple[np.ndarray, int]:
        """One input vector (integers in the activation range) through the device.

        Returns
        -------
        outputs : numpy.ndarray
            int64 ``(n_out,)``.
        cycles : int
            Clock cycles from the last input element to the first output (the compute time).

        Raises
        ------
        DeviceError
            NOT_LOADED, or BAD_LENGTH when the device's network takes another number of inputs.
        """
        x = np.asarray(x_int)
        if x.ndim != 1 or x.dtype.kind not in "iu":
            raise LinkError(f"run takes one vector of integer activations, not an array of shape {x.shape} "
                            f"and dtype {x.dtype}")
        st = self._status or self.status()
        act_bytes = -(-st.act_bits // 8)
        lo, hi = -(1 << (st.act_bits - 1)), (1 << (st.act_bits - 1)) - 1
        if x.size and (x.min() < lo or x.max() > hi):
            raise LinkError(f"input activations must fit {st.act_bits}-bit signed ({lo}..{hi})")
        if x.size * act_bytes > MAX_PAYLOAD:
            raise LinkError(f"{x.size} inputs do not fit one frame of {MAX_PAYLOAD} bytes")
        payload = b"".join(int(v).to_bytes(act_bytes, "little", signed=True) for v in x)
        reply = self.transact(Command.RUN, payload)
        if len(reply) < 4 or (len(reply) - 4) % act_bytes:
            raise LinkError(f"malformed RUN response of {len(reply)} bytes")
        outputs = np.array([int.from_bytes(reply[k:k + act_bytes], "little", signed=True)
                            for k in range(0, len(reply) - 4, act_bytes)], dtype=np.int64)
        return outputs, struct.unpack("<I", reply[-4:])[0]

    def run_batch(self, x_int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`run` for every row of ``(batch, n_in)``; returns ``(batch, n_out)`` outputs and
        ``(batch,)`` cycles."""
        results = [self.run(row) for row in np.asarray(x_int)]
        return np.stack([r[0] for r in results]), np.array([r[1] for r in results], dtype=np.int64)


@dataclass(frozen=True)
class DeviceRun:
    """What :func:`run_on_device` measured.

    Attributes
    ----------
    status : Status
        The device before the run.
    writes : int
        ``cfg`` writes sent to load the images (0 when the device already held them).
    outputs : numpy.ndarray
        ``(batch, n_out)`` int64, as the device computed them.
    cycles : numpy.ndarray
        ``(batch,)`` compute cycles per input.
    golden : numpy.ndarray
        ``(batch, n_out)`` the golden model's outputs.
    """

    status: Status
    writes: int
    outputs: np.ndarray
    cycles: np.ndarray
    golden: np.ndarray

    @property
    def mismatches(self) -> np.ndarray:
        """``(input, row)`` of every output that differs from the golden model."""
        return np.argwhere(self.outputs != self.golden)

    @property
    def bit_exact(self) -> bool:
        return not self.mismatches.size


def run_on_device(device: Device, images, x_int, *, load: bool | None = None) -> DeviceRun:
    """Load ``images`` when needed, run every row of ``x_int`` and compare with the golden model.

    Parameters
    ----------
    load : bool, optional
        True: always load; False: never (the device must hold the images); None: load unless the
        device already holds them.

    Raises
    ------
    DeviceError, LinkError
        See :class:`Device`; also when ``load`` is False and the device does not hold the images.
    """
    from eie.sim.golden import run_golden

    x = np.atleast_2d(np.asarray(x_int, dtype=np.int64))
    golden = run_golden(images, x)
    device._check_fits(images)
    status = device.status()
    if status.config_hash != images.config.config_hash():
        raise DeviceError(f"the device is built for configuration {status.config_hash} but the images were made "
                          f"for {images.config.config_hash()}; nothing was sent (build a bitstream for these images, "
                          f"or compress for the device's configuration)", ErrorCode.HASH_MISMATCH,
                          Command.LOAD_BEGIN, status.flags)
    held = status.loaded and status.image_id == image_id(images)
    if load is False and not held:
        holds = status.image_id if status.loaded else "none"
        raise LinkError(f"the device does not hold these images (it holds {holds}, these are {image_id(images)}); "
                        f"drop --no-load to load them")
    writes = device.load(images) if load or not held else 0
    outputs, cycles = device.run_batch(x)
    return DeviceRun(status, writes, outputs, cycles, golden)
