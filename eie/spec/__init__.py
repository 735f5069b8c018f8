"""The spec: what the compressor, the golden model and the hardware must agree on.

=========================== ======================================================================
module                      contents
=========================== ======================================================================
:mod:`eie.spec.errors`      the user-facing exceptions of every layer
:mod:`eie.spec.config`      :class:`~eie.spec.config.EIEConfig`, the hardware parameters and hash
:mod:`eie.spec.numerics`    fixed-point conversions and the write-back arithmetic
:mod:`eie.spec.network`     the integer network the images encode, and its numeric limits
:mod:`eie.spec.image`       the image format: entry encoding, hex files, loading and verification
:mod:`eie.spec.emit`        writing image directories (atomic, checksummed, deterministic)
:mod:`eie.spec.ese`         the ESE (LSTM) contract: configuration, table non-linearities, cell update
:mod:`eie.spec.ese_image`   ``ese-images``: the LSTM's image format, its writer and reader
=========================== ======================================================================

Nothing here imports PyTorch or Amaranth (``make test`` checks this with import-linter), so every
other layer can build on it.
"""
