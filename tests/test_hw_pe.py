# amaranth: UnusedElaboratable=no
"""One processing element: one MAC per cycle from a full queue (paddings folded), exact write-back
results."""

import random

import numpy as np
import pytest

from eie.hw.activation_rw import OUT_LATENCY
from eie.hw.pe import ProcessingElement
from eie.hw.testing import simulate, stream_put
from eie.spec.config import EIEConfig
from eie.spec.emit import write_images
from eie.spec.image import load_images
from eie.spec.network import QuantizedLayer, QuantizedNetwork
from eie.tb.units.sparse_matrix_read import folder_cycles

CONFIG = EIEConfig(n_pe=2, weight_bits=3, index_bits=2, act_bits=8, acc_bits=24,
                   entries_per_word=3, ptr_bits=9, mat_depth=64, ptr_depth=32,
                   max_rows_per_pe=8, bias_depth=8, max_layers=1, max_shift=12, queue_depth=4)
PE = 1
N_IN, N_OUT = 16, 15


def layer_for(seed, *, empty_columns):
    rng = np.random.default_rng(seed)
    index = np.where(rng.random((N_OUT, N_IN)) < 0.4, rng.integers(1, 8, (N_OUT, N_IN)), 0)
    mine = np.arange(N_OUT) % CONFIG.n_pe == PE
    for j in range(N_IN):
        if j in empty_columns:
            index[mine, j] = 0
        elif not index[mine, j].any():
            index[np.flatnonzero(mine)[j % mine.sum()], j] = 1 + j % 7
    codebook = np.array([0, 90, -128, 3, -40, 127, 17, -1])
    bias = rng.integers(-3000, 3000, N_OUT)
    return QuantizedLayer(index=index.astype(np.uint8), codebook=codebook, bias=bias, shift=7,
                          relu=False)


def reference_rows(layer, x):
    out = []
    for i in range(PE, N_OUT, CONFIG.n_pe):
        t = int(layer.bias[i]) + sum(int(layer.codebook[layer.index[i, j]]) * int(x[j])
                                     for j in range(N_IN))
        out.append(min(max((t + 64) >> 7, -128), 127))
    return out


def set_layer(ctx, dut, layer):
    """The layer's codebook and parameters, for its compute and its write-back."""
    ctx.set(dut.codebook, [int(c) for c in layer.codebook])
    params = {"n_in": N_IN, "n_out": N_OUT, "ptr_base": 0, "bias_base": 0, "shift": layer.shift,
              "relu": 0}
    ctx.set(dut.layer, params)
    ctx.set(dut.wb_layer, params)


def run_pe(layer, x, tmp_path):
    images = load_images(write_images(QuantizedNetwork(layers=(layer,)), CONFIG, tmp_path / "img"))
    dut = ProcessingElement(config=CONFIG, pe_index=PE, images=images)
    macs, results = [], []

    async def bench(ctx):
        set_layer(ctx, dut, layer)
        for j, a in enumerate(x):
            await stream_put(ctx, dut.act, {"value": int(a), "index": j})
        await ctx.tick().until(~dut.busy)
        ctx.set(dut.wb_start, 1)
        await ctx.tick()
        ctx.set(dut.wb_start, 0)
        await ctx.tick().until(~dut.busy)
        for r in range(len(range(PE, N_OUT, CONFIG.n_pe))):
            ctx.set(dut.out_addr, r)
            await ctx.tick().repeat(OUT_LATENCY)
            results.append(ctx.get(dut.out_data))

    async def monitor(ctx):
        cycle = 0
        async for _, _, mac in ctx.tick().sample(dut.mac):
            if mac:
                macs.append(cycle)
            cycle += 1

    simulate(dut, bench, monitors=[monitor], name="pe")
    return images, macs, results


@pytest.mark.parametrize("seed", [1, 2])
def test_one_mac_per_cycle_and_exact_results(tmp_path, seed):
    layer = layer_for(seed, empty_columns=())
    rng = random.Random(seed)
    x = [rng.choice([-1, 1]) * rng.randint(1, 128) for _ in range(N_IN)]
    x = [max(v, -128) if v < 0 else min(v, 127) for v in x]
    images, macs, results = run_pe(layer, x, tmp_path)
    v = images.entries(PE) & ((1 << CONFIG.weight_bits) - 1)
    ptr = images.ptr[PE][:N_IN + 1]
    assert len(macs) == np.count_nonzero(v[:ptr[-1]]), "one MAC per non-padding entry"
    span = folder_cycles(v, list(zip(ptr[:-1], ptr[1:])), entries_per_word=CONFIG.entries_per_word)
    assert macs[-1] - macs[0] + 1 == span, \
        f"seed {seed}: the PE idled with a non-empty queue (MACs {macs})"
    assert results == reference_rows(layer, x), f"seed {seed}"


def test_write_back_overlaps_the_next_activations(tmp_path):
    """Activations of the next layer are taken while the write-back sweeps (the control starts
    the next layer at once), but no MAC enters the arithmetic unit before the sweep has issued
    its last row, nor while ``hold`` is high (the codebook copy); both layers' results are
    exact."""
    seed = 5
    layer = layer_for(seed, empty_columns=())
    rng = random.Random(seed)
    xs = [[rng.randint(-128, 127) or 1 for _ in range(N_IN)] for _ in range(2)]
    images = load_images(write_images(QuantizedNetwork(layers=(layer,)), CONFIG, tmp_path / "img"))
    dut = ProcessingElement(config=CONFIG, pe_index=PE, images=images)
    rows = len(range(PE, N_OUT, CONFIG.n_pe))
    events, results = [], []

    async def read_rows(ctx):
        got = []
        for r in range(rows):
            ctx.set(dut.out_addr, r)
            await ctx.tick().repeat(OUT_LATENCY)
            got.append(ctx.get(dut.out_data))
        return got

    async def bench(ctx):
        set_layer(ctx, dut, layer)
        for j, a in enumerate(xs[0]):
            await stream_put(ctx, dut.act, {"value": a, "index": j})
        await ctx.tick().until(~dut.busy)
        for x in xs:
            ctx.set(dut.wb_start, 1)
            await ctx.tick()
            ctx.set(dut.wb_start, 0)
            if x is xs[0]:
                for j, a in enumerate(xs[1]):      # the next layer, during the write-back
                    await stream_put(ctx, dut.act, {"value": a, "index": j})
                await ctx.tick().until(~dut.busy)
                results.append(await read_rows(ctx))
        await ctx.tick().until(~dut.busy)
        results.append(await read_rows(ctx))

    async def monitor(ctx):
        cycle = 0
        async for _, _, start, valid, ready, mac in ctx.tick().sample(dut.wb_start, dut.act.valid,
                                                                      dut.act.ready, dut.mac):
            events.append((cycle, start, valid and ready, mac))
            cycle += 1

    hold_cycles = 3 * rows

    async def holder(ctx):
        await ctx.tick().until(dut.wb_start)
        ctx.set(dut.hold, 1)
        await ctx.tick().repeat(hold_cycles)
        ctx.set(dut.hold, 0)

    simulate(dut, bench, monitors=[monitor, holder], name="pe_overlap")
    assert results == [reference_rows(layer, x) for x in xs], f"seed {seed}"
    wb = next(c for c, start, _, _ in events if start)
    taken = [c for c, _, handshake, _ in events if handshake and c > wb]
    macs = [c for c, _, _, mac in events if mac and c > wb]
    assert taken[0] < wb + rows, "the next activations waited for the write-back"
    assert macs[0] > wb + rows, "a MAC entered the arithmetic unit during the write-back sweep"
    assert macs[0] > wb + hold_cycles, "a MAC entered the arithmetic unit while held"


def test_empty_columns_and_zero_activations(tmp_path):
    seed = 3
    layer = layer_for(seed, empty_columns=(0, 5, 6, 15))
    x = [0 if j % 4 == 1 else (j * 37) % 255 - 127 for j in range(N_IN)]
    _, _, results = run_pe(layer, x, tmp_path)
    assert results == reference_rows(layer, x), f"seed {seed}"


def test_refuses_foreign_images(tmp_path):
    layer = layer_for(4, empty_columns=())
    images = load_images(write_images(QuantizedNetwork(layers=(layer,)), CONFIG, tmp_path / "i"))
    other = CONFIG.replace(max_shift=11)
    with pytest.raises(ValueError, match=r"^images were made for configuration [0-9a-f]{16} but "
                                         r"the hardware configuration is [0-9a-f]{16}$"):
        ProcessingElement(config=other, pe_index=0, images=images)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"config": CONFIG, "pe_index": 2}, ValueError, r"^pe_index must be in 0\.\.1, not 2$"),
    ({"config": CONFIG, "pe_index": None}, TypeError, r"^pe_index must be an integer, not None$"),
    ({"config": {}, "pe_index": 0}, TypeError, r"^config must be an EIEConfig, not \{\}$"),
])
def test_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        ProcessingElement(**kwargs)
