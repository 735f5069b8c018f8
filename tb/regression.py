"""Randomised differential regression: random cases through the naive reference, the golden
model and the RTL, with hypothesis generating, shrinking and saving failing cases.

A case is a network, a hardware configuration and inputs: 1-3 layers of widths 1..40 (layers
narrower than the array and PE counts that do not divide the rows included), densities from
empty to dense, empty columns, zero runs longer than the relative index (padding), extreme
weights and activations, all-zero and dense input vectors, output back-pressure and idle input
cycles. The configurations (:data:`CONFIGS`) vary the PE count, the activation-queue depth,
the entries per word and the datapath widths; one cached Verilator build and one running
simulation (:class:`eie.tb.rtl_server.RTLServer`) serve all the cases of a configuration.

A failing case is shrunk by hypothesis and saved as a self-contained JSON reproducer (the
configuration, the integer network, the inputs and the knobs; :func:`save_reproducer`) in
``tests/reproducers/``, which the regression replays on every run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from eie.sim.golden import reference_forward, run_golden
from eie.sim.random_net import random_inputs, random_network
from eie.spec.config import EIEConfig
from eie.spec.emit import write_images
from eie.spec.errors import FitError
from eie.spec.image import load_images
from eie.spec.network import QuantizedLayer, QuantizedNetwork

__all__ = ["CONFIGS", "Case", "cases", "Materialised", "materialise", "check_case", "Mismatch",
           "save_reproducer", "load_reproducer", "REPRODUCERS", "network_to_json", "network_from_json"]

#: Where saved reproducers live (replayed by ``tests/test_random_regression.py``).
REPRODUCERS = Path(__file__).resolve().parents[1] / "tests" / "reproducers"


def _config(n_pe, queue_depth, **changes):
    params = dict(n_pe=n_pe, queue_depth=queue_depth, mat_depth=256, ptr_depth=256,
                  max_rows_per_pe=32, bias_depth=64, max_layers=4)
    params.update(changes)
    return EIEConfig(**params)


#: The hardware configurations of the RTL regression (shared with ``tests/test_rtl_accelerator.py``,
#: so one build serves both).
CONFIGS = {
    # One PE, 2-bit relative indices: zero runs over 3 rows need padding entries.
    "pe1_q8_idx2": _config(1, 8, index_bits=2, max_rows_per_pe=64, mat_depth=512, bias_depth=128),
    # A PE count that is not a power of two, 1-deep queues, 3 entries per word (not a power of two).
    "pe3_q1_epw3": _config(3, 1, index_bits=3, entries_per_word=3, mat_depth=512),
    "pe4_q2": _config(4, 2),
    # Narrow datapath: 8-bit activations, 24-bit accumulators, 3-bit weight indices.
    "pe8_q8_narrow": _config(8, 8, act_bits=8, acc_bits=24, weight_bits=3, max_shift=16,
                             max_rows_per_pe=16),
    "pe16_q2": _config(16, 2, max_rows_per_pe=8, mat_depth=64, ptr_depth=256, bias_depth=16),
    "pe64_q8": _config(64, 8, max_rows_per_pe=4, mat_depth=16, ptr_depth=512, bias_depth=8),
}


@dataclass(frozen=True)
class Case:
    """The recipe of one random case (everything else follows from the seeds)."""

    shapes: tuple[int, ...]
    density: float
    empty_cols: float
    extreme: bool
    net_seed: int
    batch: int
    input_density: float
    input_seed: int
    p_ready: float
    p_idle: float
    seed: int


def cases(config: EIEConfig, max_width: int = 40) -> st.SearchStrategy[Case]:
    """Hypothesis strategy of :class:`Case` for ``config`` (shrinks towards one narrow layer,
    no weights, one zero input, no back-pressure)."""
    width = min(max_width, config.max_width)

    @st.composite
    def build(draw):
        n_layers = draw(st.integers(1, min(3, config.max_layers)))
        shapes = tuple(draw(st.lists(st.integers(1, width), min_size=n_layers + 1, max_size=n_layers + 1)))
        return Case(
            shapes=shapes,
            density=draw(st.sampled_from([0.0, 0.02, 0.1, 0.3, 0.6, 1.0])),
            empty_cols=draw(st.sampled_from([0.0, 0.3])),
            extreme=draw(st.booleans()),
            net_seed=draw(st.integers(0, 2**16)),
            batch=draw(st.integers(1, 3)),
            input_density=draw(st.sampled_from([0.0, 0.3, 0.7, 1.0])),
            input_seed=draw(st.integers(0, 2**16)),
            p_ready=draw(st.sampled_from([1.0, 0.7, 0.3])),
            p_idle=draw(st.sampled_from([0.0, 0.2])),
            seed=draw(st.integers(0, 2**16)),
        )

    return build()


@dataclass
class Materialised:
    """A case made concrete: the integer network, its images (in ``images.path``) and inputs."""

    config: EIEConfig
    net: QuantizedNetwork
    images: object
    x: np.ndarray
    p_ready: float
    p_idle: float
    seed: int


def _network_of(config, case: Case) -> QuantizedNetwork:
    return random_network(case.net_seed, list(case.shapes), config, density=case.density,
                          empty_cols=case.empty_cols, extreme=case.extreme)


def materialise(config: EIEConfig, case: Case, directory) -> Materialised:
    """Build the network, write its images to ``directory`` and draw the inputs; a network that
    does not fit ``config``'s memories is rejected (``hypothesis.assume``)."""
    net = _network_of(config, case)
    try:
        image_dir = write_images(net, config, directory)
    except FitError:
        assume(False)
    x = random_inputs(case.input_seed, case.batch, case.shapes[0], config, density=case.input_density,
                      extreme=case.extreme)
    return Materialised(config, net, load_images(image_dir), x, case.p_ready, case.p_idle, case.seed)


class Mismatch(AssertionError):
    """The three views disagree on a case."""


def check_case(rtl, m: Materialised) -> np.ndarray:
    """The naive reference, the golden model and the RTL (``rtl``: an :class:`RTLServer`) on one
    case; returns the outputs, raises :class:`Mismatch` naming the first difference."""
    golden = run_golden(m.images, m.x)
    for b, vec in enumerate(m.x):
        naive = reference_forward(m.net, vec, m.config.act_bits)
        if list(golden[b]) != naive:
            row = int(np.flatnonzero(np.asarray(naive) != golden[b])[0])
            raise Mismatch(f"golden model differs from the naive reference: input {b}, row {row}: "
                           f"naive {naive[row]}, golden {golden[b, row]}")
    got = rtl.run(m.images, m.x, p_ready=m.p_ready, p_idle=m.p_idle, seed=m.seed).outputs
    if not np.array_equal(got, golden):
        b, row = (int(v) for v in np.argwhere(got != golden)[0])
        raise Mismatch(f"RTL differs from the golden model: input {b}, row {row} (PE "
                       f"{row % m.config.n_pe}): golden {golden[b, row]}, RTL {got[b, row]}")
    return got


# --- reproducers -----------------------------------------------------------------------------------

def _layer_dict(layer: QuantizedLayer) -> dict:
    return {"index": layer.index.tolist(), "codebook": layer.codebook.tolist(), "bias": layer.bias.tolist(),
            "shift": int(layer.shift), "relu": bool(layer.relu), "name": layer.name}


def _layers_of(dicts) -> QuantizedNetwork:
    layers = tuple(QuantizedLayer(index=np.asarray(d["index"], dtype=np.uint8).reshape(len(d["bias"]), -1),
                                  codebook=np.asarray(d["codebook"], dtype=np.int64),
                                  bias=np.asarray(d["bias"], dtype=np.int64), shift=d["shift"], relu=d["relu"],
                                  name=d.get("name", ""))
                   for d in dicts)
    return QuantizedNetwork(layers=layers, input_frac_bits=0)


def network_to_json(net: QuantizedNetwork) -> str:
    """An integer network as JSON text (per layer: codebook indices, codebook, biases, shift, ReLU)."""
    return json.dumps({"layers": [_layer_dict(layer) for layer in net.layers]}, indent=1) + "\n"


def network_from_json(text: str) -> QuantizedNetwork:
    """The network of :func:`network_to_json`."""
    return _layers_of(json.loads(text)["layers"])


def save_reproducer(m: Materialised, config_name: str, directory, *, error: str = "") -> Path:
    """Write the case as a self-contained JSON file named after its content; returns its path."""
    body = {"config_name": config_name, "config": m.config.to_dict(),
            "layers": [_layer_dict(layer) for layer in m.net.layers], "x": m.x.tolist(),
            "p_ready": m.p_ready, "p_idle": m.p_idle, "seed": m.seed, "error": error}
    text = json.dumps(body, sort_keys=True)
    path = Path(directory) / f"{config_name}-{hashlib.sha256(text.encode()).hexdigest()[:10]}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    return path


def load_reproducer(path, directory) -> tuple[str, Materialised]:
    """``(config_name, Materialised)`` of a saved reproducer, its images written to ``directory``."""
    body = json.loads(Path(path).read_text())
    config = EIEConfig.from_dict(body["config"])
    net = _layers_of(body["layers"])
    images = load_images(write_images(net, config, directory))
    return body["config_name"], Materialised(config, net, images, np.asarray(body["x"], dtype=np.int64),
                                             body["p_ready"], body["p_idle"], body["seed"])


