"""The host-link wire protocol: frames, commands, error codes and payloads (``docs/host-protocol.md``).

Plain Python, shared by the gateware (:mod:`eie.hw.host_link`), the host client (:mod:`eie.host`) and
the testbenches, so that both ends of the wire are built from one definition.

A frame, in either direction::

    SYNC  CMD  SEQ  LEN_LO LEN_HI  HCRC  PAYLOAD[LEN]  CRC_HI CRC_LO

``HCRC`` is CRC-8 (polynomial 0x07, initial value 0) of ``CMD SEQ LEN_LO LEN_HI``; ``CRC`` is
CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF) of every byte from ``CMD`` to the end of
the payload, sent most significant byte first. Both are unreflected with no final XOR, so running
either CRC over the bytes it covers followed by the CRC itself gives 0, which is how the receivers
check them. Multi-byte fields inside payloads are little-endian.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

__all__ = [
    "VERSION", "SYNC", "HEADER_BYTES", "FRAME_OVERHEAD", "MAX_PAYLOAD", "RESPONSE", "Command", "ErrorCode",
    "Flag", "EndStatus", "crc8", "crc16", "crc8_step", "crc16_step", "encode_frame", "parse_header",
    "Status", "STATUS_BYTES", "LOAD_BEGIN_BYTES", "LOAD_END_BYTES", "RECORD_HEADER_BYTES", "hash_bytes",
]

VERSION = 2
SYNC = 0xA5
HEADER_BYTES = 6           # SYNC CMD SEQ LEN_LO LEN_HI HCRC
FRAME_OVERHEAD = HEADER_BYTES + 2
MAX_PAYLOAD = 0xFFFF
RESPONSE = 0x80            # a successful response carries the request's command | RESPONSE
CRC8_POLY = 0x07
CRC16_POLY = 0x1021
CRC16_INIT = 0xFFFF


class Command(enum.IntEnum):
    """Request commands (host to device) and the error response (device to host)."""

    STATUS = 0x01      #: no payload; answered with :class:`Status`
    LOAD_BEGIN = 0x02  #: configuration hash; answered with no payload
    LOAD_DATA = 0x03   #: write records; never answered (errors are reported by LOAD_END)
    LOAD_END = 0x04    #: writes sent (u32), image id, n_in, n_out; answered with the writes applied (u32)
    RUN = 0x05         #: the input vector; answered with the outputs and the compute cycles (u32)
    ERROR = 0xFF       #: device to host: error code, the request's command, the device's flags


class ErrorCode(enum.IntEnum):
    """Error codes (the first byte of an ERROR payload, and ``Status.last_error``)."""

    NONE = 0
    BAD_HEADER = 1       #: a sync byte whose header failed its CRC-8 (never answered)
    BAD_CRC = 2          #: the frame failed its CRC-16
    UNKNOWN_COMMAND = 3
    BAD_LENGTH = 4       #: the payload length is not the command's
    HASH_MISMATCH = 5    #: LOAD_BEGIN for another hardware configuration; nothing was written
    NOT_LOADED = 6       #: RUN without a complete load
    NOT_LOADING = 7      #: LOAD_DATA or LOAD_END outside a load (after LOAD_BEGIN)
    BAD_RECORD = 8       #: a malformed write record, or a record cut by the end of its frame
    COUNT_MISMATCH = 9   #: LOAD_END counts other writes than the device applied
    TIMEOUT = 10         #: the frame stopped arriving before its end (inter-byte timeout)
    OVERRUN = 11         #: a received byte was lost (the host sent faster than the device reads)
    FRAMING = 12         #: a UART character with a low stop bit


class Flag(enum.IntFlag):
    """Device state flags (``Status.flags`` and the third byte of an ERROR payload)."""

    LOADED = 0x01   #: a complete image set is loaded; RUN is accepted
    LOADING = 0x02  #: between LOAD_BEGIN and LOAD_END
    BAKED = 0x04    #: the bitstream was built with images in its memories
    BUSY = 0x08     #: the PE array is computing


class EndStatus(enum.IntEnum):
    """How a received frame ended (between the gateware's frame receiver and its command engine)."""

    OK = 0
    BAD_CRC = 1
    TIMEOUT = 2


def _table(poly: int, width: int) -> list[int]:
    top, mask = 1 << (width - 1), (1 << width) - 1
    table = []
    for byte in range(256):
        crc = byte << (width - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & mask if crc & top else (crc << 1) & mask
        table.append(crc)
    return table


_CRC8 = _table(CRC8_POLY, 8)
_CRC16 = _table(CRC16_POLY, 16)


def crc8_step(crc: int, byte: int) -> int:
    return _CRC8[(crc ^ byte) & 0xFF]


def crc16_step(crc: int, byte: int) -> int:
    return ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ byte) & 0xFF]


def crc8(data: bytes, crc: int = 0) -> int:
    """CRC-8 (poly 0x07, init 0, unreflected, no final XOR) of ``data``."""
    for b in data:
        crc = _CRC8[crc ^ b]
    return crc


def crc16(data: bytes, crc: int = CRC16_INIT) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, unreflected, no final XOR) of ``data``."""
    table = _CRC16
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ b]
    return crc


def encode_frame(cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """One frame, ready for the wire.

    Raises
    ------
    ValueError
        ``cmd`` or ``seq`` is not a byte, or the payload is longer than :data:`MAX_PAYLOAD`.
    """
    if not 0 <= cmd <= 0xFF or not 0 <= seq <= 0xFF:
        raise ValueError(f"cmd and seq must be bytes, not {cmd} and {seq}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"a frame carries at most {MAX_PAYLOAD} payload bytes, not {len(payload)}")
    head = bytes([cmd, seq, len(payload) & 0xFF, len(payload) >> 8])
    body = head + bytes([crc8(head)]) + bytes(payload)
    return bytes([SYNC]) + body + crc16(body).to_bytes(2, "big")


def parse_header(header: bytes) -> tuple[int, int, int] | None:
    """``(cmd, seq, length)`` of the 6 bytes of a frame header, or None when it is not one."""
    if len(header) != HEADER_BYTES or header[0] != SYNC or crc8(header[1:]) != 0:
        return None
    return header[1], header[2], header[3] | header[4] << 8


def hash_bytes(config_hash: str) -> bytes:
    """The 8 bytes of a 16-hex-digit configuration hash (or image id), in the order written."""
    return bytes.fromhex(config_hash)


# LOAD_BEGIN payload: configuration hash (8).
LOAD_BEGIN_BYTES = 8
# LOAD_END payload: number of writes sent (u32), image id (8), n_in (u16), n_out (u16).
LOAD_END_BYTES = 16
# A write record of LOAD_DATA: space (u8), pe (u8), addr (u32), count (u16), then count words.
RECORD_HEADER_BYTES = 8

_STATUS = struct.Struct("<B8sHBBBH8sHH")
STATUS_BYTES = _STATUS.size


@dataclass(frozen=True)
class Status:
    """The STATUS response.

    Attributes
    ----------
    version : int
        Protocol version (:data:`VERSION`).
    config_hash : str
        The hardware configuration hash built into the device (16 hex digits).
    n_pe, act_bits : int
    flags : Flag
    last_error : ErrorCode
        The most recent error (sticky; :attr:`error_count` tells whether a new one happened).
    error_count : int
        Errors since reset, saturating at 65535.
    image_id : str
        Id of the loaded images (16 hex digits; zeros when none are loaded).
    n_in, n_out : int
        Input and output width of the loaded network (zeros when none is loaded).
    """

    version: int
    config_hash: str
    n_pe: int
    act_bits: int
    flags: Flag
    last_error: ErrorCode
    error_count: int
    image_id: str
    n_in: int
    n_out: int

    @property
    def loaded(self) -> bool:
        return bool(self.flags & Flag.LOADED)

    def pack(self) -> bytes:
        return _STATUS.pack(self.version, hash_bytes(self.config_hash), self.n_pe, self.act_bits, int(self.flags),
                            int(self.last_error), self.error_count, hash_bytes(self.image_id), self.n_in, self.n_out)

    @classmethod
    def unpack(cls, payload: bytes) -> Status:
        """Raises ValueError for a payload of the wrong length or with an unknown error code."""
        if len(payload) != STATUS_BYTES:
            raise ValueError(f"a STATUS payload has {STATUS_BYTES} bytes, not {len(payload)}")
        version, chash, n_pe, act_bits, flags, last_error, count, image_id, n_in, n_out = _STATUS.unpack(payload)
        return cls(version, chash.hex(), n_pe, act_bits, Flag(flags), ErrorCode(last_error), count,
                   image_id.hex(), n_in, n_out)
