"""The host link's view of the ``cfg`` address map: write records and image ids.

Pure Python over :mod:`eie.hw.io_map`; the host client packs images with it and the gateware's record
decoder (:class:`eie.hw.host_link.RecordDecoder`) reads the same layout.

A LOAD_DATA payload is a sequence of write records (``docs/host-protocol.md``)::

    space (u8)  pe (u8)  addr (u32)  count (u16)  word[count]

``count`` consecutive writes to ``addr, addr + 1, ...`` of one space and PE. Each word is
:func:`word_bytes` bytes, little-endian, two's complement for signed spaces.
"""

from __future__ import annotations

import hashlib
import struct

from eie.hw.io_map import Space, image_writes
from eie.spec.config import EIEConfig
from eie.spec.protocol import RECORD_HEADER_BYTES

__all__ = ["word_bits", "word_bytes", "pack_records", "image_id", "MAX_RECORD_WORDS"]

MAX_RECORD_WORDS = 0xFFFF
_RECORD = struct.Struct("<BBIH")
assert _RECORD.size == RECORD_HEADER_BYTES


def word_bits(config: EIEConfig) -> dict[Space, int]:
    """Bits of a data word in each space: what the memory behind it stores (layer-table fields and the
    layer count travel as 32-bit words)."""
    return {Space.PTR: config.ptr_bits, Space.MAT: config.word_bits, Space.BIAS: config.acc_bits,
            Space.CODEBOOK: config.act_bits, Space.LAYER: 32, Space.CONTROL: 32}


def word_bytes(config: EIEConfig) -> dict[Space, int]:
    """Bytes of a data word in each space on the wire."""
    return {space: -(-bits // 8) for space, bits in word_bits(config).items()}


def _bursts(writes):
    """Group writes into runs of consecutive addresses in one space and PE."""
    run = []
    for w in writes:
        if run and (w[0], w[1], w[2]) == (run[0][0], run[0][1], run[-1][2] + 1) and len(run) < MAX_RECORD_WORDS:
            run.append(w)
        else:
            if run:
                yield run
            run = [w]
    if run:
        yield run


def pack_records(config: EIEConfig, writes, max_payload: int) -> list[bytes]:
    """LOAD_DATA payloads of at most ``max_payload`` bytes holding every write, in order.

    Every payload holds whole records: a burst that does not fit is split into several records.

    Raises
    ------
    ValueError
        ``max_payload`` cannot hold one record of the widest word.
    """
    nbytes = word_bytes(config)
    if max_payload < RECORD_HEADER_BYTES + max(nbytes.values()):
        raise ValueError(f"max_payload must hold a record of one word ({RECORD_HEADER_BYTES + max(nbytes.values())} "
                         f"bytes), not {max_payload}")
    payloads, current = [], bytearray()
    for burst in _bursts(writes):
        space, pe, addr = burst[0][0], burst[0][1], burst[0][2]
        size = nbytes[Space(space)]
        while burst:
            room = (max_payload - len(current) - RECORD_HEADER_BYTES) // size
            if room < 1:
                payloads.append(bytes(current))
                current = bytearray()
                continue
            part, burst = burst[:room], burst[room:]
            current += _RECORD.pack(int(space), pe, addr, len(part))
            for w in part:
                current += int(w[3]).to_bytes(size, "little")
            addr += len(part)
    if current:
        payloads.append(bytes(current))
    return payloads


def image_id(images) -> str:
    """16 hex digits identifying the contents of ``images`` (SHA-256 of every ``cfg`` write).

    The device remembers the id of the images it holds (loaded, or baked into the bitstream), so the
    host can tell whether a load is needed.
    """
    nbytes = word_bytes(images.config)
    h = hashlib.sha256(images.config.config_hash().encode())
    for space, pe, addr, data in image_writes(images):
        h.update(_RECORD.pack(int(space), pe, addr, 1) + int(data).to_bytes(nbytes[Space(space)], "little"))
    return h.hexdigest()[:16]
