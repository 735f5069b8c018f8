"""EIE SRAM images: encoding, hex files, loading and verification.

This module is the executable form of ``docs/image-format.md``. ``eie.spec.emit`` uses the
encoder to write image directories; the golden model, the RTL generator and the testbenches
load them with :func:`load_images`, which verifies everything it reads.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from eie.spec.config import EIEConfig
from eie.spec.errors import ConfigError, ImageError

__all__ = [
    "FORMAT", "VERSION", "ImageError", "LayerInfo", "Images", "PeLayerEncoding",
    "encode_layer", "pack_entries", "unpack_entries", "decode_layer",
    "format_hex", "parse_hex", "load_images", "images_from_bytes",
]

FORMAT = "eie-images"
VERSION = 1


@dataclass(frozen=True)
class LayerInfo:
    """One row of the layer table (see ``docs/image-format.md``)."""

    n_in: int
    n_out: int
    relu: bool
    shift: int
    ptr_base: int
    bias_base: int
    in_frac_bits: int = 0
    w_frac_bits: int = 0
    out_frac_bits: int = 0


@dataclass(frozen=True)
class Images:
    """The verified contents of an image directory.

    Attributes
    ----------
    config : EIEConfig
    layers : tuple of LayerInfo
    input_frac_bits : int
    codebook : numpy.ndarray
        ``(n_layers, 2**weight_bits)`` int64.
    ptr, bias : list of numpy.ndarray
        Per PE, the used part of the pointer and bias memories (int64; biases signed).
    mat : list of list of int
        Per PE, the used sparse-matrix words as Python integers (they may exceed 64 bits).
    manifest : dict
        The parsed manifest, including the informative ``source`` and ``stats``.
    path : pathlib.Path or None
    """

    config: EIEConfig
    layers: tuple[LayerInfo, ...]
    input_frac_bits: int
    codebook: np.ndarray
    ptr: list
    mat: list
    bias: list
    manifest: dict
    path: Path | None = None

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    @property
    def output_frac_bits(self) -> int:
        return self.layers[-1].out_frac_bits

    @cached_property
    def _entries(self) -> list[np.ndarray]:
        return [unpack_entries(words, self.config) for words in self.mat]

    def entries(self, pe: int) -> np.ndarray:
        """All ``(v, z)`` entries of one PE as an int64 array of packed entries (unpacked once)."""
        return self._entries[pe]


# --- encoding ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PeLayerEncoding:
    """One PE's share of one layer: ``ptr`` holds ``P[0..n_in]`` relative to the layer's first
    entry; ``v`` and ``z`` its entries in storage order."""

    ptr: np.ndarray
    v: np.ndarray
    z: np.ndarray


def encode_layer(index: np.ndarray, config: EIEConfig) -> list[PeLayerEncoding]:
    """Encode a layer's index matrix into per-PE column-major ``(v, z)`` streams with padding.

    Vectorised over all non-zeros of all PEs at once.
    """
    n_out, n_in = index.shape
    n = config.n_pe
    period = config.max_run + 1
    rows, cols = np.nonzero(index)
    vals = index[rows, cols].astype(np.int64)
    pe = rows % n
    local = rows // n
    order = np.lexsort((local, cols, pe))
    pe, cols, local, vals = pe[order], cols[order], local[order], vals[order]
    group = pe * n_in + cols
    first = np.ones(group.size, dtype=bool)
    first[1:] = group[1:] != group[:-1]
    prev = np.empty_like(local)
    prev[0:1] = -1
    prev[1:] = local[:-1]
    prev[first] = -1
    gap = local - prev - 1
    pads = gap // period
    count = pads + 1
    total = int(count.sum())
    # Entry k of non-zero m is padding for k < pads[m]; the last one carries the weight.
    owner = np.repeat(np.arange(group.size), count)
    last = np.cumsum(count) - 1
    is_last = np.zeros(total, dtype=bool)
    is_last[last] = True
    v = np.where(is_last, vals[owner], 0)
    z = np.where(is_last, gap[owner] % period, config.max_run)
    entry_group = group[owner]
    per_group = np.bincount(entry_group, minlength=n * n_in).reshape(n, n_in)
    out = []
    start = 0
    for p in range(n):
        counts = per_group[p]
        stop = start + int(counts.sum())
        ptr = np.zeros(n_in + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        out.append(PeLayerEncoding(ptr=ptr, v=v[start:stop], z=z[start:stop]))
        start = stop
    return out


def pack_entries(v: np.ndarray, z: np.ndarray, config: EIEConfig) -> list[int]:
    """Pack entries into sparse-matrix words (entry ``e`` at lane ``e % entries_per_word``)."""
    e = config.entries_per_word
    entry = (np.asarray(z, dtype=np.int64) << config.weight_bits) | np.asarray(v, dtype=np.int64)
    n_words = -(-entry.size // e)
    lanes = np.zeros(n_words * e, dtype=np.int64)
    lanes[:entry.size] = entry
    lanes = lanes.reshape(n_words, e)
    b = config.entry_bits
    if config.word_bits <= 63:
        words = np.zeros(n_words, dtype=np.int64)
        for k in range(e):
            words |= lanes[:, k] << (k * b)
        return [int(w) for w in words]
    words = [0] * n_words
    for k in range(e):
        for w, lane in enumerate(lanes[:, k].tolist()):
            words[w] |= lane << (k * b)
    return words


def unpack_entries(words: list[int], config: EIEConfig) -> np.ndarray:
    """Inverse of :func:`pack_entries`: all entries (padding lanes of the last word included)."""
    e, b = config.entries_per_word, config.entry_bits
    mask = (1 << b) - 1
    if config.word_bits <= 63:
        w = np.asarray(words, dtype=np.int64)
        return ((w[:, None] >> (np.arange(e, dtype=np.int64) * b)) & mask).reshape(-1)
    return np.array([(word >> (k * b)) & mask for word in words for k in range(e)], dtype=np.int64)


def decode_layer(images: Images, l: int):
    """Decode layer ``l`` of every PE back to ``(rows, cols, v)`` of its stored entries.

    Padding entries are included (``v == 0``). Raises :class:`ImageError` when an entry's row
    falls outside the layer or a pointer leaves the matrix memory.
    """
    cfg = images.config
    info = images.layers[l]
    all_rows, all_cols, all_v = [], [], []
    for p in range(cfg.n_pe):
        ptr = images.ptr[p][info.ptr_base:info.ptr_base + info.n_in + 1]
        entries = images.entries(p)
        if ptr.size != info.n_in + 1:
            raise ImageError(f"pe{p:03d}.ptr.hex: layer {l} needs pointers up to "
                             f"{info.ptr_base + info.n_in} but the file has {images.ptr[p].size}")
        if np.any(np.diff(ptr) < 0) or ptr[-1] > entries.size or ptr[0] < 0:
            raise ImageError(f"pe{p:03d}.ptr.hex: layer {l} pointers are not monotonic inside "
                             f"the {entries.size} stored entries")
        seg = entries[ptr[0]:ptr[-1]]
        v = seg & ((1 << cfg.weight_bits) - 1)
        z = seg >> cfg.weight_bits
        counts = np.diff(ptr)
        cols = np.repeat(np.arange(info.n_in), counts)
        step = np.cumsum(z + 1)
        col_start = np.repeat(ptr[:-1] - ptr[0], counts)
        base = np.concatenate(([0], step))[col_start]
        local = step - base - 1
        limit = cfg.rows_of_pe(info.n_out, p)
        if local.size and local.max() >= limit:
            bad = int(np.argmax(local >= limit))
            raise ImageError(f"pe{p:03d}.mat.hex: layer {l} column {cols[bad]} addresses local row "
                             f"{local[bad]} but PE {p} has {limit} rows in this layer")
        all_rows.append(local * cfg.n_pe + p)
        all_cols.append(cols)
        all_v.append(v)
    return np.concatenate(all_rows), np.concatenate(all_cols), np.concatenate(all_v)


# --- hex files -----------------------------------------------------------------------------------

def format_hex(values, width: int) -> bytes:
    """``$readmemh`` text of ``values`` (two's complement for negatives) at ``width`` bits."""
    digits = -(-width // 4)
    mask = (1 << width) - 1
    fmt = f"{{:0{digits}x}}"
    lines = [fmt.format(int(x) & mask) for x in values]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def parse_hex(data: bytes, width: int, *, signed: bool, name: str) -> list[int]:
    """Parse :func:`format_hex` output strictly; raises :class:`ImageError` naming ``name``."""
    digits = -(-width // 4)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ImageError(f"{name}: not an ASCII hex file") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    for n, line in enumerate(lines, 1):
        if len(line) != digits:
            raise ImageError(f"{name}: line {n} has {len(line)} hex digits, expected {digits}")
        try:
            x = int(line, 16)
        except ValueError:
            raise ImageError(f"{name}: line {n} is not hexadecimal: {line[:20]!r}") from None
        if x >> width:
            raise ImageError(f"{name}: line {n} exceeds {width} bits")
        if signed and x >> (width - 1):
            x -= 1 << width
        out.append(x)
    return out


# --- loading ---------------------------------------------------------------------------------------

def _need(cond, msg):
    if not cond:
        raise ImageError(msg)


class _DirectoryReader:
    """Reads image files from a directory."""

    def __init__(self, root: Path):
        self.root = root

    def __str__(self) -> str:
        return str(self.root)

    def __call__(self, name: str) -> bytes | None:
        path = self.root / name
        return path.read_bytes() if path.is_file() else None


class _MemoryReader:
    """Reads image files from ``{name: bytes}`` (what :func:`eie.spec.emit.build_images` returns)."""

    def __init__(self, contents: dict):
        self.contents = contents

    def __str__(self) -> str:
        return "the in-memory images"

    def __call__(self, name: str) -> bytes | None:
        return self.contents.get(name)


def _read_file(read, files: dict, name: str, width: int, *, signed: bool) -> list[int]:
    entry = files.get(name)
    _need(isinstance(entry, dict), f"manifest.json does not list {name}; the image directory "
                                   f"is incomplete, re-run eie compress")
    data = read(name)
    _need(data is not None, f"{name} is missing from {read}; re-run eie compress")
    digest = hashlib.sha256(data).hexdigest()
    _need(digest == entry.get("sha256"),
          f"{name}: checksum {digest[:16]}… does not match the manifest; the file is corrupt or "
          f"was edited, re-run eie compress")
    _need(entry.get("width") == width,
          f"{name}: manifest says width {entry.get('width')} but the configuration needs {width}")
    words = parse_hex(data, width, signed=signed, name=name)
    _need(len(words) == entry.get("depth"),
          f"{name}: {len(words)} words but the manifest says {entry.get('depth')}")
    return words


def load_images(path, *, expect_config: EIEConfig | None = None) -> Images:
    """Load and verify an image directory.

    Parameters
    ----------
    path : path-like
        The directory written by ``eie compress``.
    expect_config : EIEConfig, optional
        If given, the images must have been made for exactly this configuration (same hash).

    Raises
    ------
    ImageError
        With a one-line message naming the file and the problem.
    """
    root = Path(path)
    _need(root.is_dir(), f"image directory {root} does not exist; run eie compress first")
    _need((root / "manifest.json").is_file(), f"{root} has no manifest.json; it is not an image directory")
    return _load(_DirectoryReader(root), expect_config, root)


def images_from_bytes(contents: dict, *, expect_config: EIEConfig | None = None) -> Images:
    """:func:`load_images` of ``{file name: bytes}`` held in memory (``Images.path`` is None)."""
    _need(isinstance(contents, dict) and "manifest.json" in contents,
          "the in-memory images have no manifest.json")
    return _load(_MemoryReader(contents), expect_config, None)


def _load(read, expect_config: EIEConfig | None, path: Path | None) -> Images:
    manifest = _read_manifest(read, FORMAT, VERSION)
    config = _manifest_config(read, manifest, EIEConfig, expect_config)
    layers, ptr_base, bias_base = _layer_table(manifest, config, chained=True)
    try:
        input_frac_bits = int(manifest["input_frac_bits"])
    except (KeyError, TypeError, ValueError) as e:
        raise ImageError(f"manifest.json: missing or malformed field {e}") from None
    images = Images(config=config, layers=tuple(layers), input_frac_bits=input_frac_bits,
                    **_read_memories(read, manifest, config, len(layers), ptr_base, bias_base),
                    manifest=manifest, path=path)
    for l in range(len(layers)):
        decode_layer(images, l)  # validates pointers and rows
    return images


#: Image formats of the family, and the array each one runs on (for the message that refuses one).
FAMILY = {"eie-images": "the EIE array (an MLP)", "ese-images": "the ESE array (an LSTM)"}


def _read_manifest(read, format_name: str, version: int) -> dict:
    """The parsed manifest, refused unless it is ``format_name`` at ``version``."""
    root = read
    try:
        manifest = json.loads(read("manifest.json").decode())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ImageError(f"manifest.json in {root} is not valid JSON: {e}") from None
    found = manifest.get("format") if isinstance(manifest, dict) else None
    if found in FAMILY and found != format_name:
        raise ImageError(f"the images in {root} are {found} for {FAMILY[found]}, not {format_name} for "
                         f"{FAMILY[format_name]}; run them on {FAMILY[found]}")
    _need(found == format_name, f"manifest.json in {root} is not an {format_name} manifest")
    _need(manifest.get("version") == version,
          f"manifest.json has format version {manifest.get('version')}, this tool reads {version}")
    return manifest


def _manifest_config(read, manifest: dict, config_cls, expect_config):
    """The manifest's configuration (checked against its hash and against ``expect_config``)."""
    try:
        config = config_cls.from_dict(manifest.get("config"))
    except (ConfigError, TypeError) as e:
        raise ImageError(f"manifest.json: bad hardware configuration: {e}") from None
    _need(manifest.get("config_hash") == config.config_hash(),
          f"manifest.json: config_hash {manifest.get('config_hash')} does not match its "
          f"configuration ({config.config_hash()}); the manifest was edited")
    if expect_config is not None and expect_config.config_hash() != config.config_hash():
        raise ImageError(f"images in {read} were made for configuration {config.config_hash()} "
                         f"but the hardware is {expect_config.config_hash()}; re-run eie compress "
                         f"with this hardware configuration")
    return config


def _layer_table(manifest: dict, config: EIEConfig, *, chained: bool):
    """``(layers, pointer words, bias words)`` of the manifest's layer table, checked; with ``chained``
    every layer takes the previous one's outputs."""
    layers = []
    ptr_base = bias_base = 0
    prev_out = None
    try:
        for l, d in enumerate(manifest["layers"]):
            info = LayerInfo(**{k: d[k] for k in LayerInfo.__dataclass_fields__ if k in d})
            _need(info.n_in >= 1 and info.n_out >= 1, f"manifest.json: layer {l} has an empty shape")
            _need(not chained or prev_out is None or info.n_in == prev_out,
                  f"manifest.json: layer {l} takes {info.n_in} inputs but layer {l - 1} gives {prev_out}")
            _need(info.ptr_base == ptr_base and info.bias_base == bias_base,
                  f"manifest.json: layer {l} bases ({info.ptr_base}, {info.bias_base}) differ from "
                  f"the format's ({ptr_base}, {bias_base})")
            _need(0 <= info.shift <= config.max_shift,
                  f"manifest.json: layer {l} shift {info.shift} outside 0..{config.max_shift}")
            layers.append(info)
            prev_out = info.n_out
            ptr_base += info.n_in + 1
            bias_base += config.rows_per_pe(info.n_out)
    except (KeyError, TypeError) as e:
        raise ImageError(f"manifest.json: missing or malformed field {e}") from None
    _need(1 <= len(layers) <= config.max_layers,
          f"manifest.json: {len(layers)} layers, the configuration holds 1..{config.max_layers}")
    return layers, ptr_base, bias_base


def _read_memories(read, manifest: dict, config: EIEConfig, n_layers: int, ptr_base: int,
                   bias_base: int) -> dict:
    """The codebooks and every PE's pointer, sparse-matrix and bias words, checked against the
    manifest's checksums and the layer table."""
    try:
        files = manifest["files"]
    except (KeyError, TypeError) as e:
        raise ImageError(f"manifest.json: missing or malformed field {e}") from None
    n_cb = n_layers * config.codebook_size
    cb = _read_file(read, files, "codebook.hex", config.act_bits, signed=True)
    _need(len(cb) == n_cb, f"codebook.hex: {len(cb)} entries, {n_layers} layers need {n_cb}")
    codebook = np.array(cb, dtype=np.int64).reshape(n_layers, config.codebook_size)
    _need(np.all(codebook[:, 0] == 0), "codebook.hex: entry 0 of every layer must be 0")
    ptr, mat, bias = [], [], []
    for p in range(config.n_pe):
        ptr.append(np.array(_read_file(read, files, f"pe{p:03d}.ptr.hex", config.ptr_bits,
                                       signed=False), dtype=np.int64))
        mat.append(_read_file(read, files, f"pe{p:03d}.mat.hex", config.word_bits, signed=False))
        bias.append(np.array(_read_file(read, files, f"pe{p:03d}.bias.hex", config.acc_bits,
                                        signed=True), dtype=np.int64))
        _need(ptr[p].size == ptr_base, f"pe{p:03d}.ptr.hex: {ptr[p].size} pointers, the layer "
                                       f"table needs {ptr_base}")
        _need(bias[p].size == bias_base, f"pe{p:03d}.bias.hex: {bias[p].size} biases, the layer "
                                         f"table needs {bias_base}")
        _need(len(mat[p]) <= config.mat_depth and ptr_base <= config.ptr_depth
              and bias_base <= config.bias_depth,
              f"PE {p}: images exceed the configured SRAM depths")
    return {"codebook": codebook, "ptr": ptr, "mat": mat, "bias": bias}
