"""Random integer LSTMs for tests and benchmarks.

Every LSTM made here satisfies :func:`eie.spec.ese.check_lstm_fits` for the configuration it is made
for. The gate matrix is a :func:`eie.sim.random_net.random_layer` (so its codebook keeps the
accumulator bound and its shift spreads the gate pre-activations over their ±8 range; ``extreme``
drives them into saturation, the flat ends of the sigmoid and tanh tables).
"""

from __future__ import annotations

import numpy as np

from eie.sim.random_net import random_layer
from eie.spec.ese import ESEConfig, QuantizedLSTM, check_lstm_fits, unit_frac_bits

__all__ = ["random_lstm", "random_sequences"]


def random_lstm(seed: int, input_size: int, hidden_size: int, config: ESEConfig, *, proj_size: int = 0,
                head: tuple = (), density: float = 0.3, extreme: bool = False, every_step: bool = False,
                empty_cols: float = 0.0, h_frac_bits: int | None = None) -> QuantizedLSTM:
    """A random LSTM ``input_size → hidden_size`` (projected to ``proj_size``) with a head of Linear
    layers of widths ``head`` (ReLU between them, none after the last)."""
    rng = np.random.default_rng(seed)
    recurrent = proj_size or hidden_size
    gates = random_layer(rng, input_size + recurrent, 4 * hidden_size, config, density=density, relu=False,
                         extreme=extreme, empty_cols=empty_cols, name="gates")
    proj = None
    if proj_size:
        proj = random_layer(rng, hidden_size, proj_size, config, density=max(density, 0.3), relu=False,
                            extreme=extreme, name="proj")
        proj = _zero_bias(proj)
    layers, widths = [], [recurrent] + list(head)
    for n, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(random_layer(rng, n_in, n_out, config, density=max(density, 0.3),
                                   relu=n < len(head) - 1, extreme=extreme, name=f"fc{n}"))
    if h_frac_bits is None:
        h_frac_bits = unit_frac_bits(config.act_bits) - int(rng.integers(0, 3))
    net = QuantizedLSTM(gates=gates, input_size=input_size, hidden_size=hidden_size, proj=proj, head=tuple(layers),
                        h_frac_bits=h_frac_bits, every_step=every_step)
    check_lstm_fits(net, config)
    return net


def _zero_bias(layer):
    from dataclasses import replace
    return replace(layer, bias=np.zeros(layer.n_out, dtype=np.int64))


def random_sequences(seed: int, batch: int, steps: int, input_size: int, config: ESEConfig, *,
                     density: float = 0.7, extreme: bool = False) -> np.ndarray:
    """Random integer input sequences ``(batch, steps, input_size)`` (``density`` of them non-zero)."""
    rng = np.random.default_rng(seed)
    lo, hi = config.act_min, config.act_max
    if extreme:
        x = rng.choice([lo, hi, 0, -1, 1], size=(batch, steps, input_size))
    else:
        x = rng.integers(lo // 2, hi // 2 + 1, size=(batch, steps, input_size))
    x[rng.random(x.shape) >= density] = 0
    return x.astype(np.int64)
