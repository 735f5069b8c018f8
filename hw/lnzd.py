"""The leading non-zero detector quadtree (EIE section III-A, "Distributed Leading Non-zero
Detection")."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from eie.hw.layouts import activation_layout

__all__ = ["LeadingNonZeroDetector"]

_FAN_IN = 4


def tree_levels(n_inputs: int) -> list[int]:
    """Nodes per level of a 4-ary tree over ``n_inputs`` leaves, leaves' level first."""
    levels = []
    n = n_inputs
    while n > 1:
        n = -(-n // _FAN_IN)
        levels.append(n)
    return levels


class LeadingNonZeroDetector(wiring.Component):
    """Pick one of ``n_inputs`` offered non-zero activations, the lowest-numbered one.

    Each node of the tree looks at up to four children (inputs or nodes below) and forwards
    its lowest-numbered valid child; the nodes form a quadtree (21 nodes for 64 inputs: 16, 4
    and 1). The grant travels back down the same tree. The whole tree is combinational; the
    caller registers the result (the broadcast register of the central control unit).

    Priority: the valid input with the **lowest number** wins. The winner is granted only
    while ``o.ready`` is high, so the granted input's handshake (``i[k].valid & i[k].ready``)
    happens exactly when ``o``'s does.

    Parameters
    ----------
    n_inputs : int
        Number of inputs (``>= 1``). With one input the detector is a wire.
    act_bits : int
        Width of an activation value (signed).
    index_width : int
        Width of the activation index.

    Attributes
    ----------
    i : In(stream.Signature(activation_layout)).array(n_inputs)
        The offered activations. ``i[k].ready`` equals ``grant[k]``; it depends on the valid
        signals of all inputs and on ``o.ready``.
    o : Out(stream.Signature(activation_layout))
        The chosen activation; ``o.valid`` is high when any input is valid.
    grant : Out(n_inputs)
        One-hot (or zero): bit ``k`` is high when input ``k`` is chosen and ``o.ready`` is high.

    Raises
    ------
    TypeError, ValueError
        A parameter is not an integer or out of range.
    """

    def __init__(self, *, n_inputs, act_bits, index_width):
        for name, value, lo in (("n_inputs", n_inputs, 1), ("act_bits", act_bits, 2),
                                ("index_width", index_width, 1)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if value < lo:
                raise ValueError(f"{name} must be >= {lo}, not {value}")
        self._n_inputs = n_inputs
        self._layout = activation_layout(act_bits, index_width)
        super().__init__({
            "i": In(stream.Signature(self._layout)).array(n_inputs),
            "o": Out(stream.Signature(self._layout)),
            "grant": Out(n_inputs),
        })

    @property
    def n_inputs(self):
        return self._n_inputs

    @property
    def n_nodes(self):
        """Number of 4-input nodes in the tree (21 for 64 inputs, 0 for one input)."""
        return sum(tree_levels(self._n_inputs))

    def elaborate(self, platform):
        m = Module()
        # Each tree item is (valid, payload, grant); a node drives its children's grants.
        items = []
        for k in range(self._n_inputs):
            grant = Signal(name=f"grant_{k}")
            m.d.comb += [self.grant[k].eq(grant), self.i[k].ready.eq(grant)]
            items.append((self.i[k].valid, self.i[k].payload, grant))

        for level, n_nodes in enumerate(tree_levels(self._n_inputs)):
            parents = []
            for n in range(n_nodes):
                children = items[n * _FAN_IN:(n + 1) * _FAN_IN]
                valid = Signal(name=f"node_{level}_{n}_valid")
                payload = Signal(self._layout, name=f"node_{level}_{n}_payload")
                grant = Signal(name=f"node_{level}_{n}_grant")
                m.d.comb += valid.eq(Cat(c_valid for c_valid, _, _ in children).any())
                earlier = []
                for c_valid, _, c_grant in children:
                    chosen = c_valid & ~Cat(*earlier).any() if earlier else c_valid
                    m.d.comb += c_grant.eq(grant & chosen)
                    earlier.append(c_valid)
                with m.If(children[0][0]):
                    m.d.comb += payload.eq(children[0][1])
                for c_valid, c_payload, _ in children[1:]:
                    with m.Elif(c_valid):
                        m.d.comb += payload.eq(c_payload)
                parents.append((valid, payload, grant))
            items = parents

        (root_valid, root_payload, root_grant), = items
        m.d.comb += [
            self.o.valid.eq(root_valid),
            self.o.payload.eq(root_payload),
            root_grant.eq(self.o.ready & root_valid),
        ]
        return m
