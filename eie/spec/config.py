"""The hardware configuration of an EIE processing-element array.

One :class:`EIEConfig` fixes every parameter that the SRAM images, the golden
model and the generated RTL must agree on. It is pure Python (no Amaranth
import) so that ``compress/`` and ``sim/`` can use it without the HDL.

The configuration is hashed (:meth:`EIEConfig.config_hash`) and the hash is
written into every image manifest; the RTL generator and the golden model
refuse images whose hash differs from the configuration they are given.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from eie.spec.errors import ConfigError

__all__ = ["EIEConfig", "ConfigError"]


def _check_int(name, value, lo, hi=None):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ConfigError(f"{name} must be {bound}, not {value}")


@dataclass(frozen=True)
class EIEConfig:
    """Parameters of an EIE PE array and of the images made for it.

    All parameters are keyword-only and validated on construction.

    Parameters
    ----------
    n_pe : int
        Number of processing elements (1..256, any integer). Row ``i`` of
        every layer lives in PE ``i % n_pe``.
    weight_bits : int
        Width ``b`` of the codebook (weight) index ``v``. The codebook of a
        layer has ``2**b`` entries; entry 0 is the zero weight used by padding
        entries, so k-means finds ``2**b - 1`` shared non-zero weights.
    index_bits : int
        Width of the relative row index ``z``; a zero run longer than
        ``2**index_bits - 1`` is broken by padding entries.
    act_bits : int
        Width of activations and codebook values (two's complement).
    acc_bits : int
        Width of the per-row accumulators. The compressor proves, per layer,
        that no partial sum can exceed it (see ``docs/numerics.md``).
    entries_per_word : int
        ``(v, z)`` entries per sparse-matrix SRAM word (EIE: 8 entries of 8
        bits in a 64-bit word).
    ptr_bits : int
        Width of a column pointer (EIE: 16).
    mat_depth : int
        Sparse-matrix SRAM words per PE.
    ptr_depth : int
        Pointer SRAM entries per PE (both banks together; must be even).
    max_rows_per_pe : int
        Depth of each PE's activation register files and accumulators: the
        largest layer width divided by ``n_pe``, rounded up, must fit.
    bias_depth : int
        Bias SRAM entries per PE (all layers' rows of that PE).
    max_layers : int
        Layers the layer table and codebook SRAM hold.
    max_shift : int
        Largest requantisation shift a layer may use.
    queue_depth : int
        Depth of each PE's activation queue (FIFO). Not part of the image
        contract: it changes timing, never results, so it is left out of
        :meth:`config_hash`.
    """

    n_pe: int = 4
    weight_bits: int = 4
    index_bits: int = 4
    act_bits: int = 16
    acc_bits: int = 40
    entries_per_word: int = 8
    ptr_bits: int = 16
    mat_depth: int = 2048
    ptr_depth: int = 2048
    max_rows_per_pe: int = 512
    bias_depth: int = 1024
    max_layers: int = 8
    max_shift: int = 31
    queue_depth: int = field(default=8, compare=False)

    def __post_init__(self):
        _check_int("n_pe", self.n_pe, 1, 256)
        _check_int("weight_bits", self.weight_bits, 1, 8)
        _check_int("index_bits", self.index_bits, 1, 8)
        _check_int("act_bits", self.act_bits, 2, 18)
        _check_int("acc_bits", self.acc_bits, 2 * self.act_bits, 62)
        _check_int("entries_per_word", self.entries_per_word, 1, 64)
        _check_int("ptr_bits", self.ptr_bits, 1, 32)
        _check_int("mat_depth", self.mat_depth, 1)
        _check_int("ptr_depth", self.ptr_depth, 2)
        _check_int("max_rows_per_pe", self.max_rows_per_pe, 1)
        _check_int("bias_depth", self.bias_depth, 1)
        _check_int("max_layers", self.max_layers, 1, 256)
        _check_int("max_shift", self.max_shift, 0, self.acc_bits - 1)
        _check_int("queue_depth", self.queue_depth, 1, 4096)
        if self.ptr_depth % 2:
            raise ConfigError(
                f"ptr_depth must be even (the pointer SRAM is two banks, even and odd), "
                f"not {self.ptr_depth}")
        if self.mat_depth * self.entries_per_word > 2 ** self.ptr_bits - 1:
            raise ConfigError(
                f"mat_depth * entries_per_word = {self.mat_depth * self.entries_per_word} entries "
                f"(plus the end pointer) cannot be addressed by {self.ptr_bits}-bit pointers; raise "
                f"ptr_bits to {(self.mat_depth * self.entries_per_word).bit_length()} or lower mat_depth")

    # --- derived widths -------------------------------------------------------------------------

    @property
    def entry_bits(self) -> int:
        """Bits of one ``(v, z)`` entry: ``v`` in the low bits, ``z`` above it."""
        return self.weight_bits + self.index_bits

    @property
    def word_bits(self) -> int:
        """Bits of one sparse-matrix SRAM word."""
        return self.entry_bits * self.entries_per_word

    @property
    def codebook_size(self) -> int:
        return 2 ** self.weight_bits

    @property
    def max_run(self) -> int:
        """Largest zero run one entry's ``z`` can encode."""
        return 2 ** self.index_bits - 1

    @property
    def act_min(self) -> int:
        return -(2 ** (self.act_bits - 1))

    @property
    def act_max(self) -> int:
        return 2 ** (self.act_bits - 1) - 1

    @property
    def acc_max(self) -> int:
        return 2 ** (self.acc_bits - 1) - 1

    @property
    def mat_entries(self) -> int:
        """Sparse-matrix entries per PE."""
        return self.mat_depth * self.entries_per_word

    @property
    def max_width(self) -> int:
        """Widest layer (inputs or outputs) the activation register files hold."""
        return self.max_rows_per_pe * self.n_pe

    def rows_of_pe(self, n_rows: int, pe: int) -> int:
        """Rows of an ``n_rows`` layer that PE ``pe`` holds (rows ``pe, pe+n_pe, ...``)."""
        return len(range(pe, n_rows, self.n_pe))

    def rows_per_pe(self, n_rows: int) -> int:
        """Rows the busiest PE holds: the stride of one layer in the bias SRAM."""
        return -(-n_rows // self.n_pe)

    # --- identity -------------------------------------------------------------------------------

    def to_dict(self, *, include_timing: bool = True) -> dict:
        d = dataclasses.asdict(self)
        if not include_timing:
            d.pop("queue_depth")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EIEConfig:
        if not isinstance(d, dict):
            raise ConfigError(f"a hardware configuration must be a JSON object, not {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown hardware configuration key(s) {', '.join(unknown)}; "
                              f"known keys are {', '.join(sorted(known))}")
        return cls(**d)

    @classmethod
    def from_json_file(cls, path) -> EIEConfig:
        try:
            with open(path) as f:
                d = json.load(f)
        except FileNotFoundError:
            raise ConfigError(f"hardware configuration file {path} does not exist") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"hardware configuration file {path} is not valid JSON: {e}") from None
        return cls.from_dict(d)

    def config_hash(self) -> str:
        """SHA-256 of the parameters the images depend on (hex, 16 digits).

        ``queue_depth`` is excluded: it alters timing only.
        """
        canon = json.dumps(self.to_dict(include_timing=False), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    def replace(self, **changes) -> EIEConfig:
        return dataclasses.replace(self, **changes)
