"""The float reference: the compressed (pruned, weight-shared) model in PyTorch.

It is rebuilt from an image directory alone: the sparsity pattern and codebook indices come
from the decoded images, the float centroids and biases from the manifest's ``reference``
section. Its accuracy next to the golden model's shows what fixed point costs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from eie.spec.image import ImageError, Images, decode_layer

__all__ = ["reference_model", "reference_forward_float"]


def reference_model(images: Images) -> nn.Sequential:
    """``nn.Sequential`` of Linear (+ReLU) layers with the shared float weights of ``images``."""
    ref = images.manifest.get("reference", {}).get("layers")
    if not isinstance(ref, list) or len(ref) != len(images.layers):
        raise ImageError("manifest.json has no float reference for every layer; re-run eie compress")
    mods = []
    for l, info in enumerate(images.layers):
        rows, cols, v = decode_layer(images, l)
        centroids = np.asarray(ref[l]["centroids"], dtype=np.float64)
        w = np.zeros((info.n_out, info.n_in))
        keep = v > 0
        w[rows[keep], cols[keep]] = centroids[v[keep]]
        lin = nn.Linear(info.n_in, info.n_out, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.tensor(ref[l]["bias"], dtype=torch.float64))
        mods.append(lin)
        if info.relu:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).eval()


def reference_forward_float(images: Images, x: np.ndarray) -> np.ndarray:
    """Float outputs of the reference model for float inputs ``x`` ``(batch, n_in)``."""
    with torch.no_grad():
        return reference_model(images)(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()
