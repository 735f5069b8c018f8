# amaranth: UnusedElaboratable=no
"""hw.pll: the divider search equals the open tools' calculators (yowasp-ecppll, yowasp-icepll)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eie.hw.pll import PLL, PllError, ecp5_pll_params, ice40_pll_params


def _tool(name: str) -> str:
    exe = shutil.which(name) or str(Path(sys.executable).with_name(name))
    assert Path(exe).exists(), f"{name} is missing; `make test` installs it from pyproject.toml"
    return exe


@pytest.mark.parametrize("f_in, f_out", [(25, 150), (25, 100), (25, 48), (25, 133.33), (25, 62.5), (100, 75)])
def test_ecp5_dividers_equal_ecppll(tmp_path, f_in, f_out):
    out = subprocess.run([_tool("yowasp-ecppll"), "-i", str(f_in), "-o", str(f_out), "-f", "pll.v"], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    verilog = (tmp_path / "pll.v").read_text()
    tool = {k: int(re.search(rf"\.{k}\((\d+)\)", verilog).group(1))
            for k in ("CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV", "CLKOP_CPHASE")}
    ours = ecp5_pll_params(f_in, f_out)
    assert {k: ours.params[k] for k in tool} == tool
    assert ours.f_out == pytest.approx(float(re.search(r"clkout0 frequency: ([\d.]+) MHz", out).group(1)), abs=1e-3)


@pytest.mark.parametrize("f_in, f_out", [(12, 48), (12, 24), (12, 60), (12, 100), (25, 66)])
def test_ice40_dividers_equal_icepll(tmp_path, f_in, f_out):
    subprocess.run([_tool("yowasp-icepll"), "-i", str(f_in), "-o", str(f_out), "-m", "-f", "pll.v"], cwd=tmp_path,
                   capture_output=True, text=True, check=True)
    verilog = (tmp_path / "pll.v").read_text()
    tool = {k: int(re.search(rf"{k} = +(\d+)", verilog).group(1)) for k in ("DIVR", "DIVF", "DIVQ")}
    achieved = float(re.search(r"Achieved output frequency: +([\d.]+) MHz", verilog).group(1))
    ours = ice40_pll_params(f_in, f_out)
    assert {k: ours.params[k] for k in tool} == tool
    assert ours.f_out == pytest.approx(achieved, abs=1e-3)


@pytest.mark.parametrize("make, f_in, f_out, message", [
    (ecp5_pll_params, 5, 100, r"^ECP5 PLL input must be 8\.\.400 MHz, not 5$"),
    (ecp5_pll_params, 25, 500, r"^ECP5 PLL output must be 10\.\.400 MHz, not 500$"),
    (ice40_pll_params, 12, 300, r"^iCE40 PLL output must be 16\.\.275 MHz, not 300$"),
])
def test_out_of_range_frequencies_are_refused(make, f_in, f_out, message):
    with pytest.raises(PllError, match=message):
        make(f_in, f_out)


@pytest.mark.parametrize("setting, primitive", [(ecp5_pll_params(25, 150), "EHXPLLL"),
                                              (ice40_pll_params(12, 48), "SB_PLL40_CORE")])
def test_the_pll_component_instantiates_the_primitive(setting, primitive):
    from amaranth.back import rtlil
    pll = PLL(setting)
    text = rtlil.convert(pll, ports=[pll.clk_in, pll.clk_out, pll.locked])
    assert f"cell \\{primitive}" in text
    for name, value in setting.params.items():
        assert f"parameter \\{name} {value}" in text, name


def test_the_pll_takes_a_setting():
    with pytest.raises(TypeError, match=r"^setting must be PllParams, not dict$"):
        PLL({})
