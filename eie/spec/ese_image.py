"""ESE (LSTM) images: the EIE image format family's second member, ``ese-images`` version 1.

An LSTM image directory holds the same files as an EIE one (``codebook.hex`` and per PE
``ptr``/``mat``/``bias``, encoded by :mod:`eie.spec.image`); its manifest says ``"format":
"ese-images"``, its configuration is an :class:`~eie.spec.ese.ESEConfig` (whose hash never equals an
EIE configuration's) and an ``lstm`` section gives the recurrent structure. The layer table holds,
in order: ``gates_x`` (the gate matrix's input columns), ``gates_h`` (its recurrent columns), an
optional ``proj`` and the ``head`` layers. Readers of one format refuse the other in one line
(:func:`eie.spec.image.load_images` refuses these, :func:`load_lstm_images` refuses EIE images).
``docs/image-format.md`` has every field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eie.spec.emit import encode_memories, manifest_files, write_image_files
from eie.spec.errors import ImageError
from eie.spec.ese import (
    ESEConfig,
    LSTMLayout,
    QuantizedLSTM,
    cell_frac_bits,
    check_lstm_fits,
    gate_frac_bits,
    gate_row_order,
    gate_rows,
    lstm_layout,
    unit_frac_bits,
)
from eie.spec.image import (
    Images,
    _DirectoryReader,
    _layer_table,
    _manifest_config,
    _MemoryReader,
    _need,
    _read_manifest,
    _read_memories,
    decode_layer,
    load_images,
)
from eie.spec.network import QuantizedLayer

__all__ = ["FORMAT", "VERSION", "ROLES", "LSTMInfo", "LSTMImages", "image_layers", "build_lstm_images",
           "write_lstm_images", "load_lstm_images", "lstm_images_from_bytes", "image_format", "open_images"]

FORMAT = "ese-images"
VERSION = 1
#: Roles of the layer-table rows, in the order they appear.
ROLES = ("gates_x", "gates_h", "proj", "head")


@dataclass(frozen=True)
class LSTMInfo:
    """The ``lstm`` section of an ESE manifest."""

    input_size: int
    hidden_size: int
    proj_size: int
    every_step: bool
    h_frac_bits: int
    h_shift: int
    n_head: int
    layout: LSTMLayout

    @property
    def recurrent_size(self) -> int:
        return self.proj_size or self.hidden_size

    @property
    def first_head(self) -> int:
        """Layer-table index of the first head layer."""
        return 3 if self.proj_size else 2

    def to_dict(self) -> dict:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size, "proj_size": self.proj_size,
                "every_step": self.every_step, "h_frac_bits": self.h_frac_bits, "h_shift": self.h_shift,
                "n_head": self.n_head, "layout": self.layout.to_dict()}


@dataclass(frozen=True)
class LSTMImages(Images):
    """The verified contents of an ESE image directory: :class:`~eie.spec.image.Images` (the layers'
    memories, decoded by the same functions) plus the recurrent structure ``lstm``.

    ``n_in`` is the features per time step, ``n_out`` the outputs per step.
    """

    lstm: LSTMInfo | None = None

    @property
    def n_in(self) -> int:
        return self.lstm.input_size

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out if self.lstm.n_head else self.lstm.recurrent_size

    @property
    def output_frac_bits(self) -> int:
        return self.layers[-1].out_frac_bits if self.lstm.n_head else self.lstm.h_frac_bits

    @property
    def max_steps(self) -> int:
        """The longest input sequence the activation store holds."""
        return self.lstm.layout.max_steps


# --- encoding ------------------------------------------------------------------------------------

def image_layers(net: QuantizedLSTM, config: ESEConfig) -> list[QuantizedLayer]:
    """The layer-table rows of ``net``: the gate matrix split into its input and recurrent columns,
    rows reordered so that PE ``p`` holds the four gates of its units (:func:`gate_row_order`), then
    the projection and the head."""
    H, I = net.hidden_size, net.input_size
    order = gate_row_order(H, config.n_pe)
    live = order >= 0
    index = np.zeros((order.size, net.gates.n_in), dtype=np.uint8)
    index[live] = net.gates.index[order[live]]
    bias = np.zeros(order.size, dtype=np.int64)
    bias[live] = np.asarray(net.gates.bias, dtype=np.int64)[order[live]]
    common = dict(codebook=np.asarray(net.gates.codebook, dtype=np.int64), shift=net.gates.shift, relu=False,
                  in_frac_bits=net.gates.in_frac_bits, w_frac_bits=net.gates.w_frac_bits,
                  out_frac_bits=gate_frac_bits(config.act_bits))
    layers = [QuantizedLayer(index=index[:, :I], bias=bias, name="gates_x", **common),
              QuantizedLayer(index=index[:, I:], bias=np.zeros(order.size, dtype=np.int64), name="gates_h",
                             **common)]
    if net.proj is not None:
        layers.append(net.proj)
    layers += list(net.head)
    return layers


def _roles(net_or_info) -> list[str]:
    proj = net_or_info.proj_size > 0
    n_head = len(net_or_info.head) if isinstance(net_or_info, QuantizedLSTM) else net_or_info.n_head
    return ["gates_x", "gates_h"] + (["proj"] if proj else []) + ["head"] * n_head


def build_lstm_images(net: QuantizedLSTM, config: ESEConfig, *, source=None, stats=None, reference=None) -> dict:
    """Encode ``net`` for ``config``: ``{file name: bytes}`` including the manifest.

    Raises
    ------
    ConfigError
        A numeric or structural limit is violated (:func:`eie.spec.ese.check_lstm_fits`).
    FitError
        The matrices need more SRAM than a PE has.
    """
    check_lstm_fits(net, config)
    layers = image_layers(net, config)
    files, layer_table = encode_memories(layers, config)
    for row, role in zip(layer_table, _roles(net), strict=True):
        row["role"] = role
    layout = lstm_layout(net.input_size, net.hidden_size, net.proj_size, [l.n_out for l in net.head], config,
                         config.act_depth)
    info = LSTMInfo(input_size=net.input_size, hidden_size=net.hidden_size, proj_size=net.proj_size,
                    every_step=bool(net.every_step), h_frac_bits=int(net.h_frac_bits),
                    h_shift=int(net.h_shift(config.act_bits)), n_head=len(net.head), layout=layout)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "config_hash": config.config_hash(),
        "input_frac_bits": int(net.h_frac_bits),
        "layers": layer_table,
        "lstm": {**info.to_dict(), "gate_frac_bits": gate_frac_bits(config.act_bits),
                 "cell_frac_bits": cell_frac_bits(config.act_bits),
                 "unit_frac_bits": unit_frac_bits(config.act_bits)},
        "files": manifest_files(files),
        "source": source or {},
        "stats": stats or {},
        "reference": reference or {},
    }
    out = {name: data for name, (data, _, _) in files.items()}
    out["manifest.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return out


def write_lstm_images(net: QuantizedLSTM, config: ESEConfig, out_dir, *, source=None, stats=None,
                      reference=None, extra: dict | None = None) -> Path:
    """Encode ``net`` and write the image directory ``out_dir`` atomically (verified before it appears)."""
    contents = build_lstm_images(net, config, source=source, stats=stats, reference=reference)
    return write_image_files(contents, config, out_dir, extra=extra, loader=load_lstm_images)


# --- loading -------------------------------------------------------------------------------------

def load_lstm_images(path, *, expect_config: ESEConfig | None = None) -> LSTMImages:
    """Load and verify an ESE image directory (one-line :class:`ImageError` on any problem)."""
    root = Path(path)
    _need(root.is_dir(), f"image directory {root} does not exist; run eie compress first")
    _need((root / "manifest.json").is_file(), f"{root} has no manifest.json; it is not an image directory")
    return _load(_DirectoryReader(root), expect_config, root)


def lstm_images_from_bytes(contents: dict, *, expect_config: ESEConfig | None = None) -> LSTMImages:
    """:func:`load_lstm_images` of ``{file name: bytes}`` held in memory."""
    _need(isinstance(contents, dict) and "manifest.json" in contents, "the in-memory images have no manifest.json")
    return _load(_MemoryReader(contents), expect_config, None)


def _int(d: dict, key: str) -> int:
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(key)
    return value


def _load(read, expect_config, path) -> LSTMImages:
    manifest = _read_manifest(read, FORMAT, VERSION)
    config = _manifest_config(read, manifest, ESEConfig, expect_config)
    layers, ptr_base, bias_base = _layer_table(manifest, config, chained=False)
    try:
        d = manifest["lstm"]
        info = LSTMInfo(input_size=_int(d, "input_size"), hidden_size=_int(d, "hidden_size"),
                        proj_size=_int(d, "proj_size"), every_step=bool(d["every_step"]),
                        h_frac_bits=_int(d, "h_frac_bits"), h_shift=_int(d, "h_shift"), n_head=_int(d, "n_head"),
                        layout=LSTMLayout(**{k: _int(d["layout"], k) for k in LSTMLayout.__dataclass_fields__}))
        roles = [row["role"] for row in manifest["layers"]]
        input_frac_bits = _int(manifest, "input_frac_bits")
    except (KeyError, TypeError, ValueError) as e:
        raise ImageError(f"manifest.json: missing or malformed lstm field {e}") from None
    _check_structure(info, roles, layers, config, input_frac_bits)
    images = LSTMImages(config=config, layers=tuple(layers), input_frac_bits=input_frac_bits,
                        **_read_memories(read, manifest, config, len(layers), ptr_base, bias_base),
                        manifest=manifest, path=path, lstm=info)
    for l in range(len(layers)):
        decode_layer(images, l)  # validates pointers and rows
    _need(np.array_equal(images.codebook[0], images.codebook[1]),
          "codebook.hex: gates_x and gates_h must share one codebook (they are one gate matrix)")
    n_bias = config.rows_per_pe(layers[1].n_out)
    _need(all(np.all(b[layers[1].bias_base:layers[1].bias_base + n_bias] == 0) for b in images.bias),
          "the gates_h biases must be 0: the gate bias is stored with gates_x")
    return images


def _check_structure(info: LSTMInfo, roles, layers, config: ESEConfig, input_frac_bits: int) -> None:
    H, I, R = info.hidden_size, info.input_size, info.recurrent_size
    _need(min(H, I) >= 1 and info.proj_size >= 0 and info.n_head >= 0,
          f"manifest.json: an LSTM with {I} inputs, {H} units and projection {info.proj_size} is not valid")
    want = _roles(info)
    _need(roles == want, f"manifest.json: layer roles {roles} do not match the lstm section ({want})")
    G = gate_rows(H, config.n_pe)
    gx, gh = layers[0], layers[1]
    _need((gx.n_out, gx.n_in) == (G, I) and (gh.n_out, gh.n_in) == (G, R),
          f"manifest.json: gate layers {gx.n_out}x{gx.n_in} and {gh.n_out}x{gh.n_in}; {H} units on "
          f"{config.n_pe} PEs need {G}x{I} and {G}x{R}")
    _need(gx.shift == gh.shift and not gx.relu and not gh.relu,
          "manifest.json: gates_x and gates_h need the same shift and no ReLU")
    widths = [R]
    if info.proj_size:
        proj = layers[2]
        _need((proj.n_out, proj.n_in) == (info.proj_size, H) and not proj.relu,
              f"manifest.json: the projection is {proj.n_out}x{proj.n_in}, expected {info.proj_size}x{H} without "
              f"ReLU")
    for n, layer in enumerate(layers[info.first_head:]):
        _need(layer.n_in == widths[-1], f"manifest.json: head layer {n} takes {layer.n_in} inputs but gets "
                                        f"{widths[-1]}")
        widths.append(layer.n_out)
    _need(input_frac_bits == info.h_frac_bits, "manifest.json: input_frac_bits must equal lstm.h_frac_bits")
    _need(1 <= info.h_shift <= 2 * unit_frac_bits(config.act_bits),
          f"manifest.json: h_shift {info.h_shift} outside 1..{2 * unit_frac_bits(config.act_bits)}")
    expected = lstm_layout(I, H, info.proj_size, widths[1:], config, config.act_depth)
    _need(expected == info.layout, f"manifest.json: layout {info.layout.to_dict()} differs from the format's "
                                   f"{expected.to_dict()}")
    _need(expected.max_steps >= 1, f"the activation store (act_depth={config.act_depth}) cannot hold one step")
    units = -(-H // config.n_pe)
    _need(units <= config.max_units_per_pe and max(config.rows_per_pe(w) for w in [I, H] + widths)
          <= config.max_rows_per_pe, "manifest.json: the LSTM's vectors exceed max_rows_per_pe")


# --- either format -----------------------------------------------------------------------------------

def image_format(path) -> str | None:
    """The ``format`` of the image directory at ``path`` (None when it has no readable manifest)."""
    try:
        manifest = json.loads((Path(path) / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest.get("format") if isinstance(manifest, dict) else None


def open_images(path, *, expect_config=None) -> Images:
    """Load an image directory of either format: :class:`Images` (EIE) or :class:`LSTMImages` (ESE)."""
    if image_format(path) == FORMAT:
        return load_lstm_images(path, expect_config=expect_config)
    return load_images(path, expect_config=expect_config)
