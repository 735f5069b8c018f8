"""Emission of per-PE SRAM images for a chosen PE array (``docs/image-format.md``).

:func:`write_images` lays a :class:`~eie.spec.network.QuantizedNetwork` out over the PEs of an
:class:`~eie.spec.config.EIEConfig`, checks that it fits, and writes the directory atomically:
either the complete, verified directory appears at ``out_dir`` or nothing changes there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from eie.spec.config import EIEConfig
from eie.spec.errors import FitError
from eie.spec.image import FORMAT, VERSION, encode_layer, format_hex, load_images, pack_entries
from eie.spec.network import QuantizedNetwork, check_fits

__all__ = ["build_images", "write_images", "write_image_files", "fit_config", "encode_memories",
           "manifest_files", "FitError"]


def build_images(net: QuantizedNetwork, config: EIEConfig, *, source=None, stats=None, reference=None):
    """Encode ``net`` for ``config``: returns ``{file name: bytes}`` including the manifest.

    Raises
    ------
    ConfigError
        A numeric constraint is violated (see :func:`eie.spec.network.check_fits`).
    FitError
        The encoded network needs more SRAM than a PE has; the message gives needed vs
        available per memory and what to change.
    """
    check_fits(net, config)
    files, layer_table = encode_memories(net.layers, config)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "config_hash": config.config_hash(),
        "input_frac_bits": int(net.input_frac_bits),
        "layers": layer_table,
        "files": manifest_files(files),
        "source": source or {},
        "stats": stats or {},
        "reference": reference or {},
    }
    out = {name: data for name, (data, _, _) in files.items()}
    out["manifest.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return out


def encode_memories(layers, config: EIEConfig):
    """Lay ``layers`` (:class:`~eie.spec.network.QuantizedLayer`, in layer-table order) out over the PEs.

    Returns ``(files, layer_table)``: ``{file name: (hex bytes, width, depth)}`` of the codebook and of
    every PE's pointer, sparse-matrix and bias memories, and the manifest's layer table. The layers
    need not chain (the LSTM's gate and head layers do not).

    Raises
    ------
    FitError
        The layers need more SRAM than a PE has.
    """
    n = config.n_pe
    entries_v = [[] for _ in range(n)]
    entries_z = [[] for _ in range(n)]
    ptrs = [[] for _ in range(n)]
    biases = [[] for _ in range(n)]
    offset = np.zeros(n, dtype=np.int64)
    layer_table = []
    ptr_base = bias_base = 0
    for layer in layers:
        enc = encode_layer(layer.index, config)
        stride = config.rows_per_pe(layer.n_out)
        for p, e in enumerate(enc):
            ptrs[p].append(e.ptr + offset[p])
            entries_v[p].append(e.v)
            entries_z[p].append(e.z)
            offset[p] += e.v.size
            b = np.zeros(stride, dtype=np.int64)
            mine = np.asarray(layer.bias, dtype=np.int64)[p::n]
            b[:mine.size] = mine
            biases[p].append(b)
        per_pe = [int(e.v.size) for e in enc]
        layer_table.append({
            "name": layer.name, "n_in": layer.n_in, "n_out": layer.n_out, "relu": bool(layer.relu),
            "shift": int(layer.shift), "in_frac_bits": int(layer.in_frac_bits),
            "w_frac_bits": int(layer.w_frac_bits), "out_frac_bits": int(layer.out_frac_bits),
            "ptr_base": ptr_base, "bias_base": bias_base, "nnz": layer.nnz,
            "entries": sum(per_pe), "entries_per_pe": per_pe,
        })
        ptr_base += layer.n_in + 1
        bias_base += stride

    _check_capacity(config, int(offset.max()), ptr_base, bias_base, offset)

    files = {}
    cb = np.concatenate([np.asarray(layer.codebook, dtype=np.int64) for layer in layers])
    files["codebook.hex"] = (format_hex(cb, config.act_bits), config.act_bits, cb.size)
    for p in range(n):
        ptr = np.concatenate(ptrs[p])
        words = pack_entries(np.concatenate(entries_v[p]), np.concatenate(entries_z[p]), config)
        bias = np.concatenate(biases[p])
        files[f"pe{p:03d}.ptr.hex"] = (format_hex(ptr, config.ptr_bits), config.ptr_bits, ptr.size)
        files[f"pe{p:03d}.mat.hex"] = (format_hex(words, config.word_bits), config.word_bits, len(words))
        files[f"pe{p:03d}.bias.hex"] = (format_hex(bias, config.acc_bits), config.acc_bits, bias.size)
    return files, layer_table


def manifest_files(files: dict) -> dict:
    """The manifest's ``files`` section: width, depth and SHA-256 of every hex file."""
    return {name: {"width": w, "depth": int(d), "sha256": hashlib.sha256(data).hexdigest()}
            for name, (data, w, d) in files.items()}


def fit_config(net: QuantizedNetwork, config: EIEConfig) -> EIEConfig:
    """``config`` with SRAM depths, register-file depth and pointer width just large enough for ``net``.

    Only the memory sizes change; PE count, widths and queue depth are kept.
    """
    n = config.n_pe
    entries = np.zeros(n, dtype=np.int64)
    for layer in net.layers:
        entries += [e.v.size for e in encode_layer(layer.index, config)]
    words = max(1, -(-int(entries.max()) // config.entries_per_word))
    ptrs = sum(layer.n_in + 1 for layer in net.layers)
    width = max(max(layer.n_in, layer.n_out) for layer in net.layers)
    return config.replace(
        mat_depth=words, ptr_depth=ptrs + ptrs % 2,
        ptr_bits=max(config.ptr_bits, (words * config.entries_per_word).bit_length()),
        bias_depth=sum(config.rows_per_pe(layer.n_out) for layer in net.layers),
        max_rows_per_pe=config.rows_per_pe(width), max_layers=max(config.max_layers, len(net.layers)))


def _check_capacity(config, entries, ptrs, biases, per_pe_entries):
    words = -(-entries // config.entries_per_word)
    problems = []
    if words > config.mat_depth:
        busiest = int(np.argmax(per_pe_entries))
        problems.append(f"sparse-matrix SRAM needs {words} words in PE {busiest} but mat_depth="
                        f"{config.mat_depth}: raise mat_depth to {words}, add PEs or prune harder")
    if ptrs > config.ptr_depth:
        problems.append(f"pointer SRAM needs {ptrs} entries per PE but ptr_depth={config.ptr_depth}: "
                        f"raise ptr_depth to {ptrs + ptrs % 2}")
    if biases > config.bias_depth:
        problems.append(f"bias SRAM needs {biases} entries per PE but bias_depth={config.bias_depth}: "
                        f"raise bias_depth to {biases} or add PEs")
    if entries > 2 ** config.ptr_bits - 1:
        problems.append(f"{entries} entries in one PE overflow {config.ptr_bits}-bit pointers: "
                        f"raise ptr_bits or add PEs")
    if problems:
        raise FitError("the model does not fit: " + "; ".join(problems))


def write_images(net: QuantizedNetwork, config: EIEConfig, out_dir, *, source=None, stats=None,
                 reference=None, extra: dict | None = None) -> Path:
    """Encode ``net`` and write the image directory ``out_dir`` atomically (:func:`write_image_files`)."""
    contents = build_images(net, config, source=source, stats=stats, reference=reference)
    return write_image_files(contents, config, out_dir, extra=extra)


def write_image_files(contents: dict, config: EIEConfig, out_dir, *, extra: dict | None = None,
                      loader=None) -> Path:
    """Write the files of :func:`build_images` to the image directory ``out_dir`` atomically.

    The files are written to a temporary sibling directory, verified with
    :func:`eie.spec.image.load_images`, then renamed into place: either the complete, verified
    directory appears at ``out_dir`` or nothing changes there. An existing image directory at
    ``out_dir`` is replaced; any other existing path is refused. ``extra`` files
    (``{name: bytes}``, e.g. ``report.json``) are written beside the images; they are not part of
    the image contract and the manifest does not list them. ``loader`` verifies the written files
    (default :func:`eie.spec.image.load_images`; the LSTM images pass their own).
    """
    out = Path(out_dir)
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / "manifest.json").is_file())):
        raise FileExistsError(f"{out} exists and is not an image directory; choose another --out "
                              f"or remove it")
    clash = sorted(set(extra or {}) & set(contents))
    if clash:
        raise ValueError(f"extra files {', '.join(clash)} would overwrite image files")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, data in sorted({**contents, **(extra or {})}.items()):
            (tmp / name).write_bytes(data)
        os.chmod(tmp, 0o755)
        (loader or load_images)(tmp, expect_config=config)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / "images")
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
