"""Host-link scenarios, written once as blocking code over :class:`eie.host.Device` and its port.

They run unchanged against the simulated board (``tb/test_host_link.py``, in a thread bridged into
cocotb, the port being :class:`eie.tb.host_serial.SimSerial`) and against the protocol's Python model
(``tests/test_host_client.py``, the port being :class:`eie.tb.device_model.ModelSerial`). Each raises
``AssertionError`` with what went wrong.
"""

from __future__ import annotations

import random

import numpy as np

from eie.host import Device, DeviceError, LinkTimeout
from eie.hw.io_map import image_writes
from eie.hw.link_map import image_id, pack_records
from eie.spec.protocol import (
    HEADER_BYTES,
    SYNC,
    Command,
    ErrorCode,
    Flag,
    encode_frame,
    hash_bytes,
    parse_header,
)

__all__ = ["expect_error", "load_and_run", "check_errors", "CASES"]


def expect_error(code: ErrorCode, call, *args):
    """Run ``call(*args)``; it must raise :class:`DeviceError` with ``code``."""
    try:
        call(*args)
    except DeviceError as e:
        assert e.code == code, f"expected the device to answer {code.name}, it answered {e}"
        return e
    raise AssertionError(f"expected the device to answer {code.name}, it accepted the request")


def load_and_run(device: Device, images, x, scoreboard, *, first: int = 0) -> dict:
    """Load ``images`` (unless the device holds them), run every row of ``x`` and check each output
    vector with ``scoreboard`` (``Scoreboard.check_vector(first + row, ...)``). Returns figures."""
    config = images.config
    status = device.status()
    assert status.config_hash == config.config_hash(), f"the device reports configuration {status.config_hash}"
    assert (status.n_pe, status.act_bits) == (config.n_pe, config.act_bits), status
    writes = 0
    if not device.holds(images):
        writes = device.load(images)
        assert writes == len(image_writes(images))
    status = device.status()
    assert status.loaded and status.image_id == image_id(images), f"after the load the device reports {status}"
    assert (status.n_in, status.n_out) == (images.n_in, images.n_out), status
    cycles = []
    for b, row in enumerate(np.asarray(x)):
        outputs, c = device.run(row)
        scoreboard.check_vector(first + b, outputs)
        cycles.append(c)
    return {"writes": writes, "cycles": cycles}


def _garbage(rng: random.Random, n: int) -> bytes:
    """Random bytes with sync bytes in them but no valid header anywhere (nor across the end)."""
    while True:
        data = bytes(rng.choice([SYNC, rng.randrange(256)]) for _ in range(n))
        if not any(parse_header(data[k:k + HEADER_BYTES]) for k in range(n)):
            return data


def _status(device: Device, **expected):
    st = device.status()
    for name, want in expected.items():
        assert getattr(st, name) == want, f"status.{name} is {getattr(st, name)!r}, expected {want!r} ({st})"
    return st


def _raw(device: Device, frame: bytes, cmd: int, seq: int):
    """Write ``frame`` as it is and wait for the response to ``seq``."""
    device.port.write(frame)
    return device.receive(seq, cmd)


def _corrupt(frame: bytes, at: int) -> bytes:
    at %= len(frame)
    return frame[:at] + bytes([frame[at] ^ 0x10]) + frame[at + 1:]


def check_errors(device: Device, images, x, expected, *, seed: int = 0) -> list[str]:
    """Every protocol error, each followed by a check of the device's state and that it still
    computes bit-exact results (the images must be loaded). Returns the names of the cases run."""
    rng = random.Random(seed)
    act_bytes = -(-images.config.act_bits // 8)
    run_frame = b"".join(int(v).to_bytes(act_bytes, "little", signed=True) for v in x[0])
    done = []

    def still_computes():
        outputs, _ = device.run(x[0])
        assert np.array_equal(outputs, expected[0]), f"after the error the device computes {outputs}"

    def case(name):
        done.append(name)
        return name

    assert device.holds(images), "check_errors needs the images loaded"
    count = device.status().error_count

    case("bad CRC")
    seq = device._next_seq()
    expect_error(ErrorCode.BAD_CRC, _raw, device, _corrupt(encode_frame(Command.STATUS, seq), -1),
                 Command.STATUS, seq)
    count = _status(device, last_error=ErrorCode.BAD_CRC, error_count=count + 1).error_count

    case("garbage between frames")
    device.port.write(_garbage(rng, 40))
    st = device.status()
    assert st.loaded and st.image_id == image_id(images), st

    case("unknown command")
    seq = device._next_seq()
    expect_error(ErrorCode.UNKNOWN_COMMAND, _raw, device, encode_frame(0x42, seq, b"xyz"), 0x42, seq)

    case("wrong length")
    expect_error(ErrorCode.BAD_LENGTH, device.transact, Command.STATUS, b"\0")
    expect_error(ErrorCode.BAD_LENGTH, device.transact, Command.RUN, run_frame[:-act_bytes])
    expect_error(ErrorCode.BAD_LENGTH, device.transact, Command.LOAD_BEGIN, b"\0" * 5)
    still_computes()

    case("hash mismatch")
    other = bytes(b ^ 0xFF for b in hash_bytes(images.config.config_hash()))
    e = expect_error(ErrorCode.HASH_MISMATCH, device.transact, Command.LOAD_BEGIN, other)
    assert e.flags & Flag.LOADED and not e.flags & Flag.LOADING, f"flags after a refused load: {e.flags!r}"
    _status(device, loaded=True, image_id=image_id(images), last_error=ErrorCode.HASH_MISMATCH)
    still_computes()

    case("RUN with a bad CRC")
    seq = device._next_seq()
    expect_error(ErrorCode.BAD_CRC, _raw, device, _corrupt(encode_frame(Command.RUN, seq, run_frame), 7),
                 Command.RUN, seq)
    still_computes()

    case("truncated frame (device timeout)")
    seq = device._next_seq()
    frame = encode_frame(Command.RUN, seq, run_frame)
    expect_error(ErrorCode.TIMEOUT, _raw, device, frame[:len(frame) // 2], Command.RUN, seq)
    _status(device, loaded=True, last_error=ErrorCode.TIMEOUT)
    still_computes()

    case("bad header (client timeout)")
    seq = device._next_seq()
    device.port.write(_corrupt(encode_frame(Command.STATUS, seq), 3))
    try:
        device.receive(seq, Command.STATUS)
    except LinkTimeout:
        pass
    else:
        raise AssertionError("a frame with a corrupt header was answered")
    _status(device, last_error=ErrorCode.BAD_HEADER)

    case("RUN before a load, LOAD_END without LOAD_BEGIN")
    writes = image_writes(images)
    payloads = pack_records(images.config, writes, 64)
    assert len(payloads) >= 3, "the images are too small to lose a frame in the middle"
    begin = hash_bytes(images.config.config_hash())
    end = len(writes).to_bytes(4, "little") + hash_bytes(image_id(images)) + \
        images.n_in.to_bytes(2, "little") + images.n_out.to_bytes(2, "little")

    def load_with(frames):
        device.transact(Command.LOAD_BEGIN, begin)
        device.port.write(b"".join(frames))
        device.transact(Command.LOAD_END, end, 8)

    frames = [encode_frame(Command.LOAD_DATA, device._next_seq(), p) for p in payloads]
    case("load with a corrupted frame")
    expect_error(ErrorCode.BAD_CRC, load_with, [*frames[:1], _corrupt(frames[1], 9), *frames[2:]])
    st = _status(device, loaded=False)
    assert not st.flags & Flag.LOADING, st
    expect_error(ErrorCode.NOT_LOADED, device.run, x[0])
    expect_error(ErrorCode.NOT_LOADING, device.transact, Command.LOAD_END, end)
    case("load that lost a frame")
    expect_error(ErrorCode.COUNT_MISMATCH, load_with, frames[:1] + frames[2:])
    case("load with a malformed record")
    bad = bytearray(payloads[0])
    bad[0] = 7  # no such space
    expect_error(ErrorCode.BAD_RECORD, load_with, [encode_frame(Command.LOAD_DATA, 0, bytes(bad)), *frames[1:]])
    _status(device, loaded=False)

    case("reload")
    device.load(images)
    assert device.holds(images)
    for row, want in zip(x, expected):
        outputs, _ = device.run(row)
        assert np.array_equal(outputs, want), f"after the reload the device computes {outputs}, not {want}"
    return done


CASES = ["bad CRC", "garbage between frames", "unknown command", "wrong length", "hash mismatch",
         "RUN with a bad CRC", "truncated frame (device timeout)", "bad header (client timeout)",
         "RUN before a load, LOAD_END without LOAD_BEGIN", "load with a corrupted frame",
         "load that lost a frame", "load with a malformed record", "reload"]
