"""The Python API: compress a model in one call and run what comes out.

>>> import eie
>>> result = eie.compress_model(model, data=(x, y), pes=4)      # doctest: +SKIP
>>> result.report["compression_ratio"], result.report["scores"]["golden"]
>>> y_hw = result.golden(x_new)            # what the hardware computes, bit-exact
>>> result.verify(x_new[:8]).bit_exact     # the generated RTL on Verilator agrees
>>> result.rtl("rtl/")                     # Verilog with the memories initialised from the images

:func:`compress_model` runs the same flow as ``eie compress`` (:func:`eie.flow.compress`);
:func:`load` opens images written earlier.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eie.spec.config import EIEConfig
from eie.spec.image import Images

__all__ = ["Compressed", "Verification", "compress_model", "load"]


@dataclass(frozen=True)
class Verification:
    """The golden model and the RTL on the same inputs.

    Attributes
    ----------
    bit_exact : bool
        Every output of the RTL equals the golden model's.
    mismatches : int
        Outputs that differ.
    cycles : numpy.ndarray
        Clock cycles per input.
    report : dict
        JSON-serialisable figures (:func:`eie.report.rtl_report`): cycles per layer against the
        ideal, the first mismatch if any.
    """

    bit_exact: bool
    mismatches: int
    cycles: np.ndarray
    report: dict


class Compressed:
    """A compressed model: its SRAM images, its report, and the models that run the images.

    Parameters
    ----------
    images : Images or path-like
        Loaded images, or an image directory.
    report : dict, optional
        The compression report; default ``report.json`` of the image directory, if there is one.
    """

    def __init__(self, images, report: dict | None = None):
        if not isinstance(images, Images):
            from eie.spec.ese_image import open_images
            images = open_images(images)
        self.images = images
        if report is None and images.path is not None and (images.path / "report.json").is_file():
            import json
            report = json.loads((images.path / "report.json").read_text())
        self.report = report or {}

    @property
    def path(self) -> Path | None:
        """The image directory."""
        return self.images.path

    @property
    def config(self) -> EIEConfig:
        """The hardware configuration the images were made for."""
        return self.images.config

    @property
    def is_lstm(self) -> bool:
        """Whether these are ESE images of an LSTM (inputs are sequences ``(batch, steps, features)``)."""
        from eie.spec.ese_image import LSTMImages
        return isinstance(self.images, LSTMImages)

    def __repr__(self) -> str:
        if self.is_lstm:
            info = self.images.lstm
            ratio = self.report.get("gate_compression_ratio")
            extra = f", gate matrices {ratio:.1f}x smaller" if ratio else ""
            return (f"<Compressed LSTM {info.input_size} → {info.hidden_size} → {self.images.n_out} on "
                    f"{self.config.n_pe} PEs{extra}, images {self.path}>")
        shape = " → ".join([str(self.images.n_in)] + [str(l.n_out) for l in self.images.layers])
        ratio = self.report.get("compression_ratio")
        extra = f", {ratio:.1f}x smaller" if ratio else ""
        return f"<Compressed {shape} on {self.config.n_pe} PEs{extra}, images {self.path}>"

    def golden(self, x, *, raw: bool = False) -> np.ndarray:
        """Outputs of the bit-exact golden model for a batch ``x``.

        ``x`` is ``(batch, n_in)`` floats (or ``(batch, *input_shape)`` for a model that flattens);
        the outputs are floats. With ``raw``, ``x`` and the outputs are integer activations.
        Inputs outside the calibrated range are saturated, with a :class:`UserWarning`.
        """
        from eie.sim.golden import run_golden
        from eie.spec.numerics import dequantize_output
        prepared = self._inputs(x, raw)
        if self.is_lstm:
            from eie.sim.lstm import run_lstm_golden
            y = run_lstm_golden(self.images, prepared.x_int).outputs
        else:
            y = run_golden(self.images, prepared.x_int)
        return y if raw else dequantize_output(y, self.images.output_frac_bits)

    def verify(self, x, *, raw: bool = False, queue_depth: int | None = None) -> Verification:
        """Run ``x`` through the golden model and the generated RTL on Verilator and compare them."""
        from eie.flow import run_rtl
        from eie.report import rtl_report
        prepared = self._inputs(x, raw)
        if self.is_lstm:
            from eie.lstm_flow import rtl_report as lstm_rtl_report
            from eie.lstm_flow import run_lstm_rtl
            run = run_lstm_rtl(self.images, prepared.x_int, queue_depth=queue_depth)
            report = lstm_rtl_report(self.images, run)
        else:
            run = run_rtl(self.images, prepared.x_int, queue_depth=queue_depth)
            report = rtl_report(self.images, run)
        return Verification(bit_exact=run.bit_exact, mismatches=report["mismatches"],
                            cycles=np.asarray(run.sim.cycles), report=report)

    def rtl(self, path, *, name: str = "eie_top") -> Path:
        """Write the Verilog of the array with its memories initialised from the images; returns
        the ``.v`` file."""
        from eie.flow import write_rtl
        return write_rtl(self.config, path, name=name, images=self.images)

    def save(self, path) -> Path:
        """Copy the image directory (images and report) to ``path``; returns it."""
        path = Path(path)
        if path.exists():
            raise FileExistsError(f"{path} exists; choose a new directory")
        shutil.copytree(self.path, path)
        return path

    def _inputs(self, x, raw: bool):
        import warnings

        from eie.inputs import prepare_inputs
        if self.is_lstm:
            from eie.lstm_flow import prepare_lstm_inputs
            prepared = prepare_lstm_inputs(self.images, x, raw=raw)
        else:
            prepared = prepare_inputs(self.images, x, raw=raw)
        message = prepared.warning(self.images)
        if message:
            warnings.warn(message.removeprefix("warning: "), UserWarning, stacklevel=3)
        return prepared


def compress_model(model, data=None, *, calib=None, pes: int | None = None, config: EIEConfig | None = None,
                   board: str | None = None, density=None, target_density: float | None = None, budget: float = 0.5,
                   allow_loss: bool = False, keep_sparsity: bool | None = None, task: str | None = None,
                   arch: str | None = None, out=None, seed: int = 0, verbose: bool = False,
                   **options) -> Compressed:
    """Compress a PyTorch model into EIE images in one call.

    Parameters
    ----------
    model : torch.nn.Module or path-like
        A chain of Linear layers with ReLU between them (Flatten, Dropout, Identity, BatchNorm1d and
        a trailing softmax are handled), possibly already pruned; or a saved model file (whole
        module, state dict with ``arch``, or TorchScript).
    data : optional
        Tensors, NumPy arrays, a ``(x, y)`` or ``(x_train, y_train, x_test, y_test)`` tuple, a dict,
        a ``DataLoader`` (or a ``(train, test)`` pair), a file, or ``"digits"``. Integer labels make
        a classification task, float targets a regression task (:mod:`eie.compress.data`).
    calib : optional
        Calibration inputs; alone (no ``data``), the compressed model is retrained and judged
        against the input model's own outputs.
    pes : int, optional
        Processing elements (default 4; ignored when ``config`` is given without ``board``).
    config : EIEConfig, optional
        The full hardware configuration (with ``board``: its widths and queue depth).
    board : str, optional
        Size the array for this board (``constraints/NAME.toml``, as ``eie compress --board``): the
        most PEs that fit, or ``pes`` of them, with memories sized for the model and the device;
        :class:`~eie.FitError` with the numbers when the model does not fit.
    density : float or sequence of float, optional
        Fraction of the weights each layer keeps (one value applies to every layer).
    target_density : float, optional
        Fraction of all weights to keep, spread over the layers by sensitivity.
    budget : float
        Points of the task's score the golden model may lose (default 0.5); without ``density``
        the highest compression within it is chosen.
    allow_loss, keep_sparsity, task, arch, seed
        As for ``eie compress`` (:func:`eie.flow.compress`).
    out : path-like, optional
        Image directory; default a new temporary directory.
    verbose : bool
        Print progress lines.
    **options
        :class:`~eie.compress.pipeline.CompressOptions` fields (``granularity``, ``block_size``,
        ``kmeans_init``, ``dsd``, ``prune_steps``, ``retrain_epochs``, ``finetune_epochs``, ...) and
        ``balance=True`` for load-balance-aware pruning over the PEs.

    Returns
    -------
    Compressed

    Raises
    ------
    eie.EIEError
        One line saying what is wrong and how to fix it (``BudgetError`` when the budget is missed).
    TypeError
        An unknown option.
    """
    from eie import flow
    from eie.compress.pipeline import CompressOptions
    if config is None:
        config = EIEConfig() if pes is None else EIEConfig(n_pe=pes)
    known = {f.name for f in dataclasses.fields(CompressOptions)} - {"weight_bits", "index_bits", "densities",
                                                                      "target_density", "balance_pes", "seed"}
    unknown = sorted(set(options) - known - {"balance"})
    if unknown:
        raise TypeError(f"compress_model() got unknown option(s) {', '.join(unknown)}; known: "
                        f"{', '.join(sorted(known | {'balance'}))}")
    balance = options.pop("balance", False)
    if density is not None:
        density = (float(density),) if np.ndim(density) == 0 else tuple(float(d) for d in density)
    opts = CompressOptions(weight_bits=config.weight_bits, index_bits=config.index_bits,
                           densities=density, target_density=target_density,
                           balance_pes=config.n_pe if balance else None, seed=seed, **options)
    log = print if verbose else (lambda line: None)
    outcome = flow.compress(model, data, calib, config=config, options=opts, out=out, budget=budget,
                            allow_loss=allow_loss, keep_sparsity=keep_sparsity, task=task, arch=arch, board=board,
                            board_pes=pes if board is not None else None, log=log)
    return Compressed(outcome.images, outcome.report)


def load(path) -> Compressed:
    """Open an image directory written by ``eie compress`` or :func:`compress_model`."""
    return Compressed(path)
