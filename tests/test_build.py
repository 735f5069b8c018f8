"""`eie build`: every way it refuses, and one real build (iCEBreaker) that places, routes and packs."""

import json
import re

import pytest
from click.testing import CliRunner

from eie import build as fpga
from eie.cli import main
from eie.hw.board import uart_divisor
from eie.spec.errors import ConfigError


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.mark.parametrize("args, message", [
    (["--board", "de0"], r"^Error: unknown board 'de0'; known boards: icebreaker, "),
    (["--board", "icebreaker", "--pes", "8"], r"^Error: 8 PEs do not fit the device: block RAM needs \d+ but the "
                                              r"device has 30; .*LUT4 needs [\d,]+ but the device has 4,752"),
    (["--board", "icebreaker", "--freq", "400"], r"^Error: iCE40 PLL output must be 16\.\.275 MHz, not 400$"),
    (["--board", "ulx3s-85f", "--baud", "50000000"], r"^Error: a 50 MHz clock cannot carry 50,000,000 baud"),
])
def test_bad_builds_fail_with_one_line_and_write_nothing(tmp_path, args, message):
    code, out = run("build", "--out", tmp_path / "bit", *args)
    assert code == 1, out
    assert len(out.strip().splitlines()) == 1 and re.search(message, out.strip()), out
    assert not (tmp_path / "bit").exists()


def test_a_missing_tool_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(fpga.TOOLS, "ice40", {"YOSYS": "yowasp-nonexistent-tool"})
    monkeypatch.setitem(fpga.PACKAGES, "yowasp-nonexistent-tool", "yowasp-nonexistent")
    code, out = run("build", "--board", "icebreaker", "--pes", "1", "--out", tmp_path / "bit")
    assert code == 1 and re.search(r"^Error: yowasp-nonexistent-tool is not installed; run `make test` once .* or "
                                    r"pip install yowasp-nonexistent$", out.strip()), out


@pytest.mark.parametrize("clock_hz, baud, divisor", [(150e6, 3_000_000, 50), (24e6, 1_000_000, 24),
                                                     (48e6, 115200, 417)])
def test_uart_divisor(clock_hz, baud, divisor):
    assert uart_divisor(clock_hz, baud) == divisor


def test_a_baud_rate_the_clock_cannot_hit_closely_is_refused():
    with pytest.raises(ConfigError, match=r"^3,000,000 baud is 3\.3% off at 10 MHz \(divisor 3\)|at least 4 clocks"):
        uart_divisor(10e6, 3_000_000)
    with pytest.raises(ConfigError, match=r"^1,000,000 baud is 5\.0% off at 4\.2 MHz \(divisor 4\)"):
        uart_divisor(4.2e6, 1_000_000)


def test_read_report_reduces_nextpnr_json(tmp_path):
    a, b, c = {"cell": "a", "port": "Q"}, {"cell": "b", "port": "I0"}, {"cell": "c", "port": "D"}
    raw = {"fmax": {"clk": {"achieved": 97.5, "constraint": 24.0}},
           "utilization": {"ICESTORM_LC": {"used": 3000, "available": 5280}, "SB_IO": {"used": 0, "available": 39}},
           "critical_paths": [{"from": "clk", "to": "clk", "path": [
               {"type": "clk-to-q", "delay": 0.5, "from": a, "to": b},
               {"type": "routing", "delay": 2.0, "from": a, "to": b},
               {"type": "logic", "delay": 1.0, "from": b, "to": c}]}]}
    (tmp_path / "r.json").write_text(json.dumps(raw))
    report = fpga.read_report(tmp_path / "r.json")
    assert report["clocks"] == {"clk": {"achieved_mhz": 97.5, "target_mhz": 24.0}}
    assert report["utilisation"] == {"ICESTORM_LC": {"used": 3000, "available": 5280}}
    path = report["critical_paths"][0]
    assert (path["delay_ns"], path["logic_ns"], path["routing_ns"]) == (3.5, 1.0, 2.0)
    assert (path["start"], path["end"]) == ("a.Q", "c.D")



YOSYS_LOG = """2.50. Printing statistics.

=== top ===

        8 ports
      315 cells
      193   $scopeinfo
       97   DP16KD
     9999   LUT4

=== design hierarchy ===

        +----------Count including submodules.
        |
      315 top

    38585 wires
    84972 wire bits
      315 cells
      193   $scopeinfo
       97   DP16KD
       16   MULT18X18D
    48021 submodules
     2044   CCU2C
    24011   LUT4
    15090   TRELLIS_FF

2.52. Executing CHECK pass (checking for obvious problems).
      999   LUT4
"""


def test_read_synthesis_takes_the_last_hierarchy_totals_of_primitives(tmp_path):
    (tmp_path / "top.rpt").write_text(YOSYS_LOG)
    assert fpga.read_synthesis(tmp_path / "top.rpt") == {"DP16KD": 97, "MULT18X18D": 16, "CCU2C": 2044,
                                                          "LUT4": 24011, "TRELLIS_FF": 15090}
    (tmp_path / "empty.rpt").write_text("ERROR: something failed before stat\n")
    assert fpga.read_synthesis(tmp_path / "empty.rpt") == {}


NEXTPNR_LOG = """Info: Packing IOs..
Info: Device utilisation:
Info: \t          TRELLIS_IO:       8/    365     2%
Info: \t              DP16KD:     385/    208   185%
Info: \t              ALU54B:       0/     78     0%
Info: \t        TRELLIS_COMB:  158296/  83640   189%

Info: Placed 9 cells based on constraints.
ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'DP16KD'
"""


def test_read_packing_takes_nextpnrs_utilisation_before_placement(tmp_path):
    (tmp_path / "top.tim").write_text(NEXTPNR_LOG)
    assert fpga.read_packing(tmp_path / "top.tim") == {
        "TRELLIS_IO": {"used": 8, "available": 365}, "DP16KD": {"used": 385, "available": 208},
        "TRELLIS_COMB": {"used": 158296, "available": 83640}}
    (tmp_path / "none.tim").write_text("ERROR: no design\n")
    assert fpga.read_packing(tmp_path / "none.tim") == {}

@pytest.mark.synth
def test_a_small_configuration_places_routes_and_packs(tmp_path):
    """The whole flow on a real board file, so that it cannot rot: 1 PE on the ULX3S 12F."""
    code, out = run("build", "--board", "ulx3s-12f", "--out", tmp_path / "bit", "--pes", 1, "--mat-depth", 256,
                    "--ptr-depth", 256, "--bias-depth", 64, "--max-rows-per-pe", 64, "--max-layers", 4,
                    "--freq", 50, "--json")
    assert code == 0, out
    report = json.loads(out[out.index("{"):])
    assert (tmp_path / "bit" / "top.bit").stat().st_size > 100_000
    assert report["clock"]["met"] and report["clock"]["achieved_mhz"] >= 50
    assert report["utilisation"]["MULT18X18D"]["used"] == 1
    assert report["utilisation"]["DP16KD"]["used"] >= 4
    assert report["critical_paths"] and report["critical_paths"][0]["end"]
    assert (tmp_path / "bit" / "build.txt").read_text().startswith("board       ulx3s-12f")
