"""The activation store of an ESE PE: every vector of the LSTM in one memory, scanned by region."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from eie.hw.layouts import ConfiguredComponent, Widths, WritePortSignature, activation_layout, bits_for
from eie.hw.source_scanner import READ_LATENCY, SourceScanner
from eie.spec.ese import ESEConfig

__all__ = ["ActivationStore", "OUT_LATENCY"]

#: Cycles from ``out_addr`` to ``out_data``.
OUT_LATENCY = READ_LATENCY


class ActivationStore(ConfiguredComponent):
    """One PE's activations of an LSTM: ``act_depth`` words (synchronous read, block RAM), holding the
    recurrent state ``h``, the projection input ``m``, the head's ping and pong vectors and the input
    sequence at the bases of :func:`eie.spec.ese.lstm_layout`.

    Where the EIE PE ping-pongs two register files, the LSTM reads and writes several vectors of
    different lengths per step, so they share one memory with one read and one write port: the
    scanner (:class:`~eie.hw.source_scanner.SourceScanner`) reads the vector starting at
    ``scan_base`` while a write-back writes another one. Element ``j`` of a vector is local word
    ``j div n_pe`` of PE ``j mod n_pe``.

    Ports: ``start``/``n_in``/``scan_base`` start a scan (stable while it runs) whose non-zeros leave
    on ``cand``; ``done`` as the scanner's. ``w`` writes one word (input loading, write-back,
    element-wise results; one writer at a time). ``out_addr`` reads a word while no scan runs;
    ``out_data`` is valid ``OUT_LATENCY`` (2) cycles later.

    Parameters
    ----------
    config : ESEConfig
    pe_index : int

    Attributes
    ----------
    start : In(1)
    n_in : In(range(max_width + 1))
    scan_base : In(range(act_depth))
    cand : Out(stream.Signature(activation_layout))
    done : Out(1)
    w : In(WritePortSignature(range(act_depth), signed(act_bits)))
    out_addr : In(range(act_depth))
    out_data : Out(signed(act_bits))

    Raises
    ------
    TypeError
        ``config`` is not an :class:`ESEConfig` or ``pe_index`` not an integer.
    ValueError
        ``pe_index`` is out of range.
    """

    def __init__(self, *, config, pe_index):
        if not isinstance(config, ESEConfig):
            raise TypeError(f"config must be an ESEConfig, not {config!r}")
        self._scanner = SourceScanner(config=config, pe_index=pe_index)
        self._config = config
        self._pe_index = pe_index
        w = Widths(config)
        addr = bits_for(config.act_depth)
        act = signed(config.act_bits)
        super().__init__({
            "start": In(1),
            "n_in": In(w.count),
            "scan_base": In(addr),
            "cand": Out(stream.Signature(activation_layout(config.act_bits, w.act_index))),
            "done": Out(1),
            "w": In(WritePortSignature(addr, act)),
            "out_addr": In(addr),
            "out_data": Out(act),
        })

    @property
    def pe_index(self) -> int:
        return self._pe_index

    def elaborate(self, platform):
        m = Module()
        c = self._config
        m.submodules.scanner = scanner = self._scanner
        m.submodules.mem = mem = Memory(shape=signed(c.act_bits), depth=c.act_depth, init=[])
        wr = mem.write_port()
        rd = mem.read_port()
        data = Signal(signed(c.act_bits))
        m.d.sync += data.eq(rd.data)      # block-RAM output straight into a register
        wiring.connect(m, scanner.cand, wiring.flipped(self.cand))
        m.d.comb += [
            scanner.start.eq(self.start),
            scanner.n_in.eq(self.n_in),
            scanner.data.eq(data),
            self.done.eq(scanner.done),
            rd.addr.eq(Mux(scanner.read, self.scan_base + scanner.addr, self.out_addr)),
            self.out_data.eq(data),
            wr.en.eq(self.w.en), wr.addr.eq(self.w.addr), wr.data.eq(self.w.data),
        ]
        return m
