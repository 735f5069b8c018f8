"""The generated accelerator on Verilator (cocotb), every output against the golden model.

Parametrised over hardware configurations (PE counts 1, 3, 4, 8, 16, 64; activation-queue
depths 1, 2, 8; narrow and wide datapaths; 3 entries per word) and random networks that each
exercise one feature: several layers, dense matrices, empty columns, zero runs longer than the
relative index can encode (padding entries), extreme weights and activations, all-zero input
vectors, output back-pressure and idle input cycles. Every case first checks that its images
really contain the feature it is named after. One Verilator build per configuration (cached in
``build/verilator``) serves all of that configuration's cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from eie.hw.io_map import image_writes
from eie.sim.golden import run_golden
from eie.sim.random_net import random_inputs, random_network
from eie.spec.emit import write_images
from eie.spec.image import load_images
from eie.tb.regression import CONFIGS
from eie.tb.runner import CocotbFailure
from eie.tb.sim_run import simulate, verify, verify_suite

pytestmark = pytest.mark.rtl


@dataclass(frozen=True)
class Case:
    """A random network and its inputs; ``feature`` is checked on the images before the run."""

    shapes: tuple
    density: float = 0.25
    empty_cols: float = 0.0
    extreme: bool = False
    batch: int = 4
    input_density: float = 0.5
    backpressure: str = "none"
    idle: float = 0.0
    features: tuple = ()
    seed: int = 0
    net_kw: dict = field(default_factory=dict)


CASES = {
    "pe1_q8_idx2": {
        "mlp3": Case((24, 40, 32, 10), features=("layers3", "padding")),
        "dense": Case((20, 24, 12), density=1.0, features=("dense",)),
        "empty_cols": Case((30, 40, 16), density=0.3, empty_cols=0.4, features=("empty_cols",)),
        "extreme": Case((16, 24, 8), extreme=True, input_density=0.8, features=("saturation",)),
        "long_runs_bp": Case((32, 64, 16), density=0.04, backpressure="random:0.4", idle=0.3,
                             features=("padding",)),
    },
    "pe3_q1_epw3": {
        "mlp3": Case((25, 37, 19, 7), density=0.3, features=("layers3",)),
        "long_runs": Case((20, 90, 9), density=0.03, features=("padding", "empty_cols")),
    },
    "pe4_q2": {
        "bp_idle": Case((40, 60, 12), backpressure="random:0.3", idle=0.2, batch=5),
        "long_runs": Case((16, 120, 10), density=0.02, features=("padding",)),
        "extreme": Case((30, 50, 20), extreme=True, input_density=0.9, features=("saturation",)),
    },
    "pe8_q8_narrow": {
        "mlp3_extreme": Case((40, 100, 30, 12), extreme=True, features=("layers3", "saturation")),
        "dense_bp": Case((24, 40, 16), density=1.0, backpressure="random:0.5",
                         features=("dense",)),
    },
    "pe16_q2": {
        "mlp_bp": Case((64, 100, 20), density=0.2, backpressure="random:0.5", batch=3),
    },
    "pe64_q8": {
        "mlp3": Case((70, 200, 64, 10), density=0.15, batch=2, features=("layers3",)),
    },
}

MATRIX = [pytest.param(c, n, id=f"{c}-{n}") for c, cases in CASES.items() for n in cases]


def features_of(images) -> set:
    """Which of the named stimulus features the images contain."""
    cfg = images.config
    found = set()
    if len(images.layers) >= 3:
        found.add("layers3")
    for info in images.layers:
        counts = np.stack([np.diff(images.ptr[p][info.ptr_base:info.ptr_base + info.n_in + 1])
                           for p in range(cfg.n_pe)])
        if np.any(counts.sum(axis=0) == 0):
            found.add("empty_cols")
        entries = np.concatenate([images.entries(p)[images.ptr[p][info.ptr_base]:
                                                   images.ptr[p][info.ptr_base + info.n_in]]
                                  for p in range(cfg.n_pe)])
        v = entries & ((1 << cfg.weight_bits) - 1)
        if np.any(v == 0):
            found.add("padding")
    for d in images.manifest["layers"]:
        if d["nnz"] == d["n_in"] * d["n_out"]:
            found.add("dense")
    return found


def make_case(tmp_path, config, case: Case):
    net = random_network(case.seed, list(case.shapes), config, density=case.density,
                         empty_cols=case.empty_cols, extreme=case.extreme, **case.net_kw)
    images = load_images(write_images(net, config, tmp_path / "images"), expect_config=config)
    x = random_inputs(case.seed + 1, case.batch, case.shapes[0], config,
                      density=case.input_density, extreme=case.extreme)
    x = np.concatenate([x, np.zeros((1, case.shapes[0]), dtype=np.int64)])  # all-zero input
    return images, x


@pytest.mark.parametrize("config_name, case_name", MATRIX)
def test_bit_exact(tmp_path, config_name, case_name):
    config = CONFIGS[config_name]
    case = CASES[config_name][case_name]
    images, x = make_case(tmp_path, config, case)
    expected = run_golden(images, x)
    missing = set(case.features) - features_of(images)
    if "saturation" in case.features and np.any(np.abs(expected) == config.act_max):
        missing.discard("saturation")
    assert not missing, f"the case does not exercise {sorted(missing)}; change its parameters"
    result = verify(images, x, expected, config=config, seed=case.seed,
                    backpressure=case.backpressure, p_idle=case.idle)
    assert result.cycles.shape == (x.shape[0],)
    assert result.layer_cycles.shape == (x.shape[0], len(images.layers))
    output_phase = np.asarray(result.report["output_phase"])
    assert np.all(output_phase >= images.n_out - 1), "the outputs left faster than one per cycle"
    assert np.all(result.layer_cycles.sum(axis=1) + output_phase == result.cycles)
    assert np.all(result.layer_cycles > 0), "a layer took no cycles: the layer signal was missed"
    np.testing.assert_array_equal(result.outputs, expected)


def random_suite(tmp_path, config, seed, count):
    """``count`` random networks with random shapes (1-3 layers, widths 1..40, including
    layers narrower than the PE array), densities from empty to dense, and random inputs."""
    rng = np.random.default_rng(seed)
    cases, seen = [], set()
    width = min(40, config.max_width)
    for k in range(count):
        n_layers = int(rng.integers(1, 4))
        shapes = [int(rng.integers(1, width + 1)) for _ in range(n_layers + 1)]
        if k == 0:
            shapes = [1, 1]
        elif k == 1:
            shapes = [9, max(1, config.n_pe - 1)]
        density = float(rng.choice([0.0, 0.03, 0.2, 0.6, 1.0]))
        empty_cols = float(rng.choice([0.0, 0.3]))
        if k == 2:  # every PE's rows as long as possible: zero runs that need padding
            shapes, density = [8, config.max_width], 0.02
        elif k == 3:
            shapes, density, empty_cols = [12, 10], 1.0, 0.0
        extreme = bool(rng.random() < 0.3)
        net = random_network(int(rng.integers(1 << 30)), shapes, config, density=density,
                             empty_cols=empty_cols, extreme=extreme)
        images = load_images(write_images(net, config, tmp_path / f"net{k}"))
        x = random_inputs(int(rng.integers(1 << 30)), int(rng.integers(1, 4)), shapes[0], config,
                          density=float(rng.choice([0.0, 0.5, 1.0])), extreme=extreme)
        cases.append((images, x, run_golden(images, x)))
        seen |= features_of(images)
        if min(shapes[1:]) < config.n_pe:
            seen.add("idle_pes")
        if density == 0.0:
            seen.add("no_weights")
    return cases, seen


@pytest.mark.parametrize("config_name", ["pe3_q1_epw3", "pe4_q2", "pe8_q8_narrow"])
def test_random_networks_back_to_back(tmp_path, config_name):
    """Many random networks loaded one after the other into one running accelerator."""
    config = CONFIGS[config_name]
    cases, seen = random_suite(tmp_path, config, seed=config.n_pe, count=16)
    wanted = {"empty_cols", "dense", "layers3", "idle_pes", "no_weights"}
    if config.max_rows_per_pe > config.max_run + 1:  # else no zero run can need padding
        wanted.add("padding")
    missing = wanted - seen
    assert not missing, f"the suite does not exercise {sorted(missing)}; change its seed"
    results = verify_suite(cases, config=config, seed=7, backpressure="random:0.7", p_idle=0.1)
    for (_, _, expected), result in zip(cases, results, strict=True):
        np.testing.assert_array_equal(result.outputs, expected)


def test_injected_fault_fails(tmp_path):
    """The deliberate-fault switch must make the scoreboard fail the run."""
    config = CONFIGS["pe1_q8_idx2"]
    images, x = make_case(tmp_path, config, Case((12, 16, 8), batch=2))
    with pytest.raises(CocotbFailure, match=r"MISMATCH input 0, layer 1, row 4 \(PE 0, local row "
                                            r"4\): expected .* \[deliberate fault injected"):
        verify(images, x, config=config, inject_fault=True)


def test_simulate_returns_golden_outputs(tmp_path):
    """Record mode (``eie sim``): outputs and cycles come back without any checking in the TB."""
    config = CONFIGS["pe1_q8_idx2"]
    images, x = make_case(tmp_path, config, Case((12, 16, 8), batch=2, seed=3))
    y, cycles, layer_cycles, report = simulate(images.path, x, config=config)
    np.testing.assert_array_equal(y, run_golden(images, x))
    assert cycles.shape == (3,) and np.all(cycles > 0)
    assert report["cfg_writes"] > 0


@pytest.mark.parametrize("config_name", ["pe1_q8_idx2", "pe4_q2"])
def test_preloaded_memories_match_streamed(tmp_path, config_name):
    """Filling the PEs' memories when the simulation starts (``+eie_preload``, the default of a
    single image set) and streaming every word through ``cfg`` give the same outputs and the
    same cycles; only the codebooks, the layer table and the layer count go through ``cfg``."""
    config = CONFIGS[config_name]
    images, x = make_case(tmp_path, config, Case((30, 50, 20), density=0.3, batch=3, seed=5))
    preloaded = simulate(images, x, config=config)
    streamed = simulate(images, x, config=config, preload=False)
    expected = run_golden(images, x)
    np.testing.assert_array_equal(preloaded.outputs, expected)
    np.testing.assert_array_equal(streamed.outputs, expected)
    np.testing.assert_array_equal(preloaded.cycles, streamed.cycles)
    np.testing.assert_array_equal(preloaded.layer_cycles, streamed.layer_cycles)
    assert preloaded.report["cfg_writes"] == len(image_writes(images, pe_memories=False))
    assert streamed.report["cfg_writes"] == len(image_writes(images))
