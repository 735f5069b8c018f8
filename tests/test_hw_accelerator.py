# amaranth: UnusedElaboratable=no
"""The whole accelerator in Amaranth's simulator on tiny random 2-layer networks.

The reference is the deliberately naive integer model :func:`eie.sim.golden.reference_forward`; the images
come from ``eie.spec.emit`` (the contract's encoder), loaded through ``cfg`` or baked in.
"""

import random

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module

from eie.hw.accelerator import EIEAccelerator
from eie.hw.io_map import Space, image_writes
from eie.hw.testing import simulate, stream_get, stream_put
from eie.sim.golden import reference_forward
from eie.sim.random_net import random_network
from eie.spec.config import EIEConfig
from eie.spec.emit import write_images
from eie.spec.image import load_images


def tiny_config(n_pe, **changes):
    params = dict(n_pe=n_pe, weight_bits=3, index_bits=2, act_bits=8, acc_bits=24,
                  entries_per_word=4, ptr_bits=8, mat_depth=32, ptr_depth=32,
                  max_rows_per_pe=-(-12 // n_pe), bias_depth=20, max_layers=2, max_shift=16,
                  queue_depth=2)
    params.update(changes)
    return EIEConfig(**params)


def make_images(tmp_path, config, seed, shapes=(10, 12, 7), **kw):
    net = random_network(seed, list(shapes), config, **{"density": 0.35, **kw})
    images = load_images(write_images(net, config, tmp_path / f"img{seed}"), expect_config=config)
    return net, images


def input_vectors(config, n_in, seed, densities):
    rng = np.random.default_rng(seed)
    vectors = []
    for density in densities:
        x = rng.choice([config.act_min, config.act_max, -1, 1], size=n_in) if density == "extreme" \
            else rng.integers(config.act_min, config.act_max + 1, size=n_in)
        x[rng.random(n_in) >= (0.7 if density == "extreme" else density)] = 0
        vectors.append(x)
    return vectors


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
    vectors = input_vectors(config, 10, seed, (0.6, 0.0))
    results, stats = run_accelerator(config, images, vectors, via_cfg=via_cfg, seed=seed)
    for x, got in zip(vectors, results, strict=True):
        assert got == reference_forward(net, x, config.act_bits), f"seed {seed}, input {list(x)}"
    assert stats["done"] == len(vectors)
    assert stats["layers_seen"] == {0, 1}


CASES = {
    # name: (config changes, shapes, network options, input densities, load through cfg)
    "2pe-3layers": (dict(n_pe=2, max_layers=3, max_rows_per_pe=8, ptr_depth=48, bias_depth=24),
                    (9, 16, 11, 5), {}, (0.5, 1.0), True),
    "4pe-depth1-queue": (dict(n_pe=4, queue_depth=1, max_rows_per_pe=4), (13, 12, 7), {},
                         (0.8,), False),
    "5pe-3perword": (dict(n_pe=5, entries_per_word=3, max_rows_per_pe=3), (12, 14, 9),
                     {"density": 0.5}, (0.9, 0.3), False),
    "extreme-saturating": (dict(n_pe=3), (10, 12, 7), {"extreme": True}, ("extreme", "extreme"),
                           False),
    "empty-columns": (dict(n_pe=2, max_rows_per_pe=6), (11, 12, 6), {"empty_cols": 0.4},
                      (0.7,), True),
    "one-input": (dict(n_pe=3), (1, 12, 4), {"density": 0.7}, (1.0, 1.0), True),
    "one-output": (dict(n_pe=3), (6, 12, 1), {"density": 0.7}, (1.0, 0.5, 0.0), False),
    "default-widths": (dict(n_pe=4, weight_bits=4, index_bits=4, act_bits=16, acc_bits=40,
                            entries_per_word=8, ptr_bits=16, max_shift=31, mat_depth=64,
                            ptr_depth=64, max_rows_per_pe=8, bias_depth=32, queue_depth=8),
                       (24, 30, 10), {"density": 0.3}, (0.6, "extreme"), True),
    "8pe-wide": (dict(n_pe=8, max_rows_per_pe=3, queue_depth=4, ptr_depth=48), (20, 24, 10), {}, (0.5,), False),
}


@pytest.mark.parametrize("name", CASES)
def test_cases(tmp_path, name):
    changes, shapes, options, densities, via_cfg = CASES[name]
    seed = sum(map(ord, name))
    config = tiny_config(**changes)
    net, images = make_images(tmp_path, config, seed, shapes, **options)
    vectors = input_vectors(config, shapes[0], seed, densities)
    results, stats = run_accelerator(config, images, vectors, via_cfg=via_cfg, seed=seed)
    for x, got in zip(vectors, results, strict=True):
        assert got == reference_forward(net, x, config.act_bits), f"{name}: seed {seed}, input {list(x)}"
    assert stats["layers_seen"] == set(range(len(shapes) - 1))


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


def test_reset_mid_layer_clears_accumulators(tmp_path):
    """A reset in the middle of a layer leaves partial sums behind; the post-reset sweep
    clears them, and the images (SRAMs, layer table, n_layers) survive the reset."""
    config = tiny_config(2, max_rows_per_pe=6)
    seed = 77
    net, images = make_images(tmp_path, config, seed)
    x0, x1 = input_vectors(config, 10, seed, (1.0, 0.8))
    dut = EIEAccelerator(config=config)
    top = Module()
    top.domains.sync = sync = ClockDomain()
    top.submodules.dut = dut
    got = []

    async def bench(ctx):
        for space, pe, addr, data in image_writes(images):
            await stream_put(ctx, dut.cfg, {"space": space, "pe": pe, "addr": addr, "data": data})
        for v in x0:
            await stream_put(ctx, dut.i, int(v))
        await ctx.tick().until(dut.layer == 1)
        # past the set-up (codebook copy), into the accumulation of layer 1
        await ctx.tick().repeat(config.codebook_size + 20)
        ctx.set(sync.rst, 1)
        await ctx.tick()
        ctx.set(sync.rst, 0)
        assert not ctx.get(dut.busy)
        for v in x1:
            await stream_put(ctx, dut.i, int(v))
        for _ in range(7):
            got.append(await stream_get(ctx, dut.o))

    simulate(top, bench, name="accelerator_reset")
    assert got == reference_forward(net, x1, config.act_bits), f"seed {seed}"


def test_ignores_out_of_range_writes(tmp_path):
    """Writes outside a space, to a missing PE or of too many layers change nothing."""
    config = tiny_config(2, max_rows_per_pe=6)
    seed = 31
    net, images = make_images(tmp_path, config, seed)
    x, = input_vectors(config, 10, seed, (0.8,))
    dut = EIEAccelerator(config=config, images=images)
    junk = [(Space.PTR, 2, 0, 99), (Space.BIAS, 0, config.bias_depth + 5, 1),
            (Space.LAYER, 0, 6, 1), (Space.CONTROL, 0, 0, config.max_layers + 1),
            (Space.CONTROL, 0, 1, 1)]
    got = []

    async def bench(ctx):
        for space, pe, addr, data in junk:
            await stream_put(ctx, dut.cfg, {"space": space, "pe": pe, "addr": addr, "data": data})
        for v in x:
            await stream_put(ctx, dut.i, int(v))
        for _ in range(7):
            got.append(await stream_get(ctx, dut.o))

    simulate(dut, bench, name="accelerator_junk")
    assert got == reference_forward(net, x, config.act_bits)
