# amaranth: UnusedElaboratable=no
"""The whole accelerator in Amaranth's simulator on tiny random 2-layer networks.

The reference is a deliberately naive integer model written from docs/numerics.md; the images
come from ``compress.emit`` (the contract's encoder), loaded through ``cfg`` or baked in.
"""

import random

import numpy as np
import pytest

from compress.emit import write_images
from hw.accelerator import EIEAccelerator
from hw.config import EIEConfig
from hw.io_map import image_writes
from hw.testing import simulate, stream_put
from sim.image import load_images
from sim.random_net import random_network


def reference(net, x, act_bits):
    """Dense integer forward pass, straight from docs/numerics.md."""
    lo, hi = -2 ** (act_bits - 1), 2 ** (act_bits - 1) - 1
    a = [int(v) for v in x]
    for layer in net.layers:
        out = []
        for i in range(layer.n_out):
            t = int(layer.bias[i]) + sum(int(layer.codebook[layer.index[i, j]]) * a[j]
                                         for j in range(layer.n_in))
            s = layer.shift
            r = (t + 2 ** (s - 1)) >> s if s > 0 else t
            y = min(max(r, lo), hi)
            out.append(max(y, 0) if layer.relu else y)
        a = out
    return a


def tiny_config(n_pe):
    return EIEConfig(n_pe=n_pe, weight_bits=3, index_bits=2, act_bits=8, acc_bits=24,
                     entries_per_word=4, ptr_bits=8, mat_depth=32, ptr_depth=32,
                     max_rows_per_pe=-(-12 // n_pe), bias_depth=20, max_layers=2, max_shift=16,
                     queue_depth=2)


def make_images(tmp_path, config, seed):
    net = random_network(seed, [10, 12, 7], config, density=0.35)
    images = load_images(write_images(net, config, tmp_path / f"img{seed}"), expect_config=config)
    return net, images


def run_accelerator(config, images, vectors, *, via_cfg, seed):
    """Run input vectors through the RTL; returns (outputs per vector, stats)."""
    rng = random.Random(seed)
    dut = EIEAccelerator(config=config, images=None if via_cfg else images)
    n_out = images.layers[-1].n_out
    results, stats = [], {"done": 0, "layers_seen": set(), "busy_while_idle": 0}

    async def driver(ctx):
        if via_cfg:
            for space, pe, addr, data in image_writes(images):
                await stream_put(ctx, dut.cfg, {"space": space, "pe": pe, "addr": addr,
                                                "data": data})
        for x in vectors:
            for v in x:
                await stream_put(ctx, dut.i, int(v))
                while rng.random() < 0.2:
                    await ctx.tick()
            assert not ctx.get(dut.cfg.ready)
            got = []
            while len(got) < n_out:
                ready = int(rng.random() < 0.6)   # back-pressure on o
                ctx.set(dut.o.ready, ready)
                _, _, valid, payload, layer, busy = await ctx.tick().sample(
                    dut.o.valid, dut.o.payload, dut.layer, dut.busy)
                stats["layers_seen"].add(layer)
                assert busy
                if valid and ready:
                    got.append(payload)
            ctx.set(dut.o.ready, 0)
            _, _, done, busy = await ctx.tick().sample(dut.done, dut.busy)
            assert done and not busy, "done must pulse in the cycle after the last output"
            stats["done"] += 1
            results.append(got)

    async def watch_outputs(ctx):
        async for _, _, valid, busy in ctx.tick().sample(dut.o.valid, dut.busy):
            assert busy or not valid, "an output outside a run"

    simulate(dut, driver, monitors=[watch_outputs], name=f"accelerator_{config.n_pe}")
    return results, stats


@pytest.mark.parametrize("n_pe, via_cfg", [(1, True), (3, False)], ids=["1pe-cfg", "3pe-image"])
def test_tiny_network(tmp_path, n_pe, via_cfg):
    seed = 100 + n_pe
    config = tiny_config(n_pe)
    net, images = make_images(tmp_path, config, seed)
    rng = np.random.default_rng(seed)
    vectors = []
    for density in (0.6, 0.0):
        x = rng.integers(config.act_min, config.act_max + 1, size=10)
        x[rng.random(10) >= density] = 0
        vectors.append(x)
    results, stats = run_accelerator(config, images, vectors, via_cfg=via_cfg, seed=seed)
    for x, got in zip(vectors, results, strict=True):
        assert got == reference(net, x, config.act_bits), f"seed {seed}, input {list(x)}"
    assert stats["done"] == len(vectors)
    assert stats["layers_seen"] == {0, 1}


def test_refuses_foreign_images(tmp_path):
    config = tiny_config(3)
    _, images = make_images(tmp_path, config, 7)
    other = config.replace(acc_bits=25)
    with pytest.raises(ValueError, match=rf"^images were made for configuration "
                                         rf"{config.config_hash()} but the hardware configuration "
                                         rf"is {other.config_hash()}$"):
        EIEAccelerator(config=other, images=images)


def test_validation():
    with pytest.raises(TypeError, match=r"^config must be an EIEConfig, not 'x'$"):
        EIEAccelerator(config="x")
