"""compress.quantize: k-means weight sharing, the reserved zero slot, centroid gradients, fine-tuning."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as torch_prune
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

from eie.compress.prune import iterative_prune
from eie.compress.quantize import (
    SharedLayer,
    SharedLinear,
    centroid_gradients,
    finetune_centroids,
    init_centroids,
    kmeans_1d,
    quantize_layers,
    share_weights,
    shared_module,
    with_codebook,
)
from eie.compress.train import Dataset, linear_layers
from eie.spec.errors import CompressError

torch.set_num_threads(1)


def naive_lloyd(values, centroids):
    """Textbook Lloyd: nearest centroid (ties to the larger), mean of members, until stable."""
    centroids = list(centroids)
    while True:
        labels = []
        for v in values:
            dist = [abs(v - c) for c in centroids]
            best = min(dist)
            labels.append(max(k for k, d in enumerate(dist) if d == best))
        members = [[v for v, l in zip(values, labels, strict=True) if l == k] for k in range(len(centroids))]
        new = [np.mean(m) if m else c for m, c in zip(members, centroids, strict=True)]
        if new == centroids:
            return np.array(new), np.array(labels)
        centroids = new


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.integers(8, 60), elements=st.floats(-1, 1, width=32).filter(lambda v: v != 0)),
       st.integers(2, 7))
def test_kmeans_matches_the_naive_reference(values, k):
    centroids, labels = kmeans_1d(values, k)
    if np.unique(values).size <= k:
        assert np.array_equal(centroids[labels], values)
        return
    ref_c, ref_l = naive_lloyd(values, init_centroids(np.sort(values), k))
    used = np.unique(ref_l)
    assert np.allclose(centroids, ref_c[used], rtol=0, atol=1e-12)
    assert np.allclose(centroids[labels], ref_c[ref_l], rtol=0, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), st.integers(1, 6), st.floats(0.05, 1.0),
       st.sampled_from(["linear", "density", "random"]), st.integers(0, 2**31))
def test_shared_weights_never_use_slot_zero_for_kept_weights(n_out, n_in, bits, density, init, seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n_out, n_in))
    mask = rng.random((n_out, n_in)) < density
    index, centroids = share_weights(w, mask, bits, init, seed)
    assert index.dtype == np.uint8 and centroids.dtype == np.float64 and centroids.shape == (2**bits,)
    assert centroids[0] == 0.0
    assert np.array_equal(index != 0, mask)
    used = np.unique(index[mask])
    assert np.all(centroids[used] != 0.0)
    unused = np.setdiff1d(np.arange(1, 2**bits), used)
    assert np.all(centroids[unused] == 0.0)
    assert np.all(np.diff(centroids[used]) > 0)
    assert np.array_equal(centroids.astype(np.float32).astype(np.float64), centroids)


def test_few_distinct_weights_are_kept_exactly():
    w = np.array([[0.5, -0.25, 0.5], [0.125, 0.0, -0.25]])
    mask = np.array([[True, True, True], [True, False, True]])
    index, centroids = share_weights(w, mask, 4)
    assert centroids.tolist() == [0.0, -0.25, 0.125, 0.5] + [0.0] * 12
    assert np.array_equal(centroids[index], w)


def test_a_cluster_averaging_to_zero_is_nudged_off_zero():
    w = np.array([[-1.0, 1.0, -1.0, 1.0, 0.0]])
    mask = np.array([[True, True, True, True, False]])
    index, centroids = share_weights(w, mask, 1)        # one cluster: mean exactly 0
    assert index.tolist() == [[1, 1, 1, 1, 0]]
    assert centroids[1] == np.finfo(np.float32).tiny
    index, centroids = share_weights(-w - 0.5 * mask, mask, 1)
    assert centroids[1] == -0.5


def test_linear_init_spans_min_to_max_and_random_init_is_seeded():
    x = np.sort(np.random.default_rng(0).normal(size=1000))
    lin = init_centroids(x, 5, "linear")
    assert lin[0] == x[0] and lin[-1] == x[-1] and np.allclose(np.diff(lin), np.diff(lin)[0])
    assert np.array_equal(init_centroids(x, 5, "random", 3), init_centroids(x, 5, "random", 3))
    with pytest.raises(CompressError, match=r"^k-means initialisation must be one of linear, density"):
        init_centroids(x, 5, "kmeans++")


def test_a_mask_that_keeps_an_exact_zero_is_rejected():
    w = np.array([[0.5, 0.0, -0.25], [0.0, 0.125, 0.0]])
    with pytest.raises(CompressError, match=r"^the mask keeps 2 weights that are exactly zero, and clustering them "
                                            r"would encode a pruned weight as non-zero; leave exact zeros out of "
                                            r"the mask$"):
        share_weights(w, np.array([[True, True, True], [True, True, False]]), 4)
    index, _ = share_weights(w, w != 0, 1)
    assert np.array_equal(index != 0, w != 0)


@pytest.mark.parametrize("how", ["attached", "zeros"])
def test_a_ten_percent_model_asked_for_twenty_percent_keeps_its_mask_and_its_zeros(how):
    """The reported bug: 0.2 on a 10% model kept zeros, and k-means gave them non-zero codes."""
    torch.manual_seed(0)
    layers = []
    for n_in, n_out in itertools.pairwise((64, 128, 64, 10)):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    for layer in linear_layers(model):
        torch_prune.l1_unstructured(layer, "weight", amount=0.9)
    user = [layer.weight_mask.numpy() != 0 for layer in linear_layers(model)]
    if how == "zeros":
        for layer in linear_layers(model):
            torch_prune.remove(layer, "weight")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(128, 64, generator=g)
    y = (x[:, :10] * torch.arange(1, 11)).argmax(dim=1)
    data = Dataset(x[:96], y[:96], x[96:], y[96:])
    pruned = iterative_prune(model, data, [0.2] * 3, steps=2, epochs=1, lr=1e-2)
    assert all(np.array_equal(mask, keep) for mask, keep in zip(pruned.masks, user, strict=True))
    shared = quantize_layers(pruned.model, pruned.masks, [True, True, False], ["0", "2", "4"])
    shared = finetune_centroids(shared, data, epochs=1, lr=1e-2)
    for layer, keep in zip(shared, user, strict=True):
        assert np.array_equal(layer.index == 0, ~keep)
        assert np.all(layer.weight[~keep] == 0.0) and np.all(layer.weight[keep] != 0.0)


def test_trained_codebooks_are_rounded_and_nudged_off_zero_with_the_old_sign():
    layer = SharedLayer(index=np.array([[1, 0, 2], [3, 1, 0]], dtype=np.uint8),
                        centroids=np.array([0.0, -0.5, 0.25, 0.75, 0.0, 0.0, 0.0, 0.0]), bias=np.zeros(2),
                        relu=True, name="fc")
    tuned = with_codebook(layer, np.array([3.0, 0.0, 0.0, 0.1, 9.0, 0.0, 0.0, 0.0]), np.ones(2))
    tiny = np.finfo(np.float32).tiny
    assert tuned.centroids.tolist() == [0.0, -tiny, tiny, float(np.float32(0.1)), 0.0, 0.0, 0.0, 0.0]
    assert np.array_equal(tuned.index, layer.index) and tuned.bias.tolist() == [1.0, 1.0]
    assert (tuned.relu, tuned.name) == (True, "fc")


def test_weight_bits_out_of_range_is_rejected():
    with pytest.raises(CompressError, match=r"^weight_bits must be an integer in 1..8, not 9"):
        share_weights(np.ones((2, 2)), np.ones((2, 2), bool), 9)


def test_millions_of_weights_cluster_deterministically():
    # How fast: benchmarks/compress_alexnet_fc6.py (make bench) times this size beside the rest.
    rng = np.random.default_rng(0)
    w = rng.normal(size=(1700, 2000)).astype(np.float32).astype(np.float64)  # 3.4 M weights
    mask = rng.random(w.shape) < 0.9
    index, centroids = share_weights(w, mask, 4)
    index2, centroids2 = share_weights(w, mask, 4)
    assert np.array_equal(index, index2) and np.array_equal(centroids, centroids2)
    assert np.unique(index[mask]).size == 15


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(2, 16), st.integers(0, 2**31))
def test_centroid_gradients_equal_the_grouped_sum(n_out, n_in, size, seed):
    g = torch.Generator().manual_seed(seed)
    grad = torch.randn(n_out, n_in, dtype=torch.float64, generator=g)
    index = torch.randint(0, size, (n_out, n_in), generator=g)
    expected = torch.zeros(size, dtype=torch.float64)
    for i in range(n_out):
        for j in range(n_in):
            if index[i, j] != 0:
                expected[index[i, j]] += grad[i, j]
    assert torch.allclose(centroid_gradients(grad, index, size), expected, rtol=0, atol=1e-12)


def test_shared_linear_backward_is_the_grouped_sum_of_the_dense_gradient():
    layer = SharedLayer(index=np.array([[1, 0, 2], [2, 1, 0]], dtype=np.uint8),
                        centroids=np.array([0.0, 0.5, -0.25, 0.0]), bias=np.zeros(2), relu=False, name="l")
    shared = SharedLinear(layer, dtype=torch.float64)
    dense = torch.nn.Linear(3, 2, dtype=torch.float64)
    with torch.no_grad():
        dense.weight.copy_(torch.as_tensor(layer.weight))
        dense.bias.zero_()
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]], dtype=torch.float64)
    (shared(x) ** 2).sum().backward()
    (dense(x) ** 2).sum().backward()
    w_grad = dense.weight.grad
    assert torch.allclose(shared.codebook.grad, torch.stack([
        torch.tensor(0.0, dtype=torch.float64), w_grad[0, 0] + w_grad[1, 1], w_grad[0, 2] + w_grad[1, 0],
        torch.tensor(0.0, dtype=torch.float64)]))


def toy_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(128, 10, generator=g)
    y = (x[:, :3] * torch.tensor([1.0, 2.0, 3.0])).argmax(dim=1)
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out, relu in [(10, 16, True), (16, 3, False)]:
        mask = rng.random((n_out, n_in)) < 0.4
        index, centroids = share_weights(rng.normal(size=(n_out, n_in)), mask, 3)
        layers.append(SharedLayer(index=index, centroids=centroids, bias=np.zeros(n_out), relu=relu,
                                  name=f"fc{n_in}"))
    return layers, Dataset(x[:96], y[:96], x[96:], y[96:])


def test_finetuning_moves_centroids_keeps_indices_and_zeros():
    layers, data = toy_problem()
    tuned = finetune_centroids(layers, data, epochs=5, lr=1e-2)
    for old, new in zip(layers, tuned, strict=True):
        assert np.array_equal(old.index, new.index)
        assert new.centroids[0] == 0.0
        used = np.unique(new.index[new.index > 0])
        unused = np.setdiff1d(np.arange(1, new.centroids.size), used)
        assert np.all(new.centroids[unused] == 0.0) and np.all(new.centroids[used] != 0.0)
        assert not np.array_equal(old.centroids, new.centroids)
        assert np.all(new.weight[new.index == 0] == 0.0)
    model = shared_module(tuned)
    for lin, layer in zip([model[0], model[2]], tuned, strict=True):
        assert np.array_equal(lin.weight.detach().numpy().astype(np.float64), layer.weight)


def test_finetuning_is_deterministic():
    layers, data = toy_problem(1)
    a = finetune_centroids(layers, data, epochs=3, lr=1e-2, seed=5)
    b = finetune_centroids(layers, data, epochs=3, lr=1e-2, seed=5)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.centroids, y.centroids) and np.array_equal(x.bias, y.bias)
