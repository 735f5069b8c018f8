"""The I/O address map of :class:`~eie.hw.ese_accelerator.ESEAccelerator` (its ``cfg`` port).

The ESE array takes the EIE array's ``cfg`` writes (:mod:`eie.hw.io_map`: the same payload layout and
spaces; pointer, sparse-matrix and bias words per PE, codebooks, the layer table) and has more
``CONTROL`` registers, listed by :class:`Control`. :func:`lstm_image_writes` gives every write that
loads an :class:`~eie.spec.ese_image.LSTMImages`; the sequence length is written before a sequence
(:func:`steps_write`).
"""

from __future__ import annotations

from amaranth.lib import enum

from eie.hw.io_map import CONTROL_N_LAYERS, Space, image_writes

__all__ = ["Control", "Flags", "lstm_control_values", "lstm_image_writes", "steps_write"]


class Control(enum.IntEnum, shape=4):
    """``CONTROL`` space addresses of the ESE array (address 0 is the EIE array's layer count)."""

    N_LAYERS = CONTROL_N_LAYERS  #: layer-table rows in use (gates x, gates h, projection, head)
    N_STEPS = 1     #: time steps of the next input sequence
    HIDDEN = 2      #: hidden units ``H``
    FLAGS = 3       #: :class:`Flags`
    H_SHIFT = 4     #: the element-wise unit's output shift ``s_h``
    X_BASE = 5      #: activation-store base of the input sequence
    X_STRIDE = 6    #: words per PE of one input step
    H_BASE = 7      #: base of ``h``
    M_BASE = 8      #: base of ``m`` (the projection's input)
    PING_BASE = 9   #: base of the head's even layers' outputs
    PONG_BASE = 10  #: base of the head's odd layers' outputs


class Flags(enum.IntFlag):
    """Bits of ``Control.FLAGS``."""

    PROJ = 1          #: the LSTM has a projection (layer-table row 2)
    EVERY_STEP = 2    #: run the head and output after every step (else after the last one)
    SERIAL = 4        #: do not overlap the next step's input products with the write-back (for comparison)


def lstm_control_values(images, *, overlap: bool = True) -> dict:
    """``{Control: value}`` of ``images`` (the sequence length excluded)."""
    info = images.lstm
    layout = info.layout
    flags = (Flags.PROJ if info.proj_size else 0) | (Flags.EVERY_STEP if info.every_step else 0) | \
        (0 if overlap else Flags.SERIAL)
    return {Control.HIDDEN: info.hidden_size, Control.FLAGS: int(flags), Control.H_SHIFT: info.h_shift,
            Control.X_BASE: layout.x_base, Control.X_STRIDE: layout.x_stride, Control.H_BASE: layout.h_base,
            Control.M_BASE: layout.m_base, Control.PING_BASE: layout.ping_base,
            Control.PONG_BASE: layout.pong_base}


def lstm_image_writes(images, *, overlap: bool = True) -> list[tuple[Space, int, int, int]]:
    """Every ``cfg`` write that loads an :class:`~eie.spec.ese_image.LSTMImages`: the EIE writes
    (memories, codebooks, layer table, layer count last), preceded by the LSTM's control registers."""
    control = [(Space.CONTROL, 0, int(addr), int(value))
               for addr, value in lstm_control_values(images, overlap=overlap).items()]
    eie = image_writes(images)
    return eie[:-1] + control + eie[-1:]


def steps_write(n_steps: int) -> tuple[Space, int, int, int]:
    """The write that sets the length of the next input sequence."""
    return (Space.CONTROL, 0, int(Control.N_STEPS), int(n_steps))
