# amaranth: UnusedElaboratable=no
"""The cfg address map, the payload packing and the Verilog top level."""

import re

import pytest

from eie.hw.generate import (
    PRELOAD_FILES,
    PRELOAD_PLUSARG,
    add_preload,
    generate_verilog,
    register_reset,
)
from eie.hw.io_map import LAYER_STRIDE, LayerField, Space, addr_width, cfg_fields, data_width, image_writes, pack_cfg
from eie.sim.random_net import random_network
from eie.spec.config import EIEConfig
from eie.spec.emit import write_images
from eie.spec.image import load_images

CONFIG = EIEConfig(n_pe=3, weight_bits=3, index_bits=2, act_bits=8, acc_bits=24,
                   entries_per_word=4, ptr_bits=8, mat_depth=32, ptr_depth=32, max_rows_per_pe=4,
                   bias_depth=20, max_layers=2, max_shift=16)


def test_layout():
    aw, dw = addr_width(CONFIG), data_width(CONFIG)
    assert (aw, dw) == (5, 32)   # deepest space: 32 pointers / words
    assert cfg_fields(CONFIG) == {"space": (0, 3), "pe": (3, 8), "addr": (11, aw),
                                  "data": (11 + aw, dw)}
    assert Space.CONTROL == 5 and LayerField.RELU == 5
    assert pack_cfg(CONFIG, Space.LAYER, 2, 13, 0xdeadbeef) == (
        4 | 2 << 3 | 13 << 11 | 0xdeadbeef << (11 + aw))


@pytest.mark.parametrize("field, value, match", [
    ("pe", 256, r"^cfg pe 256 does not fit 8 unsigned bits$"),
    ("addr", 32, r"^cfg addr 32 does not fit 5 unsigned bits$"),
    ("data", -1, r"^cfg data -1 does not fit 32 unsigned bits$"),
])
def test_pack_rejects(field, value, match):
    args = {"space": Space.PTR, "pe": 0, "addr": 0, "data": 0, field: value}
    with pytest.raises(ValueError, match=match):
        pack_cfg(CONFIG, **args)


def test_image_writes(tmp_path):
    net = random_network(5, [10, 12, 7], CONFIG, density=0.3)
    images = load_images(write_images(net, CONFIG, tmp_path / "img"))
    writes = image_writes(images)
    by_space = {s: [w for w in writes if w[0] == s] for s in Space}
    assert len(by_space[Space.PTR]) == CONFIG.n_pe * (11 + 13)
    assert len(by_space[Space.BIAS]) == CONFIG.n_pe * (4 + 3)
    assert len(by_space[Space.CODEBOOK]) == 2 * CONFIG.codebook_size
    assert len(by_space[Space.LAYER]) == 2 * 6
    assert writes[-1] == (Space.CONTROL, 0, 0, 2)
    assert (Space.LAYER, 0, LAYER_STRIDE + LayerField.N_IN, 12) in writes
    for space, pe, addr, data in writes:
        pack_cfg(CONFIG, space, pe, addr, data)   # every write fits the payload
    negative = [b for b in images.bias[0] if b < 0][0]
    assert (Space.BIAS, 0, list(images.bias[0]).index(negative), negative + 2 ** 24) in writes


def test_verilog_ports_and_determinism():
    text = generate_verilog(CONFIG)
    assert text == generate_verilog(CONFIG)
    top = text[text.index("module eie_top"):]
    decl = re.findall(r"^  (input|output) (\[(\d+):0\] )?(\w+);", top[:top.index("endmodule")],
                      re.M)
    ports = {name: (direction, int(msb) + 1 if msb else 1) for direction, _, msb, name in decl}
    cfg_w = 3 + 8 + addr_width(CONFIG) + data_width(CONFIG)
    assert ports == {
        "clk": ("input", 1), "rst": ("input", 1),
        "cfg__valid": ("input", 1), "cfg__ready": ("output", 1), "cfg__payload": ("input", cfg_w),
        "i__valid": ("input", 1), "i__ready": ("output", 1), "i__payload": ("input", 8),
        "o__valid": ("output", 1), "o__ready": ("input", 1), "o__payload": ("output", 8),
        "busy": ("output", 1), "layer": ("output", 1), "done": ("output", 1),
    }
    with pytest.raises(ValueError, match=r"^name must be a Verilog identifier, not 'a b'$"):
        generate_verilog(CONFIG, name="a b")


def test_default_layout_matches_the_accelerator_docstring():
    assert cfg_fields(EIEConfig()) == {"space": (0, 3), "pe": (3, 8), "addr": (11, 11),
                                       "data": (22, 64)}


def test_image_writes_without_pe_memories(tmp_path):
    net = random_network(5, [10, 12, 7], CONFIG, density=0.3)
    images = load_images(write_images(net, CONFIG, tmp_path / "img"))
    rest = image_writes(images, pe_memories=False)
    assert rest == [w for w in image_writes(images) if w[0] not in (Space.PTR, Space.MAT, Space.BIAS)]
    assert {w[0] for w in rest} == {Space.CODEBOOK, Space.LAYER, Space.CONTROL}


def test_verilog_without_zero_initialisers(tmp_path):
    """``zero_init=False`` drops the all-zero memory initialisers and keeps the others."""
    assert generate_verilog(CONFIG).count("initial begin") > 0
    assert generate_verilog(CONFIG, zero_init=False).count("initial begin") == 0
    net = random_network(5, [10, 12, 7], CONFIG, density=0.3)
    images = load_images(write_images(net, CONFIG, tmp_path / "img"))
    full = generate_verilog(CONFIG, images=images)
    text = generate_verilog(CONFIG, images=images, zero_init=False)
    blocks = re.findall(r"^  initial begin\n(.*?)^  end\n", full, re.M | re.S)
    nonzero = [b for b in blocks if re.search(r"= \d+'h0*[1-9a-f]", b)]
    assert 0 < len(nonzero) < len(blocks)   # the images' memories and some empty ones
    assert text.count("initial begin") == len(nonzero)
    for b in nonzero:
        assert b in text


def test_preload_hooks():
    text = add_preload(register_reset(generate_verilog(CONFIG, zero_init=False)), n_pe=CONFIG.n_pe)
    assert text.count("$readmemh") == CONFIG.n_pe * len(PRELOAD_FILES)
    for p in range(CONFIG.n_pe):
        for (unit, mem), kind in PRELOAD_FILES.items():
            assert f'$readmemh({{dir, "/pe{p:03d}.{kind}.hex"}}, core.pe{p}.{unit}.{mem});' in text
    assert f'$value$plusargs("{PRELOAD_PLUSARG}=%s", dir)' in text
    wrapped = register_reset(generate_verilog(CONFIG, zero_init=False))
    with pytest.raises(ValueError, match=r"^eie_top__core has no PE instance pe3$"):
        add_preload(wrapped, n_pe=4)
    with pytest.raises(ValueError, match=r"^the PEs' pointer_read has no memory 'odd_bank' to preload$"):
        add_preload(wrapped.replace("odd_bank", "bank1"), n_pe=3)
    with pytest.raises(ValueError, match=r"^no wrapper eie_top around eie_top__core"):
        add_preload(generate_verilog(CONFIG, zero_init=False), n_pe=3)


def test_registered_reset():
    text = register_reset(generate_verilog(CONFIG, zero_init=False))
    assert text.count("module eie_top(") == 1 and text.count("module eie_top__core(") == 1
    top = text[text.index("module eie_top("):]
    assert "always @(posedge clk)\n    rst_q <= rst;" in top
    assert ".rst(rst_q)" in top and ".cfg__payload(cfg__payload)" in top
    with pytest.raises(ValueError, match="no module other"):
        register_reset(text, "other")
