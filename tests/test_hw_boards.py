"""hw.boards and hw.fit: the constraints files, and sizing a configuration for a device."""

import re

import pytest

from eie.hw import boards
from eie.hw.boards import Device, board_names, load_board
from eie.hw.fit import bram_blocks, memories, plan, size_for_device
from eie.spec.config import EIEConfig
from eie.spec.errors import ConfigError, FitError

DIGITS = [(64, 300), (300, 100), (100, 10)]


def test_every_board_file_loads_and_names_an_amaranth_boards_platform():
    assert {"ulx3s-85f", "ulx3s-45f", "ulx3s-25f", "ulx3s-12f", "icebreaker"} <= set(board_names())
    for name in board_names():
        board = load_board(name)
        platform = board.platform_class()
        assert board.clock_mhz > 0 and board.baud > 0
        assert any(r.name == board.uart for r in platform.resources), name
        assert platform.default_clk, name


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"^unknown board 'de0'; known boards: icebreaker, ulx3s-12f, .* \(add "
                                          r"constraints/de0\.toml for another amaranth-boards board\)$"):
        load_board("de0")


@pytest.mark.parametrize("text, message", [
    ("[board\n", r"^bad\.toml is not valid TOML"),
    ("[board]\nplatform = 'x:y'\n", r"^bad\.toml: missing section \[clock\]$"),
    ("[board]\nplatform='x:y'\n[clock]\ntarget_mhz=10\n[uart]\nresource='uart'\nbaud=9600\n[device]\nfamily='xc7'\n",
     r"^bad\.toml \[device\]: family must be one of ecp5, ice40, not 'xc7'$"),
    ("[board]\nplatform='x:y'\n[clock]\ntarget_mhz='fast'\n[uart]\nresource='uart'\nbaud=9600\n[device]\n",
     r"^bad\.toml \[device\]: missing key 'family'$"),
    ("[board]\nplatform='x:y'\n[clock]\ntarget_mhz=10\n[uart]\nresource='uart'\nbaud=9600\n[device]\nfamily='ecp5'\n"
     "lut4=100\nff=100\nbram=4\ndsp=1\nbram_utilisation=1.5\n",
     r"^bad\.toml \[device\]: bram_utilisation must be in \(0, 1\], not 1\.5$"),
])
def test_malformed_board_files_are_named(tmp_path, monkeypatch, text, message):
    (tmp_path / "bad.toml").write_text(text)
    monkeypatch.setattr(boards, "_constraints_dir", lambda: tmp_path)
    with pytest.raises(ConfigError, match=message):
        load_board("bad")


def test_a_platform_that_cannot_be_imported_is_named(tmp_path, monkeypatch):
    good = (boards._constraints_dir() / "icebreaker.toml").read_text()
    (tmp_path / "odd.toml").write_text(good.replace("amaranth_boards.icebreaker:ICEBreakerPlatform",
                                                    "amaranth_boards.nope:Nothing"))
    monkeypatch.setattr(boards, "_constraints_dir", lambda: tmp_path)
    with pytest.raises(ConfigError, match=r"^odd\.toml: platform amaranth_boards\.nope:Nothing cannot be imported"):
        load_board("odd").platform_class()


@pytest.mark.parametrize("depth, width, family, blocks", [
    (2048, 64, "ecp5", 8),      # 512x36 pairs or 1024x18 quads: 8 either way
    (1024, 16, "ecp5", 1),
    (1024, 40, "ecp5", 3),      # three 1024x18
    (16, 40, "ecp5", 0),        # distributed RAM
    (256, 16, "ice40", 1),
    (512, 40, "ice40", 5),      # five 512x8
    (300, 16, "ice40", 2),
])
def test_block_ram_count_takes_the_cheapest_aspect(depth, width, family, blocks):
    assert bram_blocks(depth, width, family) == blocks


def test_the_plan_names_every_resource_that_does_not_fit():
    tiny = Device(family="ecp5", lut4=2000, ff=2000, bram=4, dsp=2)
    result = plan(EIEConfig(n_pe=4), tiny)
    assert not result.fits
    with pytest.raises(FitError, match=r"^4 PEs do not fit the device: block RAM needs \d+ but the device has 4; "
                                       r"multipliers needs 4 but the device has 2; LUT4 needs [\d,]+ but the device "
                                       r"has 1,500 \(75% of 2,000; the rest is routing headroom\); use fewer PEs"):
        result.check()


@pytest.mark.parametrize("name", ["ulx3s-85f", "ulx3s-12f", "icebreaker"])
@pytest.mark.parametrize("shape", [None, DIGITS], ids=["generic", "digits"])
def test_sizing_gives_the_most_pes_that_fit(name, shape):
    device = load_board(name).device
    config = size_for_device(device, shape=shape)
    assert plan(config, device).fits
    if config.n_pe < min(device.dsp, device.bram):
        with pytest.raises(FitError):
            size_for_device(device, shape=shape, n_pe=config.n_pe + 1)


@pytest.mark.parametrize("name", ["ulx3s-85f", "ulx3s-25f", "icebreaker"])
def test_sizing_fills_no_more_block_ram_than_the_budget(name):
    device = load_board(name).device
    for shape in (None, DIGITS):
        config = size_for_device(device, shape=shape)
        used = sum(bram_blocks(m.depth, m.width, device.family) * m.copies for m in memories(config))
        assert used <= device.bram_budget, (shape, used, device.bram_budget)
    half = Device(family="ecp5", lut4=83640, ff=83640, bram=208, dsp=156, utilisation=0.5, bram_utilisation=0.5)
    whole = Device(family="ecp5", lut4=83640, ff=83640, bram=208, dsp=156, utilisation=0.5)
    assert half.bram_budget == 104
    n = size_for_device(half, shape=DIGITS).n_pe
    deep = size_for_device(whole, shape=DIGITS, n_pe=n)
    assert size_for_device(half, shape=DIGITS, n_pe=n).mat_depth < deep.mat_depth


def test_sizing_for_a_network_holds_its_layers():
    device = load_board("ulx3s-85f").device
    config = size_for_device(device, shape=DIGITS, n_pe=7)
    assert config.max_rows_per_pe * 7 >= 300
    assert config.bias_depth >= sum(-(-n_out // 7) for _, n_out in DIGITS)
    assert config.ptr_depth >= sum(n_in + 1 for n_in, _ in DIGITS)
    assert config.mat_depth * config.entries_per_word < 2 ** config.ptr_bits
    names = [m.name for m in memories(config)]
    assert "sparse matrix" in names and len(names) == len(set(names))


def test_a_device_too_small_for_one_pe_is_refused():
    with pytest.raises(FitError, match=re.escape("no PE count leaves block RAM for the sparse matrix on this device "
                                                 "(2 block RAMs)")):
        size_for_device(Device(family="ice40", lut4=5000, ff=5000, bram=2, dsp=8))
