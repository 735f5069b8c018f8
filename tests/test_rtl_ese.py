"""The generated ESE array on Verilator (cocotb): random LSTMs over whole sequences, bit-exact.

Every configuration runs one simulation that loads a suite of random LSTMs one after the other
(odd hidden sizes, PE counts that do not divide them, projections, heads of 0 to 3 layers, last-step
and every-step outputs, empty and dense matrices, extreme values that saturate the sigmoid and tanh
tables), each with sequences of one step and long ones and an all-zero sequence, under output
back-pressure and idle input cycles; the scoreboard checks every output against the golden model.
The suite first checks that it exercises every feature it is named after. One Verilator build per
configuration (the 8-PE one also runs the digits LSTM, ``tests/test_rtl_digits_lstm.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from eie.lstm_flow import digits_lstm_config
from eie.sim.lstm import run_lstm_golden
from eie.sim.random_lstm import random_lstm, random_sequences
from eie.spec.ese import ESEConfig, units_per_pe
from eie.spec.ese_image import load_lstm_images, write_lstm_images
from eie.tb.ese_run import simulate_lstm, verify_lstm, verify_lstm_suite
from eie.tb.runner import CocotbFailure

pytestmark = pytest.mark.rtl


def _config(n_pe, queue_depth, **changes):
    params = dict(n_pe=n_pe, queue_depth=queue_depth, max_rows_per_pe=32, mat_depth=256, ptr_depth=256,
                  bias_depth=128, act_depth=256, max_layers=6)
    params.update(changes)
    return ESEConfig(**params)


CONFIGS = {
    # One PE, 2-bit relative indices (zero runs over 3 rows need padding entries).
    "pe1_q2_idx2": _config(1, 2, index_bits=2, max_rows_per_pe=64, mat_depth=1024, bias_depth=256, act_depth=512),
    # Three PEs (no hidden size below is a multiple), 1-deep queues, 3 entries per word, a 12-bit
    # datapath with 8-bit tables and 3-bit weight indices.
    "pe3_q1_narrow": _config(3, 1, index_bits=3, entries_per_word=3, act_bits=12, acc_bits=32, max_shift=20,
                             nl_bits=8, weight_bits=3, mat_depth=512),
    # Eight PEs, 8-deep queues: the digits LSTM's array (make sim and tests/test_rtl_digits_lstm.py).
    "pe8_digits": digits_lstm_config(),
}

# (hidden, inputs, proj, head, every_step, density, extreme, steps)
SUITE = [
    (7, 5, 0, (4,), False, 0.3, False, (1, 9)),
    (11, 3, 4, (6, 3), False, 0.25, False, (5,)),
    (5, 1, 0, (5, 7, 2), True, 0.4, True, (4,)),
    (9, 6, 0, (), False, 0.2, False, (60,)),
    (1, 2, 0, (3,), True, 1.0, False, (3,)),
    (13, 4, 3, (), True, 0.15, True, (6,)),
    (6, 8, 0, (2,), False, 0.0001, False, (2,)),
    (10, 2, 0, (4,), False, 0.05, False, (12,)),
]


def lstm_suite(tmp_path, config, seed):
    """The random LSTMs of :data:`SUITE` for ``config`` with their sequences; returns ``(cases, features)``."""
    cases, seen = [], set()
    for k, (hidden, inputs, proj, head, every, density, extreme, steps) in enumerate(SUITE):
        net = random_lstm(seed + k, inputs, hidden, config, proj_size=proj, head=head, every_step=every,
                          density=density, extreme=extreme)
        images = load_lstm_images(write_lstm_images(net, config, tmp_path / f"lstm{k}"), expect_config=config)
        for n, length in enumerate(steps):
            x = random_sequences(seed + 10 * k + n, 3, length, inputs, config, extreme=extreme)
            x[-1] = 0                                                   # an all-zero sequence
            expected = run_lstm_golden(images, x).outputs
            cases.append((images, x, expected))
            seen |= {f"steps{length}"} if length in (1, 60) else set()
            if extreme and np.any(np.abs(run_lstm_golden(images, x).gates) >= config.act_max):
                seen.add("saturation")
        if hidden % 2:
            seen.add("odd_hidden")
        if hidden % config.n_pe:
            seen.add("pe_does_not_divide")
        seen |= {"proj"} if proj else set()
        seen |= {"every_step"} if every else set()
        seen.add(f"head{len(head)}")
        entries = images.entries(0)
        if np.any((entries & ((1 << config.weight_bits) - 1)) == 0) and units_per_pe(hidden, config.n_pe) * 4 > \
                config.max_run + 1:
            seen.add("padding")
    return cases, seen


WANTED = {"steps1", "steps60", "saturation", "odd_hidden", "pe_does_not_divide", "proj", "every_step", "head0",
          "head1", "head2", "head3"}


@pytest.mark.parametrize("config_name", list(CONFIGS))
def test_random_lstms_are_bit_exact(tmp_path, config_name):
    config = CONFIGS[config_name]
    cases, seen = lstm_suite(tmp_path, config, seed=3 * config.n_pe)
    wanted = WANTED | ({"padding"} if config.index_bits == 2 else set())
    if config.n_pe == 1:
        wanted.discard("pe_does_not_divide")
    missing = wanted - seen
    assert not missing, f"the suite does not exercise {sorted(missing)}; change it"
    results = verify_lstm_suite(cases, config=config, seed=config.n_pe, backpressure="random:0.6", p_idle=0.1)
    for (_, x, expected), result in zip(cases, results, strict=True):
        np.testing.assert_array_equal(result.outputs, expected)
        assert result.cycles.shape == (x.shape[0],)
        assert all(set(p) == set(range(x.shape[1])) for p in result.phases), "a step left no cycles"


def test_the_overlap_saves_cycles_and_the_serial_schedule_is_exact(tmp_path):
    config = CONFIGS["pe3_q1_narrow"]
    net = random_lstm(1, 6, 9, config, head=(4,), density=0.3)
    images = load_lstm_images(write_lstm_images(net, config, tmp_path / "lstm"))
    x = random_sequences(2, 4, 10, 6, config, density=1.0)
    overlapped = simulate_lstm(images, x)
    serial = verify_lstm(images, x, overlap=False)
    np.testing.assert_array_equal(overlapped.outputs, run_lstm_golden(images, x).outputs)
    np.testing.assert_array_equal(serial.outputs, overlapped.outputs)
    assert np.all(serial.cycles > overlapped.cycles)
    # Overlapped: only step 0 has an input-products phase of its own.
    assert all("x" in p[0] and all("x" not in p[t] for t in range(1, 10)) for p in overlapped.phases)
    assert all(all("x" in p[t] for t in range(10)) for p in serial.phases)


def test_injected_fault_fails(tmp_path):
    """The deliberate-fault switch must make the scoreboard fail the run."""
    config = CONFIGS["pe3_q1_narrow"]
    net = random_lstm(4, 3, 7, config, head=(6,))
    images = load_lstm_images(write_lstm_images(net, config, tmp_path / "lstm"))
    x = random_sequences(5, 2, 3, 3, config)
    with pytest.raises(CocotbFailure, match=r"MISMATCH sequence 0, layer 2, row 3 \(PE 0, local row 1\): expected .* "
                                            r"\[deliberate fault injected"):
        verify_lstm(images, x, config=config, inject_fault=True)
