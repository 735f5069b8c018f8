"""The host-link top on Verilator, driven end to end by the host client through simulated UART pins.

One build of ``HostLinkTop`` (images loaded through the protocol) serves the end-to-end, error and
fault-injection runs; a second one has images baked in (bitstream mode) and an odd UART divisor.
The configuration is ``pe4_q2`` of ``test_rtl_accelerator.py``, so the plain accelerator build that
cross-checks the cycle counts is shared with it.
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine
from torch import nn

import eie
from eie.inputs import prepare_inputs
from eie.sim.golden import run_golden
from eie.sim.random_net import random_inputs, random_network
from eie.spec.config import EIEConfig
from eie.spec.emit import write_images
from eie.spec.image import load_images
from eie.tb.host_scenarios import CASES
from eie.tb.host_sim import run_host_link
from eie.tb.runner import CocotbFailure
from eie.tb.sim_run import simulate

pytestmark = pytest.mark.rtl

CONFIG = EIEConfig(n_pe=4, queue_depth=2, mat_depth=256, ptr_depth=256, max_rows_per_pe=32, bias_depth=64,
                   max_layers=4)
DIVISOR = 4


def _random_case(path, seed, shapes, **kw):
    net = random_network(seed, list(shapes), CONFIG, **kw)
    images = load_images(write_images(net, CONFIG, path), expect_config=CONFIG)
    x = random_inputs(seed + 1, 3, shapes[0], CONFIG, density=0.5, extreme=kw.get("extreme", False))
    x = np.concatenate([x, np.zeros((1, shapes[0]), dtype=np.int64)])
    return images, x, run_golden(images, x)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("host")
    two_layers = _random_case(root / "mlp2", 0, (24, 40, 10), density=0.25)
    three_layers = _random_case(root / "mlp3", 5, (30, 50, 20, 7), density=0.3, empty_cols=0.3, extreme=True)
    # Real images: a classifier trained on scikit-learn's wine data, compressed by the project's flow.
    xw, yw = load_wine(return_X_y=True)
    xw = ((xw - xw.mean(axis=0)) / xw.std(axis=0)).astype(np.float32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(torch.from_numpy(xw)), torch.from_numpy(yw)).backward()
        optimizer.step()
    wine = eie.compress_model(model, data=(xw, yw), config=CONFIG, density=0.4, allow_loss=True,
                              out=root / "wine")
    x_wine = prepare_inputs(wine.images, xw[::30]).x_int
    real = (wine.images, x_wine, run_golden(wine.images, x_wine))
    return {"mlp2": two_layers, "mlp3": three_layers, "wine": real}


def test_end_to_end_bit_exact_at_the_line_rate(cases):
    order = [cases["mlp2"], cases["wine"], cases["mlp3"]]
    report = run_host_link(order, "end_to_end", divisor=DIVISOR)
    for (images, x, _), fig in zip(order, report["cases"]):
        assert fig["inputs"] == len(x)
        # The load streams at the line rate: a character every 10 bit times, plus the two round
        # trips of LOAD_BEGIN and LOAD_END.
        line = fig["load_bytes"] * 10 * DIVISOR
        assert line <= fig["load_cycles"] <= line + 2000, fig
        # The device's compute cycles are the RTL testbench's (same configuration and accelerator):
        # both count from the last input's handshake to the first output. Layer 0's codebook copy
        # (2^weight_bits + 1 cycles from the first input) holds only the PEs' multiplies, so with
        # these networks' 13 or more inputs it is hidden on both sides, behind the line's slow
        # inputs and behind the testbench's back-to-back ones and the layer's start.
        assert images.n_in >= 13
        reference = simulate(images, x).layer_cycles.sum(axis=1)
        np.testing.assert_array_equal(fig["run_cycles"], reference)


def test_protocol_errors_leave_a_defined_state(cases):
    report = run_host_link([cases["mlp2"]], "protocol_errors", divisor=DIVISOR)
    assert report["cases"] == CASES


def test_the_scoreboard_catches_a_wrong_output(cases):
    with pytest.raises(CocotbFailure, match=r"MISMATCH input 0, layer 1, row 5 .*deliberate fault"):
        run_host_link([cases["mlp2"]], "end_to_end", divisor=DIVISOR, inject_fault=True)


def test_baked_images_need_no_load(cases):
    # Bitstream mode: the first image set is in the memories; the second is loaded over it.
    report = run_host_link([cases["wine"], cases["mlp3"]], "end_to_end", divisor=5, baked=True)
    assert report["cases"][0]["writes"] == 0 and report["cases"][1]["writes"] > 0
