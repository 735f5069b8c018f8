"""The integer network: what the images encode, before it is laid out over PEs.

A :class:`QuantizedNetwork` is the fixed-point form of a compressed model (see
``docs/numerics.md``): per layer a matrix of codebook indices, an integer codebook,
integer biases in accumulator scale and a requantisation shift. ``compress/`` makes
one from a PyTorch model; ``sim.random_net`` makes random ones for tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eie.spec.config import ConfigError, EIEConfig

__all__ = ["QuantizedLayer", "QuantizedNetwork", "accumulator_bound", "check_fits"]


@dataclass(frozen=True)
class QuantizedLayer:
    """One fully connected layer in integer form.

    Attributes
    ----------
    index : numpy.ndarray
        ``(n_out, n_in)`` codebook indices; 0 where the weight is pruned.
    codebook : numpy.ndarray
        ``(2**weight_bits,)`` signed integers; ``codebook[0] == 0``.
    bias : numpy.ndarray
        ``(n_out,)`` signed integers in accumulator scale ``2^-(f_in + f_w)``.
    shift : int
        Requantisation shift ``s = f_in + f_w - f_out``.
    relu : bool
        Whether ReLU follows the layer.
    in_frac_bits, w_frac_bits, out_frac_bits : int
        The formats ``f_in``, ``f_w`` and ``f_out`` (informative; only ``shift`` reaches hardware).
    name : str
        The layer's name in the source model.
    """

    index: np.ndarray
    codebook: np.ndarray
    bias: np.ndarray
    shift: int
    relu: bool
    in_frac_bits: int = 0
    w_frac_bits: int = 0
    out_frac_bits: int = 0
    name: str = ""

    @property
    def n_out(self) -> int:
        return self.index.shape[0]

    @property
    def n_in(self) -> int:
        return self.index.shape[1]

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.index))

    def weights(self) -> np.ndarray:
        """Dense ``(n_out, n_in)`` int64 weights ``codebook[index]``."""
        return np.asarray(self.codebook, dtype=np.int64)[self.index]


@dataclass(frozen=True)
class QuantizedNetwork:
    """A chain of :class:`QuantizedLayer`; ``input_frac_bits`` is the input format ``f_in(0)``."""

    layers: tuple[QuantizedLayer, ...]
    input_frac_bits: int = 0

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out


def accumulator_bound(layer: QuantizedLayer, act_bits: int) -> int:
    """Largest magnitude any partial sum, the biased sum or the rounded sum can reach.

    ``max_i |b_i| + 2^(act_bits-1) * sum_j |c[v_ij]| + (2^(s-1) if s > 0)``, exact Python integer.
    """
    abs_w = np.abs(np.asarray(layer.codebook, dtype=object))[layer.index]
    row_sums = abs_w.sum(axis=1) if layer.n_in else np.zeros(layer.n_out, dtype=object)
    per_row = np.abs(np.asarray(layer.bias, dtype=object)) + row_sums * (2 ** (act_bits - 1))
    rounding = 2 ** (layer.shift - 1) if layer.shift > 0 else 0
    return int(max(per_row, default=0)) + rounding


def check_fits(net: QuantizedNetwork, config: EIEConfig) -> None:
    """Check every numeric and structural constraint a network must meet for ``config``.

    Raises :class:`ConfigError` (one line, with the fix) on the first violation. Memory
    capacities are checked by the image encoder, which knows the exact entry counts.
    """
    if not net.layers:
        raise ConfigError("the network has no layers")
    if len(net.layers) > config.max_layers:
        raise ConfigError(f"the network has {len(net.layers)} layers but the hardware holds "
                          f"max_layers={config.max_layers}; raise max_layers")
    prev_out = None
    for l, layer in enumerate(net.layers):
        where = f"layer {l}" + (f" ({layer.name})" if layer.name else "")
        if layer.index.ndim != 2 or layer.index.size == 0:
            raise ConfigError(f"{where}: weight index matrix must be 2-D and non-empty, "
                              f"not shape {layer.index.shape}")
        if prev_out is not None and layer.n_in != prev_out:
            raise ConfigError(f"{where}: takes {layer.n_in} inputs but the previous layer "
                              f"produces {prev_out}")
        prev_out = layer.n_out
        if layer.index.min() < 0 or layer.index.max() >= config.codebook_size:
            raise ConfigError(f"{where}: codebook indices must be in 0..{config.codebook_size - 1}")
        cb = np.asarray(layer.codebook)
        if cb.shape != (config.codebook_size,):
            raise ConfigError(f"{where}: codebook has {cb.size} entries, the hardware expects "
                              f"{config.codebook_size} (2**weight_bits)")
        if cb[0] != 0:
            raise ConfigError(f"{where}: codebook entry 0 must be 0 (it is the padding weight), "
                              f"not {cb[0]}")
        if cb.min() < config.act_min or cb.max() > config.act_max:
            raise ConfigError(f"{where}: codebook values must fit {config.act_bits}-bit signed")
        used = np.unique(layer.index)
        if np.any(cb[used[used > 0]] == 0):
            raise ConfigError(f"{where}: a stored weight maps to a zero codebook entry other "
                              f"than 0; prune it instead")
        if layer.bias.shape != (layer.n_out,):
            raise ConfigError(f"{where}: bias has shape {layer.bias.shape}, expected ({layer.n_out},)")
        if not 0 <= layer.shift <= config.max_shift:
            raise ConfigError(f"{where}: shift {layer.shift} is outside 0..{config.max_shift}; "
                              f"raise max_shift or recalibrate")
        bound = accumulator_bound(layer, config.act_bits)
        if bound > config.acc_max:
            need = bound.bit_length() + 1
            raise ConfigError(f"{where}: accumulators can reach {bound}, which needs acc_bits >= "
                              f"{need} (configured {config.acc_bits}); raise acc_bits")
        rows = config.rows_per_pe(max(layer.n_in, layer.n_out))
        if rows > config.max_rows_per_pe:
            raise ConfigError(f"{where}: {max(layer.n_in, layer.n_out)} activations need "
                              f"{rows} rows per PE but max_rows_per_pe={config.max_rows_per_pe}; "
                              f"raise max_rows_per_pe to {rows} or n_pe to "
                              f"{-(-max(layer.n_in, layer.n_out) // config.max_rows_per_pe)}")
