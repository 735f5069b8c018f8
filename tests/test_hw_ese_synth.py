"""Synthesis smoke check of the ESE array: block RAMs and DSPs inferred (YoWASP Yosys synth_ecp5)."""

import pytest

from eie.hw.synth import synth_ecp5
from eie.spec.ese import ESEConfig

pytestmark = pytest.mark.synth


def test_tiny_ese_config_synthesises(tmp_path):
    config = ESEConfig(n_pe=2, mat_depth=64, ptr_depth=64, max_rows_per_pe=16, bias_depth=32, max_layers=3,
                       act_depth=64, nl_bits=8)
    cells = synth_ecp5(config, tmp_path / "synth")
    assert cells["DP16KD"] >= 1, cells
    assert cells["MULT18X18D"] >= 3 * config.n_pe, cells       # MACs and the element-wise products
    assert cells["LUT4"] > 0 and cells["TRELLIS_FF"] > 0, cells
