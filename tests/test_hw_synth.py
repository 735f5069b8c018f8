"""Synthesis smoke check: block RAMs and DSPs are inferred (YoWASP Yosys synth_ecp5)."""

import pytest

from eie.hw.synth import synth_ecp5
from eie.spec.config import EIEConfig

pytestmark = pytest.mark.synth


def test_tiny_config_infers_bram_and_dsp(tmp_path):
    config = EIEConfig(n_pe=2, mat_depth=64, ptr_depth=64, max_rows_per_pe=32, bias_depth=32,
                       max_layers=2)
    cells = synth_ecp5(config, tmp_path / "synth")
    assert cells["DP16KD"] >= 1, cells
    assert cells["MULT18X18D"] >= config.n_pe, cells
    assert cells["LUT4"] > 0 and cells["TRELLIS_FF"] > 0, cells
