"""compress.pipeline and compress.digits: end-to-end targets, determinism, options and data checks."""

import io

import numpy as np
import pytest
import torch
from rich.console import Console

from eie.compress.digits import DigitsMLP, load_digits_split, train_default_model
from eie.compress.pipeline import CompressOptions, rich_progress, run_pipeline
from eie.compress.train import Dataset, evaluate
from eie.spec.errors import CompressError, EIEError

torch.set_num_threads(1)

QUICK = dict(prune_steps=2, retrain_epochs=2, finetune_epochs=1, dsd_epochs=1)


@pytest.fixture(scope="module")
def data():
    return load_digits_split(0)


@pytest.fixture(scope="module")
def model(data):
    return train_default_model(0, data)


@pytest.fixture(scope="module")
def default_result(model, data):
    """The pipeline at Deep Compression's operating point for LeNet-300-100: 4.1% of the weights."""
    return run_pipeline(model, data, CompressOptions(target_density=0.041))


def test_digits_split_is_stratified_scaled_and_deterministic(data):
    assert [tuple(t.shape) for t in data[:4]] == [(1347, 64), (1347,), (450, 64), (450,)]
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert float(data.x_train.min()) == 0.0 and float(data.x_train.max()) == 1.0
    per_class = np.bincount(data.y_train.numpy()) + np.bincount(data.y_test.numpy())
    assert np.abs(np.bincount(data.y_test.numpy()) - per_class / 4).max() <= 1
    assert all(torch.equal(a, b) for a, b in zip(data[:4], load_digits_split(0)[:4], strict=True))


def test_default_model_is_accurate_and_deterministic(model, data):
    assert isinstance(model, DigitsMLP)
    assert evaluate(model, data) >= 97.0
    again = train_default_model(0, data)
    pairs = zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_default_pipeline_reaches_deep_compression_targets(default_result):
    r = default_result
    assert r.storage.ratio >= 40.0
    assert r.score_loss <= 0.5
    assert r.float_score >= 97.0
    assert [s.name for s in r.storage.stages] == ["dense", "pruned", "shared", "huffman"]
    assert r.sensitivity is not None and r.sensitivity.overall_density <= r.options.target_density


def test_result_is_consistent(default_result, data):
    r = default_result
    for layer, mask, density, stats in zip(r.shared_layers, r.masks, r.densities, r.storage.layers,
                                           strict=True):
        assert np.array_equal(layer.index != 0, mask)
        assert abs(int(mask.sum()) - density * mask.size) <= 0.5
        assert stats.nnz == mask.sum()
    model = r.shared_model()
    for lin, layer in zip([model[0], model[2], model[4]], r.shared_layers, strict=True):
        assert np.array_equal(lin.weight.detach().numpy().astype(np.float64), layer.centroids[layer.index])
    assert evaluate(model, data) == r.quantized_score
    assert [row["layer"] for row in r.layer_rows()] == ["0", "2", "4"]
    assert [layer.relu for layer in r.shared_layers] == [True, True, False]


def test_pipeline_is_bit_for_bit_deterministic(model, data):
    options = CompressOptions(kmeans_init="random", dsd=True, seed=3, **QUICK)
    a, b = run_pipeline(model, data, options), run_pipeline(model, data, options)
    for x, y in zip(a.shared_layers, b.shared_layers, strict=True):
        assert np.array_equal(x.index, y.index) and np.array_equal(x.centroids, y.centroids)
        assert np.array_equal(x.bias, y.bias)
    assert a.quantized_score == b.quantized_score and a.dsd.redense_accuracy == b.dsd.redense_accuracy


def test_balanced_vector_pipeline_with_given_densities(model, data):
    options = CompressOptions(densities=[0.25, 0.1, 0.5], granularity="vector", block_size=4, balance_pes=4,
                              **QUICK)
    r = run_pipeline(model, data, options)
    assert r.sensitivity is None
    for mask, stats in zip(r.masks, r.storage.layers, strict=True):
        assert len({int(mask[p::4].sum()) for p in range(4)}) == 1
        assert stats.blocks * 4 == stats.nnz       # one relative index per 1x4 vector


def test_progress_reaches_rich(model, data):
    console = Console(file=io.StringIO(), force_terminal=False)
    seen = []
    with rich_progress(console) as update:
        def progress(description, completed, total):
            seen.append(description)
            update(description, completed, total)
        run_pipeline(model, data, CompressOptions(densities=[0.5, 0.5, 0.5], **QUICK), progress)
    assert {"sensitivity analysis", "prune and retrain", "weight sharing"} <= set(seen)


@pytest.mark.parametrize("kwargs, message", [
    ({"weight_bits": 0}, r"^weight_bits must be an integer in 1..8, not 0"),
    ({"index_bits": 9}, r"^index_bits must be an integer in 1..8, not 9"),
    ({"densities": [0.5, 1.5, 0.1]}, r"^densities must be fractions in \(0, 1\], one per layer"),
    ({"target_density": 0}, r"^target_density must be in \(0, 1\], not 0"),
    ({"target_density": 0.1, "densities": [0.1]}, r"^give densities or target_density, not both"),
    ({"granularity": "filter"}, r"^granularity must be one of fine, vector, block, not 'filter'"),
    ({"block_size": 0}, r"^block_size must be a positive integer, not 0"),
    ({"balance_pes": 0}, r"^balance_pes must be a positive integer or None, not 0"),
    ({"prune_steps": 0}, r"^prune_steps must be a positive integer, not 0"),
    ({"retrain_epochs": -1}, r"^retrain_epochs must be a non-negative integer, not -1"),
    ({"lr": 0.0}, r"^lr must be positive, not 0.0"),
    ({"weight_decay": -1.0}, r"^weight_decay must be non-negative, not -1.0"),
    ({"kmeans_init": "forgy"}, r"^kmeans_init must be one of linear, density, random, not 'forgy'"),
    ({"dsd_sparsity": 1.0}, r"^dsd_sparsity must be in \(0, 1\), not 1.0"),
    ({"ptr_bits": 0}, r"^ptr_bits must be a positive integer or None, not 0"),
])
def test_bad_options_are_rejected(kwargs, message):
    with pytest.raises(CompressError, match=message):
        CompressOptions(**kwargs)


def bad_data(data, **changes):
    return Dataset(**{**data._asdict(), **changes})


@pytest.mark.parametrize("change, message", [
    (lambda d: {"x_train": d.x_train[:, :10]}, r"^x_train has shape \(1347, 10\) but the model takes \(batch, 64\)"),
    (lambda d: {"x_test": d.x_test[:, :10]},
     r"^x_test has shape \(450, 10\) but the model takes \(batch, 64\)"),
    (lambda d: {"y_train": d.y_train + 5}, r"^y_train has labels outside 0..9 \(the model has 10 outputs\)"),
    (lambda d: {"y_test": d.y_test.float()}, r"^y_test must be int64 class labels of shape \(450,\)"),
    (lambda d: {"x_train": d.x_train.clone().fill_(float("nan"))},
     r"^x_train contains NaN or infinite values"),
])
def test_data_that_does_not_fit_the_model_is_rejected(model, data, change, message):
    with pytest.raises(EIEError, match=message):
        run_pipeline(model, bad_data(data, **change(data)), CompressOptions(**QUICK))


def test_density_count_must_match_the_layers(model, data):
    with pytest.raises(CompressError, match=r"^2 densities given but the model has 3 layers"):
        run_pipeline(model, data, CompressOptions(densities=[0.1, 0.1], **QUICK))
