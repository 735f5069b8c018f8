"""compress.prune: exact counts, magnitude order, coarse blocks, load balance, masks through retraining."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as torch_prune
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from eie.compress.prune import (
    balanced_counts,
    iterative_prune,
    magnitude_mask,
    prune_layer,
    prune_once,
    step_densities,
    target_count,
)
from eie.compress.train import Dataset, train_epochs
from eie.spec.errors import CompressError

torch.set_num_threads(1)


def mlp(seed=0, sizes=(12, 20, 9, 4)):
    torch.manual_seed(seed)
    layers = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1]).eval()


def toy_data(seed=0, n=96, n_in=12, n_out=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, n_in, generator=g)
    y = (x[:, :n_out] * torch.arange(1, n_out + 1)).argmax(dim=1)
    return Dataset(x[: n // 2], y[: n // 2], x[n // 2:], y[n // 2:])


def pe_counts(mask, n_pe):
    return [int(mask[p::n_pe].sum()) for p in range(n_pe)]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.floats(0.01, 1.0), st.integers(0, 2**31))
def test_fine_pruning_keeps_exactly_the_target_count_of_largest_weights(n_out, n_in, density, seed):
    layer = nn.Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(np.random.default_rng(seed).normal(size=(n_out, n_in))))
    w = layer.weight.detach().numpy().copy()
    prune_layer(layer, density)
    mask = layer.weight_mask.numpy() != 0
    assert mask.sum() == target_count(n_in * n_out, density)
    if 0 < mask.sum() < mask.size:
        assert np.abs(w[mask]).min() >= np.abs(w[~mask]).max()


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 50), st.integers(1, 30), st.floats(0.01, 1.0), st.integers(1, 13),
       st.integers(0, 2**31))
def test_load_balanced_pruning_gives_every_pe_the_same_count(n_out, n_in, density, n_pe, seed):
    w = np.random.default_rng(seed).normal(size=(n_out, n_in))
    n_keep = target_count(w.size, density)
    mask = magnitude_mask(w, n_keep, n_pe=n_pe)
    counts = pe_counts(mask, n_pe)
    caps = [len(range(p, n_out, n_pe)) * n_in for p in range(n_pe)]
    assert sum(counts) == n_keep
    open_counts = [c for c, cap in zip(counts, caps, strict=True) if c < cap]
    if open_counts:
        assert max(open_counts) - min(open_counts) <= 1
        assert all(c <= max(open_counts) + 1 for c in counts)
    if n_keep % n_pe == 0 and n_keep // n_pe <= min(caps):
        assert len(set(counts)) == 1
    for p in range(n_pe):   # magnitude order inside each PE's sub-matrix
        sub, keep = np.abs(w[p::n_pe]), mask[p::n_pe]
        if 0 < keep.sum() < keep.size:
            assert sub[keep].min() >= sub[~keep].max()


@pytest.mark.parametrize("n_pe", [2, 3, 4, 5, 7, 8])
def test_balanced_pruning_of_digits_sized_layer_is_exactly_equal(n_pe):
    layer = nn.Linear(64, 300)
    n_keep = 840    # divisible by every n_pe above
    prune_layer(layer, n_keep / (64 * 300), balance_pes=n_pe)
    counts = pe_counts(layer.weight_mask.numpy() != 0, n_pe)
    assert counts == [n_keep // n_pe] * n_pe


def test_balanced_counts_spreads_what_a_small_pe_cannot_hold():
    assert balanced_counts(10, [2, 100, 100]).tolist() == [2, 4, 4]
    assert balanced_counts(7, [10, 10, 10]).tolist() == [3, 2, 2]
    assert balanced_counts(0, [3, 3]).tolist() == [0, 0]


@pytest.mark.parametrize("granularity, group", [("vector", (1, 4)), ("block", (4, 4))])
@pytest.mark.parametrize("n_pe", [None, 2])
def test_coarse_pruning_keeps_whole_blocks(granularity, group, n_pe):
    rng = np.random.default_rng(1)
    layer = nn.Linear(16, 24)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(rng.normal(size=(24, 16))))
    prune_layer(layer, 0.25, granularity=granularity, block_size=4, balance_pes=n_pe)
    mask = layer.weight_mask.numpy() != 0
    assert mask.sum() == 0.25 * mask.size
    gh, gw = group
    parts = [mask] if n_pe is None else [mask[p::n_pe] for p in range(n_pe)]
    for part in parts:
        blocks = part.reshape(part.shape[0] // gh, gh, part.shape[1] // gw, gw)
        assert np.all(blocks.all(axis=(1, 3)) == blocks.any(axis=(1, 3)))
    if n_pe:
        assert len(set(pe_counts(mask, n_pe))) == 1


def test_block_scores_use_the_norm_of_the_block():
    w = np.zeros((1, 8))
    w[0, :4] = [3.0, 0, 0, 0]       # L2 3, L1 3
    w[0, 4:] = [1.6, 1.6, 1.6, 1.6]  # L2 3.2, L1 6.4
    assert magnitude_mask(w, 4, group=(1, 4), norm=2)[0].tolist() == [False] * 4 + [True] * 4
    w[0, :4] = [3.3, 0, 0, 0]
    assert magnitude_mask(w, 4, group=(1, 4), norm=2)[0].tolist() == [True] * 4 + [False] * 4
    assert magnitude_mask(w, 4, group=(1, 4), norm=1)[0].tolist() == [False] * 4 + [True] * 4


@pytest.mark.parametrize("granularity, n_pe", [("fine", None), ("fine", 3), ("vector", None), ("block", 2)])
def test_repeated_pruning_composes_and_only_removes(granularity, n_pe):
    layer = nn.Linear(16, 12)
    prune_layer(layer, 0.5, granularity=granularity, block_size=2, balance_pes=n_pe)
    first = layer.weight_mask.numpy().copy()
    prune_layer(layer, 0.25, granularity=granularity, block_size=2, balance_pes=n_pe)
    second = layer.weight_mask.numpy()
    hooks = list(layer._forward_pre_hooks.values())
    assert len(hooks) == 1 and isinstance(hooks[0], torch_prune.PruningContainer)
    assert second.sum() == 0.25 * second.size
    assert np.all(second <= first)


def test_iterative_pruning_reaches_the_targets_and_pruned_weights_stay_zero():
    model, data = mlp(), toy_data()
    result = iterative_prune(model, data, [0.3, 0.2, 0.5], steps=3, epochs=2, lr=1e-2)
    assert [int(m.sum()) for m in result.masks] == [72, 36, 18]
    assert len(result.step_accuracies) == 3
    for layer, mask in zip([result.model[0], result.model[2], result.model[4]], result.masks, strict=True):
        assert not torch_prune.is_pruned(layer)
        w = layer.weight.detach().numpy()
        assert np.all(w[~mask] == 0.0) and np.all(np.signbit(w[~mask]) == 0) and np.all(w[mask] != 0)
    assert not torch_prune.is_pruned(model[0]) and np.all(model[0].weight.detach().numpy() != 0)


def test_masked_training_keeps_pruned_weights_exactly_zero():
    model, data = mlp(), toy_data()
    result = prune_once(model, [0.25, 0.25, 0.5])
    before = [layer.weight.detach().clone() for layer in (result.model[0], result.model[2], result.model[4])]
    train_epochs(result.model, data, 3, 1e-2, masks=result.masks)
    layers = (result.model[0], result.model[2], result.model[4])
    for layer, mask, old in zip(layers, result.masks, before, strict=True):
        w = layer.weight.detach().numpy()
        assert np.all(w[~mask] == 0.0)
        assert not torch.equal(layer.weight, old)


def test_grad_hook_runs_between_backward_and_step():
    model, data = mlp(), toy_data()
    before = [p.detach().clone() for p in model.parameters()]
    calls = []

    def freeze(m):
        calls.append(1)
        for p in m.parameters():
            p.grad.zero_()
    train_epochs(model, data, 1, 1e-2, grad_hook=freeze, batch_size=16)
    assert len(calls) == 3
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_step_densities_prune_much_first_and_end_at_the_target():
    steps = step_densities(0.05, 4)
    assert steps[-1] == pytest.approx(0.05)
    assert all(a > b for a, b in itertools.pairwise(steps))
    assert 1 - steps[0] > steps[-2] - steps[-1]


@pytest.mark.parametrize("kwargs, message", [
    ({"densities": [0.5, 0.5]}, r"^2 densities given for 3 layers; give one per layer"),
    ({"densities": [0.5, 0.0, 0.5]}, r"^density must be in \(0, 1\], not 0.0"),
    ({"densities": [0.5, 0.5, 0.5], "granularity": "kernel"},
     r"^granularity must be one of fine, vector, block, not 'kernel'"),
    ({"densities": [0.5, 0.5, 0.5], "granularity": "block", "block_size": 0},
     r"^block size must be a positive integer, not 0"),
    ({"densities": [0.5, 0.5, 0.5], "balance_pes": 0},
     r"^the number of PEs to balance over must be a positive integer, not 0"),
])
def test_bad_pruning_options_are_rejected(kwargs, message):
    with pytest.raises(CompressError, match=message):
        prune_once(mlp(), **kwargs)


@given(st.integers(0, 2**16), st.integers(0, 60))
def test_fine_selection_equals_a_stable_sort_with_ties_to_the_lower_index(seed, n_keep):
    rng = np.random.default_rng(seed)
    weight = rng.integers(-3, 4, size=(6, 10)).astype(np.float64)       # many ties
    alive = rng.random((6, 10)) < 0.8
    scores = np.where(alive, np.abs(weight), -np.inf).ravel()
    naive = np.zeros(scores.size, dtype=bool)
    naive[np.argsort(-scores, kind="stable")[:n_keep]] = True
    got = magnitude_mask(weight, n_keep, alive=alive)
    assert np.array_equal(got, naive.reshape(6, 10) & alive)
