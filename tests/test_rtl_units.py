"""cocotb testbenches of single EIE units on Verilator (each unit converted to Verilog alone)."""

import json

import pytest

from eie.spec.config import EIEConfig
from eie.tb.runner import run_cocotb
from eie.tb.units import build_unit

pytestmark = pytest.mark.rtl

SMALL = EIEConfig(n_pe=4, ptr_depth=64, mat_depth=64, max_rows_per_pe=16, bias_depth=32,
                  max_layers=4)


def run_unit(component, name, module, **params):
    env = {"EIE_UNIT_PARAMS": json.dumps(params)}
    return run_cocotb(build_unit(component, name), module, extra_env=env)


@pytest.mark.parametrize("n_inputs", [1, 6, 64])
def test_lnzd(n_inputs):
    from eie.hw.lnzd import LeadingNonZeroDetector
    dut = LeadingNonZeroDetector(n_inputs=n_inputs, act_bits=16, index_width=9)
    run_unit(dut, f"lnzd{n_inputs}", "eie.tb.units.test_lnzd", n_inputs=n_inputs, act_bits=16,
             index_width=9, trials=300, seed=n_inputs)


@pytest.mark.parametrize("depth", [1, 2, 3, 8])
def test_activation_queue(depth):
    from eie.hw.activation_queue import ActivationQueue
    dut = ActivationQueue(depth=depth, act_bits=16, index_width=9)
    run_unit(dut, f"actq{depth}", "eie.tb.units.test_activation_queue", depth=depth, act_bits=16,
             index_width=9, cycles=3000, seed=depth)


def test_pointer_read():
    from eie.hw.pointer_read import PointerReadUnit
    run_unit(PointerReadUnit(config=SMALL), "ptr_read", "eie.tb.units.test_pointer_read",
             config=SMALL.to_dict(), jobs=800, seed=1)


@pytest.mark.parametrize("entries_per_word", [3, 8])
def test_sparse_matrix_read(entries_per_word):
    from eie.hw.sparse_matrix_read import SparseMatrixReadUnit
    config = SMALL.replace(entries_per_word=entries_per_word)
    run_unit(SparseMatrixReadUnit(config=config), f"spmat_read{entries_per_word}",
             "eie.tb.units.test_sparse_matrix_read", config=config.to_dict(), jobs=300, seed=4)


def test_arithmetic_unit():
    from eie.hw.arithmetic_unit import ArithmeticUnit
    run_unit(ArithmeticUnit(config=SMALL), "arith", "eie.tb.units.test_arithmetic_unit",
             config=SMALL.to_dict(), ops=4000, seed=2)


@pytest.mark.parametrize("act_bits, acc_bits, max_shift", [(16, 40, 31), (8, 16, 15)])
def test_requantize(act_bits, acc_bits, max_shift):
    from eie.hw.requantize import Requantizer
    config = SMALL.replace(act_bits=act_bits, acc_bits=acc_bits, max_shift=max_shift)
    run_unit(Requantizer(config=config), f"requant{act_bits}_{acc_bits}", "eie.tb.units.test_requantize",
             config=config.to_dict(), count=4000, seed=3)
