"""eie-gen: sparse, compressed neural-network inference accelerators (EIE/ESE) from Python.

A PyTorch model goes in; out come weight-shared sparse SRAM images for an array of processing
elements, a bit-exact golden model of what the hardware computes, and the Amaranth HDL of the array.

>>> import eie
>>> result = eie.compress_model(model, data=(x, y), pes=4)      # doctest: +SKIP
>>> result.golden(x_test)                                        # doctest: +SKIP

Layers of the package (each imports only from those below it; ``make test`` checks this):

================= =================================================================================
``eie.cli``       the ``eie`` command
``eie.api``       :func:`compress_model`, :class:`Compressed`, :func:`load`
``eie.flow``      end-to-end flows (model → images → golden → RTL) and their reports
``eie.lstm_flow`` the same for LSTMs on the ESE array (``eie.flow`` hands them over)
``eie.tb``        cocotb testbenches and the Verilator runner
``eie.compress``  model import, pruning, weight sharing, training, calibration (PyTorch)
``eie.sim``       golden model, float reference, cycle figures (NumPy)
``eie.hw``        the PE array in Amaranth HDL
``eie.spec``      configuration, numerics, the integer network and the image format
================= =================================================================================
"""

from eie.api import Compressed, Verification, compress_model, load
from eie.spec.config import EIEConfig
from eie.spec.errors import CompressError, ConfigError, EIEError, FitError, ImageError, InputError

__all__ = ["compress_model", "load", "Compressed", "Verification", "EIEConfig", "EIEError", "CompressError",
           "ConfigError", "FitError", "ImageError", "InputError"]
