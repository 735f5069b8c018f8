"""compress.dsd: the three phases of Dense-Sparse-Dense training."""

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as torch_prune
from torch import nn

from eie.compress.dsd import run_dsd
from eie.compress.prune import target_count
from eie.compress.train import Dataset, linear_layers
from eie.spec.errors import CompressError

torch.set_num_threads(1)


def setup(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3)).eval()
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(160, 10, generator=g)
    y = (x[:, :3] * torch.tensor([1.0, 2.0, 3.0])).argmax(dim=1)
    return model, Dataset(x[:128], y[:128], x[128:], y[128:])


def zeros(model):
    return [int((layer.weight == 0).sum()) for layer in linear_layers(model)]


def test_sparse_phase_prunes_each_layer_to_the_sparsity():
    model, data = setup()
    result = run_dsd(model, data, sparsity=0.75, dense_epochs=2, sparse_epochs=3, redense_epochs=0)
    assert zeros(result.model) == [240, 72]
    assert result.redense_accuracy == result.sparse_accuracy


def test_redense_phase_restores_the_pruned_connections():
    model, data = setup()
    before = [layer.weight.detach().clone() for layer in linear_layers(model)]
    result = run_dsd(model, data, sparsity=0.5, dense_epochs=2, sparse_epochs=2, redense_epochs=3)
    # Pruned weights restart at zero and train again; only those feeding or fed by a unit that is
    # never active on the data keep a zero gradient.
    assert sum(zeros(result.model)) < 0.1 * (160 + 48)
    for layer, old in zip(linear_layers(model), before, strict=True):
        assert torch.equal(layer.weight, old)
    for acc in (result.dense_accuracy, result.sparse_accuracy, result.redense_accuracy):
        assert 0.0 <= acc <= 100.0


def test_dsd_is_deterministic():
    model, data = setup(1)
    a = run_dsd(model, data, dense_epochs=1, sparse_epochs=1, redense_epochs=1, seed=3)
    b = run_dsd(model, data, dense_epochs=1, sparse_epochs=1, redense_epochs=1, seed=3)
    for x, y in zip(linear_layers(a.model), linear_layers(b.model), strict=True):
        assert np.array_equal(x.weight.detach().numpy(), y.weight.detach().numpy())


def user_pruned(how, model):
    """``model`` pruned by the user to 40%: the model to hand over, its ``alive`` and its support."""
    pruned = setup()[0]
    pruned.load_state_dict(model.state_dict())
    for layer in linear_layers(pruned):
        torch_prune.l1_unstructured(layer, "weight", amount=0.6)
    support = [layer.weight_mask.numpy() != 0 for layer in linear_layers(pruned)]
    if how == "attached":
        return pruned, None, support
    if how == "zeros":
        for layer in linear_layers(pruned):
            torch_prune.remove(layer, "weight")
        return pruned, None, support
    return model, support, support


@pytest.mark.parametrize("how", ["attached", "zeros", "alive"])
def test_dsd_never_leaves_the_users_support(how):
    model, data = setup()
    given, alive, support = user_pruned(how, model)
    kwargs = dict(sparsity=0.5, dense_epochs=2, sparse_epochs=2, lr=1e-2, alive=alive)
    sparse = run_dsd(given, data, redense_epochs=0, **kwargs)
    kept = [layer.weight.detach().numpy() != 0 for layer in linear_layers(sparse.model)]
    assert [int(k.sum()) for k in kept] == [target_count(int(s.sum()), 0.5) for s in support]
    assert all(np.all(k <= s) for k, s in zip(kept, support, strict=True))
    redense = run_dsd(given, data, redense_epochs=3, **kwargs)
    regrown = [layer.weight.detach().numpy() != 0 for layer in linear_layers(redense.model)]
    assert all(np.all(r <= s) for r, s in zip(regrown, support, strict=True))
    assert all(r.sum() > k.sum() for r, k in zip(regrown, kept, strict=True))


@pytest.mark.parametrize("sparsity", [0.0, 1.0])
def test_sparsity_must_leave_something_and_remove_something(sparsity):
    model, data = setup()
    with pytest.raises(CompressError, match=r"^the DSD sparsity must be in \(0, 1\), not"):
        run_dsd(model, data, sparsity=sparsity)
