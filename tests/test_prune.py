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
    copy_model,
    iterative_prune,
    kept_count,
    live_masks,
    magnitude_mask,
    prune_layer,
    prune_once,
    step_densities,
    target_count,
)
from eie.compress.sensitivity import sensitivity_analysis
from eie.compress.train import Dataset, evaluate, linear_layers, train_epochs
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
    with pytest.raises(CompressError, match=r"^cannot spread 7 weights over PEs that hold 6; keep at most that many$"):
        balanced_counts(7, [3, 3])


def test_kept_count_is_a_fraction_of_the_whole_layer_capped_by_the_live_weights():
    assert kept_count(100, 0.2, 50) == 20
    assert kept_count(100, 0.2, 10) == 10      # asks for more than are live: keeps exactly the live ones
    assert kept_count(100, 0.2, 0) == 0
    with pytest.raises(CompressError, match=r"^density must be in \(0, 1\], not 0$"):
        kept_count(100, 0, 10)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30), st.integers(1, 20), st.integers(0, 700), st.sampled_from([None, 2, 3, 7]),
       st.sampled_from([(1, 1), (1, 3), (2, 2)]), st.integers(0, 2**31))
def test_masks_stay_inside_the_live_set_and_never_keep_a_zero(n_out, n_in, n_keep, n_pe, group, seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n_out, n_in)) * (rng.random((n_out, n_in)) < 0.7)      # exact zeros
    alive = rng.random((n_out, n_in)) < 0.6
    live = alive & (w != 0)
    mask = magnitude_mask(w, n_keep, group=group, n_pe=n_pe, alive=alive)
    assert np.all(mask <= live)
    if n_keep >= live.sum():
        assert np.array_equal(mask, live)
    elif group == (1, 1):
        assert mask.sum() == n_keep
        caps = [int(live[p::n_pe or 1].sum()) for p in range(n_pe or 1)]
        assert pe_counts(mask, n_pe or 1) == balanced_counts(n_keep, caps).tolist()


def test_a_pe_with_fewer_live_weights_than_its_share_keeps_them_all():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(12, 10))
    alive = np.ones(w.shape, dtype=bool)
    alive[0::3] = False
    alive[0, :2] = True                                         # PE 0 of 3: two live weights
    mask = magnitude_mask(w, 30, n_pe=3, alive=alive)
    assert pe_counts(mask, 3) == [2, 14, 14]
    assert np.array_equal(mask[0::3], alive[0::3])


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
    w[0, :4] = [3.0, 1e-3, 1e-3, 1e-3]  # L2 3.0000005, L1 3.003 (no zeros: a zero weight is never kept)
    w[0, 4:] = [1.6, 1.6, 1.6, 1.6]     # L2 3.2, L1 6.4
    assert magnitude_mask(w, 4, group=(1, 4), norm=2)[0].tolist() == [False] * 4 + [True] * 4
    w[0, :4] = [3.3, 1e-3, 1e-3, 1e-3]
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
    live = alive & (weight != 0)                                        # an exact zero is never kept
    scores = np.where(live, np.abs(weight), -np.inf).ravel()
    naive = np.zeros(scores.size, dtype=bool)
    naive[np.argsort(-scores, kind="stable")[:n_keep]] = True
    got = magnitude_mask(weight, n_keep, alive=alive)
    assert np.array_equal(got, naive.reshape(6, 10) & live)


USER_DENSITY = 0.5


def user_pruned(how, seed=0):
    """``mlp()`` pruned by the user to ``USER_DENSITY``: the model to hand over, its ``alive`` and its masks."""
    model = mlp(seed)
    for layer in linear_layers(model):
        torch_prune.l1_unstructured(layer, "weight", amount=1 - USER_DENSITY)
    user = [layer.weight_mask.numpy() != 0 for layer in linear_layers(model)]
    if how == "attached":
        return model, None, user
    for layer in linear_layers(model):
        torch_prune.remove(layer, "weight")
    if how == "zeros":
        return model, None, user
    return mlp(seed), user, user        # "alive": a dense model and the masks passed explicitly


HOWS = ["attached", "zeros", "alive"]
GRANULARITIES = [dict(granularity="fine"), dict(granularity="vector", block_size=2),
                 dict(granularity="block", block_size=2), dict(granularity="fine", balance_pes=3),
                 dict(granularity="vector", block_size=2, balance_pes=2)]


@pytest.mark.parametrize("options", GRANULARITIES, ids=lambda o: "-".join(map(str, o.values())))
@pytest.mark.parametrize("how", HOWS)
def test_iterative_pruning_never_leaves_the_users_mask(how, options):
    model, alive, user = user_pruned(how)
    before = [p.detach().clone() for p in model.parameters()]
    # Four steps from the live density, so every step prunes; the old all-ones start revived weights here.
    result = iterative_prune(model, toy_data(), [0.3] * 3, steps=4, epochs=3, lr=1e-1, alive=alive, **options)
    for layer, mask, keep in zip(linear_layers(result.model), result.masks, user, strict=True):
        w = layer.weight.detach().numpy()
        assert np.all(mask <= keep) and np.all(w[~mask] == 0.0) and np.all(w[mask] != 0)
        assert abs(int(mask.sum()) - 0.3 * mask.size) <= (0.5 if options["granularity"] == "fine" else 4)
        if "balance_pes" in options and options["granularity"] == "fine":
            assert max(pe_counts(mask, 3)) - min(pe_counts(mask, 3)) <= 1
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert torch_prune.is_pruned(model[0]) == (how == "attached")


@pytest.mark.parametrize("options", GRANULARITIES, ids=lambda o: "-".join(map(str, o.values())))
@pytest.mark.parametrize("how", HOWS)
def test_a_density_above_the_live_density_keeps_exactly_the_live_set(how, options):
    model, alive, user = user_pruned(how, seed=1)
    result = iterative_prune(model, toy_data(), [0.8] * 3, steps=2, epochs=2, lr=1e-1, alive=alive, **options)
    assert all(np.array_equal(mask, keep) for mask, keep in zip(result.masks, user, strict=True))
    once = prune_once(model, [1.0, 0.8, 0.6], alive=alive, **options)
    assert all(np.array_equal(mask, keep) for mask, keep in zip(once.masks, user, strict=True))


def test_live_masks_read_attached_masks_zeros_and_alive():
    model, _, user = user_pruned("attached")
    assert all(np.array_equal(a, b) for a, b in zip(live_masks(model), user, strict=True))
    alive = [None, np.zeros((9, 20), bool), None]
    assert [int(m.sum()) for m in live_masks(model, alive)] == [int(user[0].sum()), 0, int(user[2].sum())]
    copied = copy_model(model)          # a plain deepcopy fails: the pruned weight is not a graph leaf
    assert all(np.array_equal(a, b) for a, b in zip(live_masks(copied), user, strict=True))
    assert copied[0].weight_orig is not model[0].weight_orig


def test_sensitivity_of_a_pruned_model_costs_nothing_above_its_live_density():
    model, alive, user = user_pruned("alive")       # dense weights, the user's masks passed as alive
    data = toy_data()
    result = sensitivity_analysis(model, data, budget=0.0, grid=(0.1, 0.25, 0.5, 0.75), alive=alive)
    for row in result.accuracies:
        assert row[2:] == [result.baseline] * 3
    masked = copy_model(model)
    train_epochs(masked, data, 0, 1e-2, masks=user)          # zero epochs: just applies the masks
    assert result.baseline == evaluate(masked, data, "train") != evaluate(model, data, "train")
    assert all(d <= USER_DENSITY for d in result.densities)
