"""compress.sparsifier: MagnitudeSparsifier and WeightSharer inside a hand-written training loop."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torch.nn.utils.prune as torch_prune
from torch import nn

from eie.compress.prune import step_densities, target_count
from eie.compress.quantize import quantize_layers
from eie.compress.sparsifier import MagnitudeSparsifier, WeightSharer
from eie.compress.train import linear_layers
from eie.spec.errors import CompressError

torch.set_num_threads(1)


def mlp(seed=0, sizes=(12, 20, 9, 4)):
    torch.manual_seed(seed)
    layers = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def batches(seed=0, n_batches=4, batch=16, n_in=12, n_out=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n_batches * batch, n_in, generator=g)
    y = (x[:, :n_out] * torch.arange(1, n_out + 1)).argmax(dim=1)
    return list(zip(x.split(batch), y.split(batch), strict=True))


def train_one_epoch(model, optimizer, data, after_step=None):
    for x, y in data:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        if after_step is not None:
            after_step()


def weights(model):
    return [layer.weight.detach().numpy().copy() for layer in linear_layers(model)]


def test_sparsifier_in_a_user_loop_reaches_the_densities_and_zeros_stay_zero():
    model, data = mlp(), batches()
    sparsifier = MagnitudeSparsifier([0.3, 0.2, 0.5], steps=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-2, weight_decay=1e-2)   # before prepare: still fine
    sparsifier.prepare(model)
    previous = sparsifier.masks
    assert all(m.all() for m in previous)

    def pruned_weights_are_zero():
        model(data[0][0])           # the forward pass recomputes the masked weights
        for layer, mask in zip(linear_layers(model), sparsifier.masks, strict=True):
            assert np.all(layer.weight.detach().numpy()[~mask] == 0.0)

    for epoch in range(6):
        if epoch % 2 == 0:
            sparsifier.step()
            masks = sparsifier.masks
            assert all(np.all(new <= old) for new, old in zip(masks, previous, strict=True))
            previous = masks
        train_one_epoch(model, optimizer, data, pruned_weights_are_zero)
    assert sparsifier.step_count == 3
    masks = sparsifier.squash_mask()
    assert [int(m.sum()) for m in masks] == [72, 36, 18]
    for layer, mask in zip(linear_layers(model), masks, strict=True):
        assert not torch_prune.is_pruned(layer) and isinstance(layer.weight, nn.Parameter)
        w = layer.weight.detach().numpy()
        assert np.all(w[~mask] == 0.0) and not np.any(np.signbit(w[~mask])) and np.all(w[mask] != 0)


def test_each_step_follows_the_cubic_schedule_from_the_live_density():
    model = mlp()
    for layer in linear_layers(model):
        torch_prune.l1_unstructured(layer, "weight", amount=0.5)
    user = [layer.weight_mask.numpy() != 0 for layer in linear_layers(model)]
    sparsifier = MagnitudeSparsifier([0.1, 0.1, 0.1], steps=3)
    sparsifier.prepare(model)
    for step in range(5):
        sparsifier.step()
        expected = [target_count(m.size, step_densities(0.1, 3, start=m.mean())[min(step, 2)]) for m in user]
        assert [int(m.sum()) for m in sparsifier.masks] == expected      # steps after the last hold
        assert all(np.all(m <= u) for m, u in zip(sparsifier.masks, user, strict=True))
    sparsifier.finalize()


def test_per_layer_options_by_module_name():
    model = mlp(sizes=(12, 20, 9, 8))
    sparsifier = MagnitudeSparsifier({"0": 0.25, "4": {"density": 0.5, "granularity": "vector", "block_size": 3}})
    sparsifier.prepare(model)
    sparsifier.step()
    first, middle, last = sparsifier.squash_mask()
    assert first.sum() == 60 and middle.all()
    blocks = last.reshape(8, 3, 3)
    assert last.sum() == 36 and np.all(blocks.all(axis=2) == blocks.any(axis=2))


def test_pruning_the_model_carries_is_kept_and_zeros_are_never_kept():
    model = mlp()
    torch_prune.l1_unstructured(model[0], "weight", amount=0.8)     # attached mask
    torch_prune.l1_unstructured(model[2], "weight", amount=0.7)
    torch_prune.remove(model[2], "weight")                          # exact zeros
    alive = [None, None, np.arange(36).reshape(4, 9) % 3 == 0]      # explicit mask
    user = [model[0].weight_mask.numpy() != 0, model[2].weight.detach().numpy() != 0, alive[2]]
    sparsifier = MagnitudeSparsifier([0.5, 0.5, 0.5])
    sparsifier.prepare(model, alive=alive)
    sparsifier.step()
    masks = sparsifier.squash_mask()
    assert all(np.array_equal(m, u) for m, u in zip(masks, user, strict=True))


def test_lifecycle_errors():
    sparsifier = MagnitudeSparsifier([0.5, 0.5, 0.5])
    with pytest.raises(CompressError, match=r"^the sparsifier is not prepared; call prepare\(model\) first$"):
        sparsifier.step()
    with pytest.raises(CompressError, match=r"^the sparsifier is not prepared; call prepare\(model\) first$"):
        sparsifier.squash_mask()
    model = mlp()
    sparsifier.prepare(model)
    with pytest.raises(CompressError, match=r"^the sparsifier is already prepared; call squash_mask\(\) before "):
        sparsifier.prepare(model)
    sparsifier.squash_mask()
    sparsifier.prepare(model)       # usable again
    sparsifier.squash_mask()


@pytest.mark.parametrize("densities, kwargs, error, message", [
    (0.5, {}, TypeError, r"^densities must be a sequence of floats or a mapping from layer names to densities, "
                         r"not float$"),
    (["0.5"], {}, TypeError, r"^density must be a real number, not '0.5'$"),
    ([True], {}, TypeError, r"^density must be a real number, not True$"),
    ([0.0], {}, CompressError, r"^density must be in \(0, 1\], not 0.0$"),
    ([1.5], {}, CompressError, r"^density must be in \(0, 1\], not 1.5$"),
    ({0: 0.5}, {}, TypeError, r"^layer names must be strings, not 0$"),
    ({"fc": "dense"}, {}, TypeError, r"^layer 'fc': give a density or a dict of options, not 'dense'$"),
    ({"fc": {"sparsity": 0.5}}, {}, CompressError,
     r"^layer 'fc': unknown option 'sparsity'; use density, granularity, block_size, balance_pes, norm$"),
    ({"fc": {"norm": 1}}, {}, CompressError, r"^layer 'fc': the options must include a density$"),
    ({"fc": {"density": 0.5, "block_size": 0, "granularity": "block"}}, {}, CompressError,
     r"^block size must be a positive integer, not 0$"),
    ([0.5], {"granularity": 1}, TypeError, r"^granularity must be a string, not 1$"),
    ([0.5], {"granularity": "kernel"}, CompressError,
     r"^granularity must be one of fine, vector, block, not 'kernel'$"),
    ([0.5], {"block_size": 2.0}, TypeError, r"^block size must be an integer, not 2.0$"),
    ([0.5], {"granularity": "vector", "block_size": 0}, CompressError,
     r"^block size must be a positive integer, not 0$"),
    ([0.5], {"balance_pes": "4"}, TypeError,
     r"^the number of PEs to balance over must be an integer or None, not '4'$"),
    ([0.5], {"balance_pes": 0}, CompressError,
     r"^the number of PEs to balance over must be a positive integer, not 0$"),
    ([0.5], {"norm": 2.0}, TypeError, r"^block norm must be an integer, not 2.0$"),
    ([0.5], {"norm": 3}, CompressError, r"^block norm must be 1 or 2, not 3$"),
    ([0.5], {"steps": 2.5}, TypeError, r"^the number of pruning steps must be an integer, not 2.5$"),
    ([0.5], {"steps": 0}, CompressError, r"^the number of pruning steps must be a positive integer, not 0$"),
])
def test_bad_sparsifier_arguments_are_rejected(densities, kwargs, error, message):
    with pytest.raises(error, match=message):
        MagnitudeSparsifier(densities, **kwargs)


@pytest.mark.parametrize("densities, alive, error, message", [
    ([0.5, 0.5], None, CompressError, r"^2 densities given for 3 layers; give one per layer$"),
    ({"fc1": 0.5}, None, CompressError,
     r"^the model has no nn.Linear named 'fc1'; its Linear layers are '0', '2', '4'$"),
    ([0.5] * 3, [None], CompressError, r"^1 alive masks given for 3 layers; give one per layer \(None = dense\)$"),
    ([0.5] * 3, np.ones((20, 12), bool), TypeError,
     r"^alive must be a sequence of masks, one per Linear layer \(None = dense\), not ndarray$"),
    ([0.5] * 3, [np.ones((12, 20), bool), None, None], CompressError,
     r"^alive mask 0 has shape \(12, 20\) but Linear layer 0 has weights of shape \(20, 12\); give one \(out, in\) "
     r"mask per layer$"),
])
def test_sparsifier_that_does_not_fit_the_model_is_rejected(densities, alive, error, message):
    model = mlp()
    sparsifier = MagnitudeSparsifier(densities)
    with pytest.raises(error, match=message):
        sparsifier.prepare(model, alive=alive)
    assert not any(torch_prune.is_pruned(layer) for layer in linear_layers(model))


def test_a_model_without_linear_layers_is_rejected():
    with pytest.raises(CompressError, match=r"^the model has no nn.Linear layer; EIE compresses fully-connected "):
        MagnitudeSparsifier([0.5]).prepare(nn.Sequential(nn.ReLU()))
    with pytest.raises(TypeError, match=r"^the model must be an nn.Module, not list$"):
        MagnitudeSparsifier([0.5]).prepare([nn.Linear(2, 2)])


def pruned_mlp(seed=0, amount=0.6):
    model = mlp(seed)
    for layer in linear_layers(model):
        torch_prune.l1_unstructured(layer, "weight", amount=amount)
    return model, [layer.weight_mask.numpy() != 0 for layer in linear_layers(model)]


def test_weight_sharer_in_a_user_loop_trains_centroids_and_never_index_zero():
    model, user = pruned_mlp()
    sharer = WeightSharer(weight_bits=3)
    sharer.prepare(model)       # removes the prune parametrization; its zeros stay pruned
    assert sorted(n for n, p in model.named_parameters() if p.requires_grad) == [
        f"{i}.{name}" for i in (0, 2, 4) for name in ("bias", "parametrizations.weight.original")]
    codebooks = [layer.parametrizations.weight.original for layer in linear_layers(model)]
    assert all(c.shape == (8,) for c in codebooks)
    before = [c.detach().clone() for c in codebooks]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-2)

    def pruned_weights_are_zero():
        for layer, mask, codebook in zip(linear_layers(model), user, codebooks, strict=True):
            assert codebook[0] == 0.0
            assert np.all(layer.weight.detach().numpy()[~mask] == 0.0)
    for _ in range(5):
        train_one_epoch(model, optimizer, batches(), pruned_weights_are_zero)
    layers = sharer.finalize()
    assert [(layer.name, layer.relu) for layer in layers] == [("0", True), ("2", True), ("4", False)]
    for layer, mask, old, lin in zip(layers, user, before, linear_layers(model), strict=True):
        assert np.array_equal(layer.index != 0, mask)
        assert layer.centroids[0] == 0.0 and not np.array_equal(layer.centroids, old.double().numpy())
        assert isinstance(lin.weight, nn.Parameter) and not hasattr(lin, "parametrizations")
        assert np.array_equal(lin.weight.detach().double().numpy(), layer.weight)
        assert np.array_equal(lin.bias.detach().double().numpy(), layer.bias)


def test_weight_sharer_starts_from_k_means_of_the_live_weights():
    model, user = pruned_mlp(1)
    reference = quantize_layers(model, user, [True, True, False], ["0", "2", "4"], 2, "density", 0)
    sharer = WeightSharer(weight_bits=2, init="density")
    sharer.prepare(model)
    assert all(np.array_equal(lin.weight.detach().double().numpy(), ref.weight)
               for lin, ref in zip(linear_layers(model), reference, strict=True))
    layers = sharer.finalize(relus=[False] * 3, names=["a", "b", "c"])    # untrained: the k-means result
    for layer, ref in zip(layers, reference, strict=True):
        assert np.array_equal(layer.index, ref.index) and np.array_equal(layer.centroids, ref.centroids)
    assert [(layer.name, layer.relu) for layer in layers] == [("a", False), ("b", False), ("c", False)]


def test_weight_sharer_masks_must_not_keep_a_zero():
    model, _ = pruned_mlp()
    with pytest.raises(CompressError, match=r"^the mask keeps \d+ weights that are exactly zero, and clustering them "
                                            r"would encode a pruned weight as non-zero; leave exact zeros out"):
        WeightSharer().prepare(model, [np.ones((20, 12), bool), None, None])


@pytest.mark.parametrize("kwargs, error, message", [
    ({"weight_bits": 4.0}, TypeError, r"^weight_bits must be an integer, not 4.0$"),
    ({"weight_bits": 0}, CompressError, r"^weight_bits must be an integer in 1..8, not 0$"),
    ({"weight_bits": 9}, CompressError, r"^weight_bits must be an integer in 1..8, not 9$"),
    ({"init": None}, TypeError, r"^k-means initialisation must be a string, not None$"),
    ({"init": "kmeans++"}, CompressError,
     r"^k-means initialisation must be one of linear, density, random, not 'kmeans\+\+'$"),
    ({"seed": "0"}, TypeError, r"^seed must be an integer, not '0'$"),
    ({"seed": -1}, CompressError, r"^seed must be a non-negative integer, not -1$"),
])
def test_bad_weight_sharer_arguments_are_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        WeightSharer(**kwargs)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        return self.b(x + self.a(x))


def test_weight_sharer_usage_errors():
    sharer, model = WeightSharer(), mlp()
    with pytest.raises(CompressError, match=r"^the weight sharer is not prepared; call prepare\(model\) first$"):
        sharer.finalize()
    with pytest.raises(CompressError, match=r"^2 masks given for 3 layers; give one per layer$"):
        sharer.prepare(model, [None, None])
    with pytest.raises(CompressError, match=r"^layer '2' has weights of shape \(9, 20\) but its mask has shape "
                                            r"\(20, 9\)$"):
        sharer.prepare(model, [None, np.ones((20, 9), bool), None])
    with pytest.raises(CompressError, match=r"^give masks or shared layers, not both$"):
        sharer.prepare(model, [None] * 3, shared=[])
    sharer.prepare(model)
    with pytest.raises(CompressError, match=r"^the weight sharer is already prepared; call finalize\(\) before "):
        sharer.prepare(model)
    with pytest.raises(CompressError, match=r"^2 relus and 3 names given for 3 layers; give one of each per layer$"):
        sharer.finalize(relus=[True, False])
    sharer.finalize()
    residual = Residual()
    sharer.prepare(residual)
    with pytest.raises(CompressError, match=r"^unsupported operation add at node 'add'"):
        sharer.finalize()
    layers = sharer.finalize(relus=[False, False])
    assert [layer.name for layer in layers] == ["a", "b"]
