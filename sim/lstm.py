"""The LSTM golden model: bit-exact execution of ESE images in integer NumPy, and its yardsticks.

:func:`run_lstm_golden` reads only :class:`~eie.spec.ese_image.LSTMImages` and runs a batch of
sequences exactly as ``docs/numerics.md`` ("LSTM step") defines it: per step the sparse gate products
over ``[x_t | h_{t-1}]`` decoded from the images (padding included), the write-back requantiser, the
table sigmoid and tanh, the cell update, the optional projection, and the head on the last step (or
on every step). Everything it computes on the way is returned (:class:`LSTMTrace`).

:func:`reference_lstm` is the deliberately naive twin for the tests: Python integers straight from
the :class:`~eie.spec.ese.QuantizedLSTM`, in PyTorch's gate order, sharing nothing with the golden
model but the spec's tables. :func:`float_lstm_from_images` is the float model the images encode
(real sigmoid and tanh), for the error of fixed point against float. :func:`step_work` gives the
work of every step per PE: the yardstick of the RTL's cycles and of the PEs' utilisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eie.sim.cycles import column_entries
from eie.spec.errors import ImageError
from eie.spec.ese import (
    gate_row_order,
    lstm_cell,
    nl_table_address,
    sigmoid_table,
    tanh_table,
    units_per_pe,
)
from eie.spec.ese_image import LSTMImages
from eie.spec.image import decode_layer
from eie.spec.numerics import requantize

__all__ = ["LSTMTrace", "check_sequences", "run_lstm_golden", "reference_lstm", "float_lstm_from_images",
           "StepWork", "step_work"]


@dataclass(frozen=True)
class LSTMTrace:
    """Everything the golden model computed for a batch of ``B`` sequences of ``T`` steps.

    Attributes
    ----------
    outputs : numpy.ndarray
        ``(B, n_out)`` for a last-step model, ``(B, T, n_out)`` for an every-step model (int64).
    gates : numpy.ndarray
        ``(B, T, 4H)`` gate pre-activations in PyTorch's order ``i, f, g, o``.
    c : numpy.ndarray
        ``(B, T, H)`` cell states.
    h : numpy.ndarray
        ``(B, T, R)`` recurrent outputs ``h_t`` (the projection's output when there is one).
    head : list of numpy.ndarray
        Every head layer's outputs, ``(B, T_out, n)`` with ``T_out`` 1 or ``T``.
    """

    outputs: np.ndarray
    gates: np.ndarray
    c: np.ndarray
    h: np.ndarray
    head: list


def check_sequences(x, images: LSTMImages) -> np.ndarray:
    """``x`` as int64 ``(batch, T, I)`` activations, or ValueError (shape, dtype, range)."""
    x = np.asarray(x)
    I = images.lstm.input_size
    if x.ndim == 2 and x.shape[1] == I:
        x = x[:, None, :]
    if x.ndim != 3 or x.shape[2] != I or x.shape[1] < 1:
        raise ValueError(f"input sequences must have shape (batch, steps, {I}), not {x.shape}")
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"integer input activations expected (quantised), not {x.dtype}")
    cfg = images.config
    if x.size and (x.min() < cfg.act_min or x.max() > cfg.act_max):
        raise ValueError(f"input activations must fit {cfg.act_bits}-bit signed ({cfg.act_min}..{cfg.act_max})")
    return x.astype(np.int64)


def _dense(images: LSTMImages, l: int) -> np.ndarray:
    info = images.layers[l]
    rows, cols, v = decode_layer(images, l)
    w = np.zeros((info.n_out, info.n_in), dtype=np.int64)
    np.add.at(w, (rows, cols), images.codebook[l][v])
    return w


def _bias(images: LSTMImages, l: int) -> np.ndarray:
    info = images.layers[l]
    n = images.config.n_pe
    b = np.empty(info.n_out, dtype=np.int64)
    for p in range(n):
        mine = b[p::n]
        mine[:] = images.bias[p][info.bias_base:info.bias_base + mine.size]
    return b


def _layer(images: LSTMImages, l: int, a: np.ndarray) -> np.ndarray:
    info = images.layers[l]
    return requantize(a @ _dense(images, l).T + _bias(images, l), info.shift, info.relu, images.config.act_bits)


def run_lstm_golden(images: LSTMImages, x) -> LSTMTrace:
    """Integer outputs (and every intermediate value) of the images for integer sequences ``x``.

    Parameters
    ----------
    images : LSTMImages
    x : array-like of int
        ``(batch, T, input_size)`` activations in the input format (``(batch, input_size)`` is one step).
    """
    if not isinstance(images, LSTMImages):
        raise ImageError("the LSTM golden model runs ese-images; use eie.sim.golden for eie-images (an MLP)")
    x = check_sequences(x, images)
    cfg, info = images.config, images.lstm
    a = cfg.act_bits
    B, T, _ = x.shape
    H, R = info.hidden_size, info.recurrent_size
    order = gate_row_order(H, cfg.n_pe)
    live = order >= 0
    wx, wh, bias = _dense(images, 0), _dense(images, 1), _bias(images, 0)
    shift = images.layers[0].shift
    gates = np.zeros((B, T, 4 * H), dtype=np.int64)
    c_all = np.zeros((B, T, H), dtype=np.int64)
    h_all = np.zeros((B, T, R), dtype=np.int64)
    head_outs = [[] for _ in range(info.n_head)]
    outputs = []
    c = np.zeros((B, H), dtype=np.int64)
    h = np.zeros((B, R), dtype=np.int64)
    for t in range(T):
        y = requantize(x[:, t] @ wx.T + h @ wh.T + bias, shift, False, a)
        gates[:, t, order[live]] = y[:, live]
        y_i, y_f, y_g, y_o = np.split(gates[:, t], 4, axis=1)
        c, m = lstm_cell(y_i, y_f, y_g, y_o, c, act_bits=a, nl_bits=cfg.nl_bits, h_shift=info.h_shift)
        h = _layer(images, 2, m) if info.proj_size else m
        c_all[:, t], h_all[:, t] = c, h
        if info.every_step or t == T - 1:
            out = h
            for n in range(info.n_head):
                out = _layer(images, info.first_head + n, out)
                head_outs[n].append(out)
            outputs.append(out)
    result = np.stack(outputs, axis=1) if info.every_step else outputs[-1]
    return LSTMTrace(outputs=result, gates=gates, c=c_all, h=h_all,
                     head=[np.stack(o, axis=1) for o in head_outs])


def reference_lstm(net, x, *, act_bits: int, nl_bits: int) -> list:
    """Naive Python-integer LSTM of one sequence ``x`` (``T`` lists of ``I`` ints) from a
    :class:`~eie.spec.ese.QuantizedLSTM`; returns its outputs (one list, or one per step)."""
    sig, tanh = [int(v) for v in sigmoid_table(act_bits, nl_bits)], [int(v) for v in tanh_table(act_bits, nl_bits)]
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    f_n = act_bits - 2
    f_c = act_bits - 4

    def table(values, y):
        return values[int(nl_table_address(y, act_bits, nl_bits))]

    def rq(t, s):
        r = (t + (1 << (s - 1))) >> s if s > 0 else t
        return min(max(r, lo), hi)

    def dense(layer, a, relu):
        out = []
        for i in range(layer.n_out):
            t = int(layer.bias[i]) + sum(int(layer.codebook[layer.index[i, j]]) * a[j] for j in range(layer.n_in))
            y = rq(t, layer.shift)
            out.append(max(y, 0) if relu else y)
        return out

    H, R = net.hidden_size, net.recurrent_size
    h, c = [0] * R, [0] * H
    outputs = []
    for t, x_t in enumerate(x):
        y = dense(net.gates, [int(v) for v in x_t] + h, False)
        m = []
        for k in range(H):
            i, f = table(sig, y[k]), table(sig, y[H + k])
            g, o = table(tanh, y[2 * H + k]), table(sig, y[3 * H + k])
            c[k] = rq((f * c[k] << (f_n - f_c)) + i * g, 2 * f_n - f_c)
            m.append(rq(o * table(tanh, c[k]), net.h_shift(act_bits)))
        h = dense(net.proj, m, False) if net.proj is not None else m
        if net.every_step or t == len(x) - 1:
            out = h
            for layer in net.head:
                out = dense(layer, out, layer.relu)
            outputs.append(out)
    return outputs if net.every_step else outputs[-1]


def float_lstm_from_images(images: LSTMImages, x) -> np.ndarray:
    """The float model the images encode (float centroids and biases of the manifest's ``reference``,
    real sigmoid and tanh, float64) on float sequences ``x`` ``(batch, T, I)``.

    Its difference to the golden model is what fixed point and the table non-linearities cost.
    """
    ref = images.manifest.get("reference", {})
    if not isinstance(ref.get("gates"), dict):
        raise ImageError("manifest.json has no float reference of the LSTM; re-run eie compress")
    info = images.lstm
    H, I = info.hidden_size, info.input_size
    order = gate_row_order(H, images.config.n_pe)
    live = order >= 0

    def weights(l, centroids, n_rows=None, rows=None):
        r, cols, v = decode_layer(images, l)
        layer = images.layers[l]
        w = np.zeros((layer.n_out, layer.n_in))
        keep = v > 0
        w[r[keep], cols[keep]] = np.asarray(centroids, dtype=np.float64)[v[keep]]
        if rows is None:
            return w
        out = np.zeros((n_rows, layer.n_in))
        out[rows[live]] = w[live]
        return out

    cb = ref["gates"]["centroids"]
    w_gates = np.concatenate([weights(0, cb, 4 * H, order), weights(1, cb, 4 * H, order)], axis=1)
    b_gates = np.asarray(ref["gates"]["bias"], dtype=np.float64)
    proj = weights(2, ref["proj"]["centroids"]) if info.proj_size else None
    head = [(weights(info.first_head + n, d["centroids"]), np.asarray(d["bias"], dtype=np.float64),
             images.layers[info.first_head + n].relu) for n, d in enumerate(ref["head"])]
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[:, None, :]
    B, T, _ = x.shape
    h = np.zeros((B, info.recurrent_size))
    c = np.zeros((B, H))
    outputs = []

    def sigmoid(v):
        return 0.5 * (1.0 + np.tanh(0.5 * v))

    for t in range(T):
        z = np.concatenate([x[:, t, :I], h], axis=1) @ w_gates.T + b_gates
        i, f, g, o = sigmoid(z[:, :H]), sigmoid(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), sigmoid(z[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        if proj is not None:
            h = h @ proj.T
        if info.every_step or t == T - 1:
            out = h
            for w, b, relu in head:
                out = out @ w.T + b
                if relu:
                    out = np.maximum(out, 0.0)
            outputs.append(out)
    return np.stack(outputs, axis=1) if info.every_step else outputs[-1]


@dataclass(frozen=True)
class StepWork:
    """Work of every step of a batch of sequences, per PE (means over the batch).

    Attributes
    ----------
    x_macs, h_macs : numpy.ndarray
        ``(T, n_pe)`` entries each PE processes for the step's input columns and recurrent columns.
    x_nonzero, h_nonzero : numpy.ndarray
        ``(T,)`` non-zero activations the central control broadcasts for each part.
    rows : int
        Gate rows each PE writes back per step (``4U``).
    ideal : numpy.ndarray
        ``(T,)`` cycles of a step if nothing but the busiest unit limited it: the recurrent products
        (``max(busiest PE's h MACs, non-zero h)``) followed by the write-back (``4U`` rows) overlapped
        with the next step's input products (``max(busiest PE's x MACs, non-zero x)``); step 0 also
        computes its own input products first.
    """

    x_macs: np.ndarray
    h_macs: np.ndarray
    x_nonzero: np.ndarray
    h_nonzero: np.ndarray
    rows: int
    ideal: np.ndarray

    @property
    def macs(self) -> np.ndarray:
        """``(T, n_pe)`` gate-product MACs per step and PE."""
        return self.x_macs + self.h_macs

    def balance(self, part: str = "all") -> float:
        """Load balance of the gate products: total MACs / (n_pe · busiest PE's MACs), over all steps
        (``part`` ``"x"``, ``"h"`` or ``"all"``); 1.0 when every PE has the same work (ESE's utilisation
        bound of the SpMV)."""
        macs = {"x": self.x_macs, "h": self.h_macs, "all": self.macs}[part]
        busiest = macs.max(axis=1).sum()
        return float(macs.sum() / (macs.shape[1] * busiest)) if busiest else 1.0


def step_work(images: LSTMImages, x_int, trace: LSTMTrace) -> StepWork:
    """:class:`StepWork` of the sequences ``x_int`` (the golden ``trace`` gives ``h_{t-1}``)."""
    x = check_sequences(x_int, images)
    cx, ch = column_entries(images, 0), column_entries(images, 1)     # (n_pe, I), (n_pe, R)
    nz_x = (x != 0).astype(np.int64)                                    # (B, T, I)
    h_prev = np.concatenate([np.zeros_like(trace.h[:, :1]), trace.h[:, :-1]], axis=1)
    nz_h = (h_prev != 0).astype(np.int64)                               # (B, T, R)
    x_macs = (nz_x @ cx.T).mean(axis=0)                                 # (T, n_pe)
    h_macs = (nz_h @ ch.T).mean(axis=0)
    x_nonzero, h_nonzero = nz_x.sum(axis=2).mean(axis=0), nz_h.sum(axis=2).mean(axis=0)
    rows = 4 * units_per_pe(images.lstm.hidden_size, images.config.n_pe)
    x_part = np.maximum((nz_x @ cx.T).max(axis=2), nz_x.sum(axis=2))    # (B, T)
    h_part = np.maximum((nz_h @ ch.T).max(axis=2), nz_h.sum(axis=2))
    next_x = np.concatenate([x_part[:, 1:], np.zeros_like(x_part[:, :1])], axis=1)
    ideal = h_part + np.maximum(rows, next_x)
    ideal[:, 0] += x_part[:, 0]
    return StepWork(x_macs=x_macs, h_macs=h_macs, x_nonzero=x_nonzero, h_nonzero=h_nonzero, rows=rows,
                    ideal=ideal.mean(axis=0))
