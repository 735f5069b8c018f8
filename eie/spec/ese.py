"""The ESE contract: LSTM hardware configuration, numerics, the integer LSTM and its layout over PEs.

ESE (Han et al., FPGA 2017) runs pruned, weight-shared LSTMs on the EIE PE array. This module is
the executable form of the LSTM sections of ``docs/numerics.md`` and ``docs/image-format.md``:
the golden model (``sim/lstm.py``), the RTL (``hw/ese_*.py``) and the images
(:mod:`eie.spec.ese_image`) all use these definitions. Plain Python and NumPy, like the rest of
:mod:`eie.spec`.

One LSTM step (PyTorch's gate order ``i, f, g, o``), in integers::

    y     = requantize(W_x x_t + W_h h_{t-1} + b, gate_shift)        gate pre-activations, Q(F_G)
    i, f, o = SIGMOID[y_i], SIGMOID[y_f], SIGMOID[y_o];  g = TANH[y_g]   table look-ups, Q(F_N)
    c_t   = sat((f c_{t-1} 2^(F_N-F_C) + i g + 2^(2F_N-F_C-1)) >> (2F_N-F_C))          Q(F_C)
    m_t   = sat((o TANH[c_t] + 2^(s_h-1)) >> s_h)
    h_t   = m_t, or requantize(W_hr m_t, proj_shift) with a projection

with ``F_G = F_C = act_bits - 4`` (gate pre-activations and the cell state span ±8) and
``F_N = act_bits - 2`` (a non-linearity's output, 1.0 = ``2^F_N``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

import numpy as np

from eie.spec.config import EIEConfig, _check_int
from eie.spec.errors import ConfigError
from eie.spec.network import QuantizedLayer, accumulator_bound
from eie.spec.numerics import requantize

__all__ = [
    "ESEConfig", "GATES", "gate_frac_bits", "cell_frac_bits", "unit_frac_bits", "nl_table_address",
    "sigmoid_table", "tanh_table", "nonlinearity_rom", "lstm_cell", "QuantizedLSTM", "LSTMLayout",
    "units_per_pe", "gate_rows", "gate_row_order", "lstm_layout", "check_lstm_fits",
]

#: PyTorch's order of the four gates in the stacked gate matrix.
GATES = ("i", "f", "g", "o")


@dataclass(frozen=True)
class ESEConfig(EIEConfig):
    """Parameters of an ESE array: an :class:`EIEConfig` plus the LSTM's own memories.

    Every EIE parameter keeps its meaning (PE count, queue depth, widths, SRAM depths); the PEs are
    the EIE ones. ``max_rows_per_pe`` bounds the gate rows per PE (four per hidden unit a PE owns)
    and the head layers' rows; each PE has two accumulator banks of that depth (one per step
    parity, so the next step's input products overlap this step's write-back).

    Parameters
    ----------
    act_depth : int
        Words of each PE's activation store: the recurrent state ``h``, the projection input ``m``,
        the head layers' activations and the input sequence (see :func:`lstm_layout`). It bounds
        the sequence length.
    nl_bits : int
        Address bits of the sigmoid and tanh tables (``2^nl_bits`` entries each), at most
        ``act_bits``: the table is addressed by the top ``nl_bits`` bits of its input.
    """

    act_depth: int = 1024
    nl_bits: int = 10

    def __post_init__(self):
        super().__post_init__()
        _check_int("act_depth", self.act_depth, 1)
        _check_int("act_bits", self.act_bits, 8, 18)
        _check_int("nl_bits", self.nl_bits, 2, self.act_bits)
        if self.max_rows_per_pe < 4:
            raise ConfigError(f"max_rows_per_pe must be >= 4 on an ESE array (a PE holds the four gate rows of "
                              f"each hidden unit it owns), not {self.max_rows_per_pe}")

    @property
    def max_units_per_pe(self) -> int:
        """Hidden units one PE can own (depth of its cell-state buffer)."""
        return self.max_rows_per_pe // 4

    def config_hash(self) -> str:
        """SHA-256 of the image-relevant parameters and the array kind (hex, 16 digits).

        Never equal to an :class:`EIEConfig`'s hash, so EIE and ESE images are never mixed up.
        """
        canon = json.dumps({"kind": "ese", **self.to_dict(include_timing=False)}, sort_keys=True,
                           separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]


# --- numerics -----------------------------------------------------------------------------------

def gate_frac_bits(act_bits: int) -> int:
    """``F_G``: fraction bits of a gate pre-activation (range ±8)."""
    return act_bits - 4


def cell_frac_bits(act_bits: int) -> int:
    """``F_C = F_G``: fraction bits of the cell state, so ``tanh(c)`` uses the gates' table."""
    return act_bits - 4


def unit_frac_bits(act_bits: int) -> int:
    """``F_N``: fraction bits of a sigmoid or tanh output (1.0 is ``2^F_N``)."""
    return act_bits - 2


def nl_table_address(y, act_bits: int, nl_bits: int):
    """Table address of ``act_bits``-bit values ``y``: their top ``nl_bits`` bits, as unsigned."""
    return (np.asarray(y, dtype=np.int64) >> (act_bits - nl_bits)) & ((1 << nl_bits) - 1)


def _table(function, act_bits: int, nl_bits: int) -> np.ndarray:
    """``round_half_up(function(x_k) · 2^F_N)`` at the midpoint ``x_k`` of every address's inputs."""
    step = 2.0 ** (act_bits - nl_bits - gate_frac_bits(act_bits))
    scale = 2 ** unit_frac_bits(act_bits)
    half = 1 << (nl_bits - 1)
    out = np.empty(1 << nl_bits, dtype=np.int64)
    for address in range(1 << nl_bits):
        k = address - (1 << nl_bits) if address >= half else address
        out[address] = math.floor(function((k + 0.5) * step) * scale + 0.5)
    return out


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def sigmoid_table(act_bits: int, nl_bits: int) -> np.ndarray:
    """The hardware's sigmoid: ``2^nl_bits`` int64 entries in address order (``docs/numerics.md``)."""
    return _table(_sigmoid, act_bits, nl_bits)


def tanh_table(act_bits: int, nl_bits: int) -> np.ndarray:
    """The hardware's tanh: ``2^nl_bits`` int64 entries in address order (``docs/numerics.md``)."""
    return _table(math.tanh, act_bits, nl_bits)


def nonlinearity_rom(act_bits: int, nl_bits: int) -> np.ndarray:
    """The ROM of one element-wise unit: the sigmoid table, then the tanh table (address MSB = tanh)."""
    return np.concatenate([sigmoid_table(act_bits, nl_bits), tanh_table(act_bits, nl_bits)])


def lstm_cell(y_i, y_f, y_g, y_o, c_prev, *, act_bits: int, nl_bits: int, h_shift: int):
    """The element-wise step of one LSTM unit (vectorised): returns ``(c_t, m_t)`` as int64.

    ``y_*`` are gate pre-activations in ``Q(F_G)``, ``c_prev`` the cell state in ``Q(F_C)``; ``m_t`` is
    ``o·tanh(c_t)`` rounded by ``h_shift``. Exactly ``docs/numerics.md``, "LSTM step".
    """
    sig, tanh = sigmoid_table(act_bits, nl_bits), tanh_table(act_bits, nl_bits)

    def lookup(table, y):
        return table[nl_table_address(y, act_bits, nl_bits)]

    f_n, f_c = unit_frac_bits(act_bits), cell_frac_bits(act_bits)
    i, f, g, o = lookup(sig, y_i), lookup(sig, y_f), lookup(tanh, y_g), lookup(sig, y_o)
    c_prev = np.asarray(c_prev, dtype=np.int64)
    c = requantize((f * c_prev << (f_n - f_c)) + i * g, 2 * f_n - f_c, False, act_bits)
    m = requantize(o * lookup(tanh, c), h_shift, False, act_bits)
    return c, m


# --- the integer LSTM ---------------------------------------------------------------------------

@dataclass(frozen=True)
class QuantizedLSTM:
    """A one-layer LSTM (optionally projected) and the fully-connected head after it, in integers.

    Attributes
    ----------
    gates : QuantizedLayer
        The stacked gate matrix: ``index`` is ``(4H, I + R)`` with rows in PyTorch's order (the ``i``
        rows of every unit, then ``f``, ``g``, ``o``) and columns ``[x_t | h_{t-1}]``; ``bias`` is
        ``b_ih + b_hh`` in accumulator scale; ``shift`` brings the sums to ``Q(F_G)``; no ReLU.
    input_size : int
        ``I``, features per time step.
    hidden_size : int
        ``H``, hidden units (cell-state width).
    proj : QuantizedLayer or None
        ``W_hr`` ``(P, H)`` of ``nn.LSTM(proj_size=P)``: input ``m_t`` in ``Q(F_N)``, output
        ``h_t`` in ``Q(h_frac_bits)``; zero bias, no ReLU.
    head : tuple of QuantizedLayer
        Linear layers after the LSTM (the first takes ``h_t``); may be empty.
    h_frac_bits : int
        Format of ``x_t`` and ``h_t``, the two halves of the gate matrix's input vector.
    every_step : bool
        The model's output is the head applied to every step's ``h_t`` (else the last step's only).
    """

    gates: QuantizedLayer
    input_size: int
    hidden_size: int
    proj: QuantizedLayer | None = None
    head: tuple[QuantizedLayer, ...] = ()
    h_frac_bits: int = 0
    every_step: bool = False
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def proj_size(self) -> int:
        return 0 if self.proj is None else self.proj.n_out

    @property
    def recurrent_size(self) -> int:
        """``R``: width of ``h_t`` (the projection size with a projection, else ``H``)."""
        return self.proj_size or self.hidden_size

    @property
    def n_out(self) -> int:
        """Outputs per time step (of the last head layer, or ``h_t``)."""
        return self.head[-1].n_out if self.head else self.recurrent_size

    @property
    def output_frac_bits(self) -> int:
        return self.head[-1].out_frac_bits if self.head else self.h_frac_bits

    def h_shift(self, act_bits: int) -> int:
        """``s_h``: the element-wise unit's output shift from ``Q(2 F_N)`` to ``m_t``'s format."""
        out = unit_frac_bits(act_bits) if self.proj is not None else self.h_frac_bits
        return 2 * unit_frac_bits(act_bits) - out

    def layers(self) -> list[QuantizedLayer]:
        """Every matrix, in image order before the gate split: gates, projection, head."""
        return [self.gates] + ([self.proj] if self.proj is not None else []) + list(self.head)


def units_per_pe(hidden_size: int, n_pe: int) -> int:
    """``U = ceil(H / N)``: hidden units per PE (unit ``k`` lives in PE ``k mod N``)."""
    return -(-hidden_size // n_pe)


def gate_rows(hidden_size: int, n_pe: int) -> int:
    """Rows of the gate layers in the images: ``4·N·U`` (four per unit slot of every PE)."""
    return 4 * n_pe * units_per_pe(hidden_size, n_pe)


def gate_row_order(hidden_size: int, n_pe: int) -> np.ndarray:
    """For every image row ``R`` of the gate layers, its row in PyTorch's stacked matrix, or -1.

    Unit ``k = u·N + p`` lives in PE ``p``; its gate ``q`` is PE ``p``'s local row ``4u + q``, i.e.
    image row ``R = (4u + q)·N + p`` (EIE's interleaving), and PyTorch row ``q·H + k``. Slots of
    units ``k >= H`` (when ``N`` does not divide ``H``) are empty rows (-1).
    """
    n_rows = gate_rows(hidden_size, n_pe)
    r = np.arange(n_rows)
    p, local = r % n_pe, r // n_pe
    u, q = local // 4, local % 4
    k = u * n_pe + p
    return np.where(k < hidden_size, q * hidden_size + k, -1)


@dataclass(frozen=True)
class LSTMLayout:
    """Where the vectors live in every PE's activation store (word addresses, the same in all PEs).

    Element ``j`` of a vector is in PE ``j mod N`` at ``base + j div N``; step ``t`` of the input
    sequence starts at ``x_base + t·x_stride``. ``max_steps`` is the longest sequence that fits.
    """

    h_base: int
    m_base: int
    ping_base: int
    pong_base: int
    x_base: int
    x_stride: int
    max_steps: int

    def to_dict(self) -> dict:
        return {name: int(getattr(self, name)) for name in self.__dataclass_fields__}

    def head_source(self, l: int) -> int:
        """Base of head layer ``l``'s input: ``h``, then the ping and pong vectors alternately."""
        return self.h_base if l == 0 else self.head_dest(l - 1)

    def head_dest(self, l: int) -> int:
        """Base of head layer ``l``'s output: ping for even ``l``, pong for odd."""
        return self.ping_base if l % 2 == 0 else self.pong_base

    def output_base(self, n_head: int) -> int:
        """Base of the vector the accelerator outputs: the last head layer's, else ``h``."""
        return self.head_dest(n_head - 1) if n_head else self.h_base


def lstm_layout(input_size: int, hidden_size: int, proj_size: int, head_widths, config: EIEConfig,
                act_depth: int) -> LSTMLayout:
    """Region bases of the activation store: ``h``, ``m`` (projection only), the head's ping and pong
    vectors, then the input sequence."""
    n = config.n_pe
    head_widths = list(head_widths)
    recurrent = proj_size or hidden_size
    h_words = -(-recurrent // n)
    m_words = -(-hidden_size // n) if proj_size else 0
    head_words = -(-max(head_widths, default=0) // n)
    ping = h_words + m_words
    pong = ping + head_words
    x_base = pong + (head_words if len(head_widths) > 1 else 0)
    x_stride = -(-input_size // n)
    return LSTMLayout(h_base=0, m_base=h_words, ping_base=ping, pong_base=pong, x_base=x_base,
                      x_stride=x_stride, max_steps=max(0, (act_depth - x_base) // x_stride))


def check_lstm_fits(net: QuantizedLSTM, config: ESEConfig) -> None:
    """Check the numeric and structural limits an LSTM must meet for ``config`` (one-line ConfigError).

    Memory capacities of the sparse matrices are checked by the image encoder.
    """
    if not isinstance(config, ESEConfig):
        raise ConfigError(f"an LSTM runs on an ESE array; give an ESEConfig, not {type(config).__name__}")
    a = config.act_bits
    H, I, R = net.hidden_size, net.input_size, net.recurrent_size
    if H < 1 or I < 1:
        raise ConfigError(f"the LSTM needs at least one input and one hidden unit, not I={I}, H={H}")
    if net.gates.index.shape != (4 * H, I + R):
        raise ConfigError(f"the gate matrix has shape {net.gates.index.shape}, an LSTM with I={I}, H={H}, "
                          f"recurrent size {R} needs {(4 * H, I + R)}")
    if net.gates.relu or (net.proj is not None and net.proj.relu):
        raise ConfigError("the gate and projection matrices are not followed by a ReLU")
    units = units_per_pe(H, config.n_pe)
    if units > config.max_units_per_pe:
        raise ConfigError(f"{H} hidden units need {units} units ({4 * units} gate rows) per PE but "
                          f"max_rows_per_pe={config.max_rows_per_pe} holds {config.max_units_per_pe}; raise "
                          f"max_rows_per_pe to {4 * units} or n_pe to {-(-H // config.max_units_per_pe)}")
    n_layers = 2 + (net.proj is not None) + len(net.head)
    if n_layers > config.max_layers:
        raise ConfigError(f"the LSTM needs {n_layers} layer-table rows (gates x, gates h, projection, head) but "
                          f"max_layers={config.max_layers}; raise max_layers")
    if not 1 <= net.h_shift(a) <= 2 * unit_frac_bits(a):
        raise ConfigError(f"h_frac_bits={net.h_frac_bits} gives an element-wise output shift of {net.h_shift(a)}, "
                          f"outside 1..{2 * unit_frac_bits(a)}; recalibrate")
    expected_in = ([R] + [layer.n_out for layer in net.head])[:len(net.head)]
    for n, (layer, n_in) in enumerate(zip(net.head, expected_in, strict=True)):
        if layer.n_in != n_in:
            raise ConfigError(f"head layer {n} takes {layer.n_in} inputs but gets {n_in}")
    if net.proj is not None and net.proj.index.shape[1] != H:
        raise ConfigError(f"the projection takes {net.proj.index.shape[1]} inputs, the LSTM has {H} units")
    for name, layer in [("gates", net.gates)] + ([("proj", net.proj)] if net.proj is not None else []) + \
            [(f"head{n}", layer) for n, layer in enumerate(net.head)]:
        _check_layer(name, layer, config)
    widths = [I, R, H] + [layer.n_out for layer in net.head]
    rows = max(config.rows_per_pe(w) for w in widths)
    if rows > config.max_rows_per_pe:
        raise ConfigError(f"a vector of {max(widths)} activations needs {rows} rows per PE but max_rows_per_pe="
                          f"{config.max_rows_per_pe}; raise max_rows_per_pe to {rows}")
    layout = lstm_layout(I, H, net.proj_size, [layer.n_out for layer in net.head], config, config.act_depth)
    if layout.max_steps < 1:
        raise ConfigError(f"the activation store of {config.act_depth} words cannot hold one step: the vectors "
                          f"need {layout.x_base + layout.x_stride} words per PE; raise act_depth")


def _check_layer(name: str, layer: QuantizedLayer, config: EIEConfig) -> None:
    cb = np.asarray(layer.codebook)
    if cb.shape != (config.codebook_size,) or cb[0] != 0:
        raise ConfigError(f"{name}: the codebook must have {config.codebook_size} entries, entry 0 being 0")
    if cb.min() < config.act_min or cb.max() > config.act_max:
        raise ConfigError(f"{name}: codebook values must fit {config.act_bits}-bit signed")
    if layer.index.min() < 0 or layer.index.max() >= config.codebook_size:
        raise ConfigError(f"{name}: codebook indices must be in 0..{config.codebook_size - 1}")
    used = np.unique(layer.index)
    if np.any(cb[used[used > 0]] == 0):
        raise ConfigError(f"{name}: a stored weight maps to a zero codebook entry other than 0; prune it instead")
    if not 0 <= layer.shift <= config.max_shift:
        raise ConfigError(f"{name}: shift {layer.shift} is outside 0..{config.max_shift}; raise max_shift or "
                          f"recalibrate")
    bound = accumulator_bound(layer, config.act_bits)
    if bound > config.acc_max:
        raise ConfigError(f"{name}: accumulators can reach {bound}, which needs acc_bits >= {bound.bit_length() + 1} "
                          f"(configured {config.acc_bits}); raise acc_bits")
