"""The codebook SRAM and the shared codebook registers of the active layer."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from eie.hw.layouts import ConfiguredComponent, Widths, WritePortSignature, bits_for, check_config

__all__ = ["CodebookLoader"]


class CodebookLoader(ConfiguredComponent):
    """Every layer's codebook in one SRAM, and a copy engine that loads one of them into the
    registers all PEs decode with.

    ``start`` (with ``layer``) copies layer ``layer``'s ``2^weight_bits`` entries into ``codebook``,
    one per cycle after a one-cycle read: ``busy`` is high for ``2^weight_bits + 1`` cycles, during
    which ``codebook`` must not be used. ``w`` writes entry ``k`` of layer ``l`` at
    ``l·2^weight_bits + k`` (I/O mode). Both arrays' central control use it (``start`` must not
    rise while ``busy``).

    Parameters
    ----------
    config : EIEConfig
    init : array-like, optional
        ``(n_layers, 2**weight_bits)`` initial codebooks (bitstream mode).

    Attributes
    ----------
    w : In(WritePortSignature(range(max_layers·2^weight_bits), signed(act_bits)))
    start : In(1)
    layer : In(range(max_layers))
    codebook : Out(data.ArrayLayout(signed(act_bits), 2**weight_bits))
    busy : Out(1)

    Raises
    ------
    TypeError
        ``config`` is not an :class:`EIEConfig`.
    """

    def __init__(self, *, config, init=None):
        config = check_config(config)
        self._config = config
        self._init = [] if init is None else [int(x) for row in init for x in row]
        act = signed(config.act_bits)
        super().__init__({
            "w": In(WritePortSignature(bits_for(config.max_layers * config.codebook_size), act)),
            "start": In(1),
            "layer": In(Widths(config).layer),
            "codebook": Out(data.ArrayLayout(act, config.codebook_size)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = self._config
        size = c.codebook_size
        m.submodules.mem = mem = Memory(shape=signed(c.act_bits), depth=c.max_layers * size, init=self._init)
        wr = mem.write_port()
        rd = mem.read_port()
        active = Signal()
        k = Signal(range(size + 1))
        layer = Signal(Widths(c).layer)
        with m.If(self.start):
            m.d.sync += [active.eq(1), k.eq(0), layer.eq(self.layer)]
        with m.Elif(active):
            m.d.sync += k.eq(k + 1)
            with m.If(k != 0):   # the word read in the previous cycle shifts in from the top
                m.d.sync += self.codebook.eq(Cat(self.codebook.as_value()[c.act_bits:], rd.data))
            with m.If(k == size):
                m.d.sync += active.eq(0)
        m.d.comb += [
            wr.en.eq(self.w.en), wr.addr.eq(self.w.addr), wr.data.eq(self.w.data),
            rd.addr.eq(Cat(k[:c.weight_bits], layer)),
            self.busy.eq(active),
        ]
        return m
