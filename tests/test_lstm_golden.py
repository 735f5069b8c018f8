"""The LSTM golden model against the naive Python-integer reference, and its yardsticks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eie.sim.lstm import check_sequences, float_lstm_from_images, reference_lstm, run_lstm_golden, step_work
from eie.sim.random_lstm import random_lstm, random_sequences
from eie.spec.errors import ImageError
from eie.spec.ese import ESEConfig
from eie.spec.ese_image import build_lstm_images, lstm_images_from_bytes

CONFIG = ESEConfig(n_pe=3, max_rows_per_pe=40, mat_depth=512, ptr_depth=256, bias_depth=128, act_depth=400,
                   max_layers=6)


@settings(max_examples=25)
@given(seed=st.integers(0, 2 ** 16), n_pe=st.integers(1, 8), hidden=st.integers(1, 9), inputs=st.integers(1, 5),
       proj=st.integers(0, 3), head=st.lists(st.integers(1, 6), max_size=2), steps=st.integers(1, 7),
       every_step=st.booleans(), extreme=st.booleans(), act_bits=st.sampled_from([16, 10]))
def test_golden_equals_the_naive_reference(seed, n_pe, hidden, inputs, proj, head, steps, every_step, extreme,
                                           act_bits):
    config = CONFIG.replace(n_pe=n_pe, act_bits=act_bits, acc_bits=max(2 * act_bits, 40), nl_bits=min(10, act_bits),
                            max_shift=min(31, max(2 * act_bits, 40) - 1))
    net = random_lstm(seed, inputs, hidden, config, proj_size=proj, head=tuple(head), every_step=every_step,
                      extreme=extreme)
    images = lstm_images_from_bytes(build_lstm_images(net, config))
    x = random_sequences(seed + 1, 3, steps, inputs, config, extreme=extreme)
    x[-1] = 0                                                   # an all-zero sequence
    trace = run_lstm_golden(images, x)
    for b in range(x.shape[0]):
        want = reference_lstm(net, x[b].tolist(), act_bits=act_bits, nl_bits=config.nl_bits)
        assert np.array_equal(trace.outputs[b], np.asarray(want)), f"sequence {b}, seed {seed}"
    assert trace.h.shape == (3, steps, net.recurrent_size) and trace.c.shape == (3, steps, hidden)


def test_saturating_extremes_reach_the_ends_of_the_tables():
    net = random_lstm(5, 4, 6, CONFIG, extreme=True, head=(3,))
    images = lstm_images_from_bytes(build_lstm_images(net, CONFIG))
    trace = run_lstm_golden(images, random_sequences(6, 4, 10, 4, CONFIG, extreme=True))
    assert np.any(trace.gates == CONFIG.act_max) and np.any(trace.gates == CONFIG.act_min)


def test_a_long_sequence_keeps_its_state():
    net = random_lstm(7, 3, 5, CONFIG)
    images = lstm_images_from_bytes(build_lstm_images(net, CONFIG))
    x = random_sequences(8, 1, 120, 3, CONFIG)
    trace = run_lstm_golden(images, x)
    want = reference_lstm(net, x[0].tolist(), act_bits=16, nl_bits=10)
    assert np.array_equal(trace.outputs[0], want)
    # The state carries over: the last output depends on the first step.
    x2 = x.copy()
    x2[0, 0] = 0 if x[0, 0].any() else 1000
    assert not np.array_equal(run_lstm_golden(images, x2).c[0, 1], trace.c[0, 1])


def test_inputs_are_checked():
    images = lstm_images_from_bytes(build_lstm_images(random_lstm(0, 3, 4, CONFIG), CONFIG))
    with pytest.raises(ValueError, match=r"^input sequences must have shape \(batch, steps, 3\), not \(2, 4\)$"):
        check_sequences(np.zeros((2, 4), dtype=np.int64), images)
    with pytest.raises(ValueError, match=r"^integer input activations expected"):
        check_sequences(np.zeros((2, 4, 3)), images)
    with pytest.raises(ValueError, match=r"must fit 16-bit signed"):
        check_sequences(np.full((1, 1, 3), 1 << 15), images)
    assert check_sequences(np.zeros((2, 3), dtype=np.int64), images).shape == (2, 1, 3)   # one step


def test_golden_refuses_eie_images(tmp_path):
    from eie.sim.random_net import random_network
    from eie.spec.config import EIEConfig
    from eie.spec.emit import build_images
    from eie.spec.image import images_from_bytes
    config = EIEConfig(n_pe=2)
    mlp = images_from_bytes(build_images(random_network(0, [3, 4], config), config))
    with pytest.raises(ImageError, match=r"^the LSTM golden model runs ese-images"):
        run_lstm_golden(mlp, np.zeros((1, 1, 3), dtype=np.int64))


def test_float_reference_needs_the_manifest_section():
    images = lstm_images_from_bytes(build_lstm_images(random_lstm(0, 3, 4, CONFIG), CONFIG))
    with pytest.raises(ImageError, match=r"^manifest.json has no float reference of the LSTM; re-run eie compress$"):
        float_lstm_from_images(images, np.zeros((1, 2, 3)))


def test_step_work_counts_the_macs_of_each_step():
    net = random_lstm(2, 4, 7, CONFIG, density=0.5)
    images = lstm_images_from_bytes(build_lstm_images(net, CONFIG))
    x = random_sequences(3, 2, 5, 4, CONFIG, density=1.0)
    trace = run_lstm_golden(images, x)
    work = step_work(images, x, trace)
    assert work.x_macs.shape == (5, 3) and work.rows == 4 * 3
    assert np.all(work.h_macs[0] == 0)                                   # h_{-1} = 0: no recurrent products
    dense_x = int((net.gates.index[:, :4] != 0).sum())
    assert work.x_macs.sum(axis=1)[0] == pytest.approx(dense_x)         # every input non-zero
    assert 0 < work.balance() <= 1 and np.all(work.ideal >= work.rows)
