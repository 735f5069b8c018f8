"""A functional model of the device end of the host link: the protocol of ``docs/host-protocol.md`` in
plain Python, with the golden model behind it.

It keeps the gateware's state (loaded, loading, the first error of a load, the last error and the error
count) and answers every frame as :class:`eie.hw.host_link.HostLink` does, so the scenarios of
:mod:`eie.tb.host_scenarios` run unchanged against it and against the RTL. The writes of a load are kept
as the memories would hold them; RUN rebuilds the images from them and runs the golden model, so a
load through the client is checked end to end without the HDL. Cycles are not modelled (RUN reports 0).
"""

from __future__ import annotations

import struct

import numpy as np

from eie.hw.io_map import LAYER_STRIDE, LayerField, Space, addr_width, image_writes
from eie.hw.link_map import image_id, word_bytes
from eie.sim.golden import run_golden
from eie.spec.image import Images, LayerInfo
from eie.spec.protocol import (
    FRAME_OVERHEAD,
    HEADER_BYTES,
    LOAD_BEGIN_BYTES,
    LOAD_END_BYTES,
    RECORD_HEADER_BYTES,
    RESPONSE,
    STATUS_BYTES,
    SYNC,
    VERSION,
    Command,
    ErrorCode,
    Flag,
    Status,
    crc16,
    encode_frame,
    hash_bytes,
    parse_header,
)

__all__ = ["DeviceModel", "ModelSerial"]


class DeviceModel:
    """Bytes in (:meth:`feed`), response bytes out (:attr:`out`).

    Parameters
    ----------
    config : EIEConfig
    images : Images, optional
        Baked in: the model starts loaded with them.
    """

    def __init__(self, config, images=None):
        self.config = config
        self.baked = images is not None
        self.memory: dict[tuple[int, int, int], int] = {}
        self.loaded = self.baked
        self.loading = False
        self.load_error = ErrorCode.NONE
        self.load_writes = 0
        self.image_id = image_id(images) if images is not None else "0" * 16
        self.n_in, self.n_out = (images.n_in, images.n_out) if images is not None else (0, 0)
        self.last_error = ErrorCode.NONE
        self.error_count = 0
        self.out = bytearray()
        self._buf = bytearray()
        if images is not None:
            for space, pe, addr, data in image_writes(images):
                self.memory[int(space), pe, addr] = data

    # --- bytes ----------------------------------------------------------------------------------

    @property
    def flags(self) -> Flag:
        return (Flag.LOADED if self.loaded else Flag(0)) | (Flag.LOADING if self.loading else Flag(0)) | \
            (Flag.BAKED if self.baked else Flag(0))

    def feed(self, data: bytes) -> None:
        self._buf += data
        while True:
            k = self._find_header()
            if k is None:
                return
            cmd, seq, length = parse_header(bytes(self._buf[:HEADER_BYTES]))
            if len(self._buf) < length + FRAME_OVERHEAD:
                return
            frame = bytes(self._buf[:length + FRAME_OVERHEAD])
            del self._buf[:length + FRAME_OVERHEAD]
            self._frame(cmd, seq, frame[HEADER_BYTES:-2], crc16(frame[1:]) != 0, timed_out=False)

    def timeout(self) -> None:
        """The inter-byte timeout elapsed: a frame in progress is abandoned."""
        if self._find_header() is not None:
            cmd, seq, length = parse_header(bytes(self._buf[:HEADER_BYTES]))
            payload = bytes(self._buf[HEADER_BYTES:HEADER_BYTES + length])
            self._buf.clear()
            self._frame(cmd, seq, payload, False, timed_out=True)
        elif len(self._buf) > HEADER_BYTES:
            del self._buf[:-HEADER_BYTES]

    def _find_header(self) -> int | None:
        """Drop bytes until the buffer starts with a valid header (or could: fewer than 6 bytes)."""
        while self._buf:
            if len(self._buf) < HEADER_BYTES:
                return None
            if parse_header(bytes(self._buf[:HEADER_BYTES])):
                return 0
            if self._buf[0] == SYNC:
                self._record(ErrorCode.BAD_HEADER)
            del self._buf[0]
        return None

    def _record(self, code: ErrorCode) -> None:
        if code == ErrorCode.NONE:
            return
        self.last_error = code
        self.error_count = min(self.error_count + 1, 0xFFFF)
        if self.loading and self.load_error == ErrorCode.NONE:
            self.load_error = code

    def _reply(self, cmd: int, seq: int, payload: bytes = b"") -> None:
        self.out += encode_frame(cmd | RESPONSE, seq, payload)

    def _refuse(self, code: ErrorCode, cmd: int, seq: int) -> None:
        self._record(code)
        self.out += encode_frame(Command.ERROR, seq, bytes([code, cmd, self.flags]))

    # --- commands -------------------------------------------------------------------------------

    def _frame(self, cmd, seq, payload, bad_crc, timed_out):
        act_bytes = -(-self.config.act_bits // 8)
        expected = {Command.STATUS: 0, Command.LOAD_BEGIN: LOAD_BEGIN_BYTES, Command.LOAD_END: LOAD_END_BYTES,
                    Command.RUN: self.n_in * act_bytes}
        declared = len(payload) if not timed_out else None
        refusal = ErrorCode.NONE
        if cmd == Command.LOAD_DATA:
            refusal = ErrorCode.NOT_LOADING if not self.loading else \
                ErrorCode.BAD_LENGTH if declared == 0 else ErrorCode.NONE
        elif cmd == Command.RUN and not self.loaded:
            refusal = ErrorCode.NOT_LOADED
        elif cmd not in expected:
            refusal = ErrorCode.UNKNOWN_COMMAND
        elif declared is not None and declared != expected[cmd]:
            refusal = ErrorCode.BAD_LENGTH
        error = ErrorCode.TIMEOUT if timed_out else ErrorCode.BAD_CRC if bad_crc else refusal
        if cmd == Command.LOAD_DATA:
            if error == ErrorCode.NONE and self.load_error == ErrorCode.NONE:
                error = self._records(payload)
            self._record(error)
            return
        if error != ErrorCode.NONE:
            return self._refuse(error, cmd, seq)
        if cmd == Command.STATUS:
            held = (self.image_id, self.n_in, self.n_out) if self.loaded else ("0" * 16, 0, 0)
            status = Status(VERSION, self.config.config_hash(), self.config.n_pe, self.config.act_bits, self.flags,
                            self.last_error, self.error_count, *held)
            assert len(status.pack()) == STATUS_BYTES
            return self._reply(cmd, seq, status.pack())
        if cmd == Command.LOAD_BEGIN:
            if payload[:8] != hash_bytes(self.config.config_hash()):
                return self._refuse(ErrorCode.HASH_MISMATCH, cmd, seq)
            self.loading, self.loaded, self.load_error, self.load_writes = True, False, ErrorCode.NONE, 0
            return self._reply(cmd, seq)
        if cmd == Command.LOAD_END:
            if not self.loading:
                return self._refuse(ErrorCode.NOT_LOADING, cmd, seq)
            self.loading = False
            if self.load_error != ErrorCode.NONE:
                return self._refuse(self.load_error, cmd, seq)
            # The id and widths land in the device's registers as they arrive; they count only once
            # loaded (STATUS shows zeros otherwise).
            self.image_id, (self.n_in, self.n_out) = payload[4:12].hex(), struct.unpack("<HH", payload[12:16])
            if struct.unpack("<I", payload[:4])[0] != self.load_writes:
                return self._refuse(ErrorCode.COUNT_MISMATCH, cmd, seq)
            self.loaded = True
            return self._reply(cmd, seq, struct.pack("<I", self.load_writes))
        # RUN
        x = np.array([int.from_bytes(payload[k:k + act_bytes], "little", signed=True)
                      for k in range(0, len(payload), act_bytes)], dtype=np.int64)
        y = run_golden(self.images(), x[None, :])[0]
        body = b"".join(int(v).to_bytes(act_bytes, "little", signed=True) for v in y)
        return self._reply(cmd, seq, body + struct.pack("<I", 0))

    def _records(self, payload: bytes) -> ErrorCode:
        nbytes = word_bytes(self.config)
        k = 0
        while k < len(payload):
            if len(payload) - k < RECORD_HEADER_BYTES:
                return ErrorCode.BAD_RECORD
            space, pe, addr, count = struct.unpack_from("<BBIH", payload, k)
            k += RECORD_HEADER_BYTES
            if space > max(Space) or addr >> addr_width(self.config) or count == 0:
                return ErrorCode.BAD_RECORD
            size = nbytes[Space(space)]
            if len(payload) - k < count * size:
                return ErrorCode.BAD_RECORD
            for n in range(count):
                self.memory[space, pe, addr + n] = int.from_bytes(payload[k:k + size], "little")
                k += size
                self.load_writes += 1
        return ErrorCode.NONE

    def images(self) -> Images:
        """The images the memories hold (what RUN computes with)."""
        c = self.config

        def word(space, pe, addr, bits=None, signed=False):
            v = self.memory.get((int(space), pe, addr), 0)
            if signed and v >> (bits - 1):
                v -= 1 << bits
            return v

        n_layers = word(Space.CONTROL, 0, 0)
        layers = []
        for l in range(n_layers):
            f = {field: word(Space.LAYER, 0, l * LAYER_STRIDE + int(field)) for field in LayerField}
            layers.append(LayerInfo(n_in=f[LayerField.N_IN], n_out=f[LayerField.N_OUT], relu=bool(f[LayerField.RELU]),
                                    shift=f[LayerField.SHIFT], ptr_base=f[LayerField.PTR_BASE],
                                    bias_base=f[LayerField.BIAS_BASE]))
        codebook = np.array([[word(Space.CODEBOOK, 0, l * c.codebook_size + k, c.act_bits, True)
                              for k in range(c.codebook_size)] for l in range(c.max_layers)], dtype=np.int64)
        return Images(
            config=c, layers=tuple(layers), input_frac_bits=0, codebook=codebook,
            ptr=[np.array([word(Space.PTR, p, a) for a in range(c.ptr_depth)], dtype=np.int64)
                 for p in range(c.n_pe)],
            mat=[[word(Space.MAT, p, a) for a in range(c.mat_depth)] for p in range(c.n_pe)],
            bias=[np.array([word(Space.BIAS, p, a, c.acc_bits, True) for a in range(c.bias_depth)], dtype=np.int64)
                  for p in range(c.n_pe)],
            manifest={})


class ModelSerial:
    """A pyserial-like port wired to a :class:`DeviceModel`.

    A :meth:`read` that finds fewer bytes than asked lets the device's inter-byte timeout elapse
    first (the host is waiting, so the line is quiet).
    """

    def __init__(self, model: DeviceModel, *, timeout: float = 0.01, baudrate: int = 3_000_000):
        self.model = model
        self.timeout = timeout
        self.baudrate = baudrate

    def write(self, data) -> int:
        self.model.feed(bytes(data))
        return len(data)

    def read(self, n: int) -> bytes:
        if len(self.model.out) < n:
            self.model.timeout()
        data = bytes(self.model.out[:n])
        del self.model.out[:n]
        return data

    def close(self) -> None:
        pass
