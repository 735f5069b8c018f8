"""The built-in digits LSTM end to end: every test sequence through the ESE RTL, bit-exact."""

import numpy as np
import pytest

from eie.compress.digits_lstm import load_digit_sequences, train_default_lstm
from eie.compress.lstm import gate_mask, pe_balance
from eie.compress.lstm_io import read_lstm_model
from eie.compress.pipeline import make_options
from eie.lstm_flow import compress_lstm, digits_lstm_config, rtl_report, run_lstm_rtl

pytestmark = pytest.mark.rtl


@pytest.fixture(scope="module")
def model():
    return train_default_lstm(0, load_digit_sequences(0))


@pytest.fixture(scope="module")
def digits_lstm(model, tmp_path_factory):
    config = digits_lstm_config()
    # One density instead of the search of `make sim` (which chooses among several): 15% of every matrix.
    options = make_options(config, densities="0.15", balance=True)
    outcome = compress_lstm(model, "digits", config=config, options=options, budget=1.0,
                            out=tmp_path_factory.mktemp("digits-lstm") / "images")
    return outcome


def test_all_digits_test_sequences_are_bit_exact_and_meet_the_targets(digits_lstm):
    outcome = digits_lstm
    xq = outcome.test_inputs
    assert xq.shape == (450, 8, 8)
    run = run_lstm_rtl(outcome.images, xq)
    assert run.bit_exact, f"{run.mismatches.shape[0]} sequences differ from the golden model"
    labels = outcome.prepared.dataset.y_test.numpy()
    assert 100.0 * np.mean(run.outputs.argmax(axis=1) == labels) == pytest.approx(outcome.golden_score)
    report = outcome.report
    assert report["gate_compression_ratio"] >= 15 and report["loss_points"] <= 1.0      # ESE's targets
    rtl = rtl_report(outcome.images, run)
    assert rtl["ideal_over_cycles"] > 0.8 and rtl["utilisation"]["gate_balance"] > 0.95
    assert [s["step"] for s in rtl["per_step"]] == list(range(8))


def test_load_balance_aware_pruning_balances_the_digits_lstm_over_8_pes(model):
    spec = read_lstm_model(model)
    n_keep = int(0.15 * spec.w_gates.size)
    plain = gate_mask(spec.w_gates, n_keep, input_size=8, hidden_size=64)
    balanced = gate_mask(spec.w_gates, n_keep, input_size=8, hidden_size=64, n_pe=8)
    assert pe_balance(balanced, 64, 8) > 0.99 > pe_balance(plain, 64, 8)
