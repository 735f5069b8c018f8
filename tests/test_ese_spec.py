"""The ESE contract: configuration, the table non-linearities, the cell update, the gate-row layout."""

import math

import numpy as np
import pytest

from eie.spec.config import EIEConfig
from eie.spec.errors import ConfigError
from eie.spec.ese import (
    ESEConfig,
    check_lstm_fits,
    gate_row_order,
    gate_rows,
    lstm_cell,
    lstm_layout,
    nl_table_address,
    nonlinearity_rom,
    sigmoid_table,
    tanh_table,
)


@pytest.mark.parametrize("kw, match", [
    ({"act_depth": 0}, r"^act_depth must be >= 1, not 0$"),
    ({"nl_bits": 17}, r"^nl_bits must be in 2\.\.16, not 17$"),
    ({"act_bits": 6, "acc_bits": 24, "nl_bits": 4, "max_shift": 8}, r"^act_bits must be in 8\.\.18, not 6$"),
    ({"max_rows_per_pe": 3}, r"^max_rows_per_pe must be >= 4 on an ESE array"),
    ({"act_depth": 1.5}, r"^act_depth must be an integer, not 1\.5$"),
])
def test_invalid_ese_configurations_are_rejected(kw, match):
    with pytest.raises((ConfigError, TypeError), match=match):
        ESEConfig(**kw)


def test_ese_and_eie_configurations_never_share_a_hash():
    eie = EIEConfig(n_pe=8)
    ese = ESEConfig(**eie.to_dict())
    assert ese.config_hash() != eie.config_hash()
    assert ese.config_hash() == ESEConfig.from_dict(ese.to_dict()).config_hash()
    assert ese.config_hash() != ese.replace(nl_bits=9).config_hash()
    assert ese.config_hash() == ese.replace(queue_depth=2).config_hash()      # timing only
    with pytest.raises(ConfigError, match=r"unknown hardware configuration key\(s\) act_depth, nl_bits"):
        EIEConfig.from_dict(ese.to_dict())


@pytest.mark.parametrize("act_bits, nl_bits", [(16, 10), (16, 16), (8, 6), (12, 12)])
def test_tables_follow_the_functions_within_half_a_step(act_bits, nl_bits):
    f_g, f_n = act_bits - 4, act_bits - 2
    sig, tanh = sigmoid_table(act_bits, nl_bits), tanh_table(act_bits, nl_bits)
    y = np.arange(-(1 << (act_bits - 1)), 1 << (act_bits - 1), 1 << max(0, act_bits - 12))
    addr = nl_table_address(y, act_bits, nl_bits)
    x = y / 2 ** f_g
    step = 2.0 ** (act_bits - nl_bits - f_g)
    lsb = 2.0 ** -f_n
    assert np.all(np.abs(sig[addr] / 2 ** f_n - 1 / (1 + np.exp(-x))) <= 0.25 * step + lsb)
    assert np.all(np.abs(tanh[addr] / 2 ** f_n - np.tanh(x)) <= step + lsb)
    # Monotone in the signed input, and the expected symmetries (to the rounding of one entry).
    order = np.argsort((np.arange(1 << nl_bits) + (1 << (nl_bits - 1))) % (1 << nl_bits))
    assert np.all(np.diff(sig[order]) >= 0) and np.all(np.diff(tanh[order]) >= 0)
    assert np.all(np.abs(sig[order] + sig[order][::-1] - (1 << f_n)) <= 1)
    assert np.all(np.abs(tanh[order] + tanh[order][::-1]) <= 1)
    assert sig.max() <= 1 << f_n and tanh.max() <= (1 << f_n) and tanh.min() >= -(1 << f_n)
    rom = nonlinearity_rom(act_bits, nl_bits)
    assert np.array_equal(rom, np.concatenate([sig, tanh]))


def test_the_documented_table_entries():
    sig, tanh = sigmoid_table(16, 10), tanh_table(16, 10)
    assert sig[0] == math.floor(16384 / (1 + math.exp(-1 / 128)) + 0.5) == 8224     # x = +1/128
    assert tanh[0] == 128 and tanh[1023] == -128                                     # tanh(±1/128)
    assert sig[511] == 16378 and sig[512] == 6                                       # ±8 saturate


def test_cell_update_against_floats():
    rng = np.random.default_rng(0)
    a, t = 16, 10
    y = rng.integers(-20000, 20000, size=(4, 1000))
    c_prev = rng.integers(-16000, 16000, size=1000)
    c, m = lstm_cell(*y, c_prev, act_bits=a, nl_bits=t, h_shift=14)
    xs = y / 2 ** 12
    sig = 1 / (1 + np.exp(-xs))
    c_float = sig[1] * c_prev / 2 ** 12 + sig[0] * np.tanh(xs[2])
    m_float = sig[3] * np.tanh(np.clip(c_float, -8, 8))
    assert np.max(np.abs(c / 2 ** 12 - np.clip(c_float, -8, 8))) < 0.02
    assert np.max(np.abs(m / 2 ** 14 - m_float)) < 0.02
    # Saturation of the cell state at ±8 and of m at the activation range.
    c, _ = lstm_cell(*np.full((4, 1), 32767), np.array([32767]), act_bits=a, nl_bits=t, h_shift=14)
    assert c[0] == 32767
    _, m = lstm_cell(*np.full((4, 1), 32767), np.array([32767]), act_bits=a, nl_bits=t, h_shift=1)
    assert m[0] == 32767


@pytest.mark.parametrize("hidden, n_pe", [(7, 3), (64, 8), (5, 8), (1, 1), (9, 4)])
def test_gate_rows_give_each_pe_the_four_gates_of_its_units(hidden, n_pe):
    order = gate_row_order(hidden, n_pe)
    assert order.size == gate_rows(hidden, n_pe) and order.size % (4 * n_pe) == 0
    assert sorted(order[order >= 0]) == list(range(4 * hidden))          # every PyTorch row once
    for row, torch_row in enumerate(order):
        if torch_row < 0:
            continue
        q, k = divmod(int(torch_row), hidden)
        assert row % n_pe == k % n_pe                                    # unit k's PE
        assert (row // n_pe) == 4 * (k // n_pe) + q                     # local row 4u + q


def test_layout_places_every_vector_and_bounds_the_sequence():
    config = ESEConfig(n_pe=4, act_depth=100)
    layout = lstm_layout(6, 9, 5, [7, 3], config, config.act_depth)
    assert (layout.h_base, layout.m_base, layout.ping_base, layout.pong_base) == (0, 2, 5, 7)
    assert (layout.x_base, layout.x_stride, layout.max_steps) == (9, 2, 45)
    assert layout.head_source(0) == 0 and layout.head_dest(0) == 5 and layout.head_source(1) == 5
    assert layout.output_base(2) == 7 and layout.output_base(0) == 0


def test_check_lstm_fits_names_the_limit():
    from eie.sim.random_lstm import random_lstm
    config = ESEConfig(n_pe=2, max_rows_per_pe=8, act_depth=64)
    net = random_lstm(0, 3, 4, config)
    check_lstm_fits(net, config)
    with pytest.raises(ConfigError, match=r"^5 hidden units need 3 units \(12 gate rows\) per PE but max_rows_per_pe=8 "
                                          r"holds 2; raise max_rows_per_pe to 12 or n_pe to 3$"):
        check_lstm_fits(random_lstm(0, 3, 5, config.replace(max_rows_per_pe=12)), config)
    with pytest.raises(ConfigError, match=r"^an LSTM runs on an ESE array; give an ESEConfig, not EIEConfig$"):
        check_lstm_fits(net, EIEConfig(n_pe=2))
    with pytest.raises(ConfigError, match=r"cannot hold one step.*raise act_depth$"):
        check_lstm_fits(net, config.replace(act_depth=2))
