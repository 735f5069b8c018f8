"""Stream source and sink over a :class:`eie.tb.units.Bench`, with pause patterns as iterators.

Written once for both simulators: a source offers its items in order and holds each (``valid``
high, ``payload`` unchanged) until it is taken, idling when its pause pattern says so; a sink
takes items while its pause pattern lets ``ready`` high. Patterns are iterators of booleans, one
per cycle (``True``: pause): :func:`fixed`, :func:`random_pauses`, :func:`bursts`.
"""

import itertools
import random

__all__ = ["fixed", "random_pauses", "bursts", "never", "StreamSource", "StreamSink"]


def never():
    """No pauses."""
    return itertools.repeat(False)


def fixed(pattern):
    """A repeating pattern, e.g. ``fixed([0, 1, 1])``: one cycle on, two paused."""
    return itertools.cycle(bool(p) for p in pattern)


def random_pauses(p, seed):
    """Pause with probability ``p`` each cycle."""
    rng = random.Random(seed)
    while True:
        yield rng.random() < p


def bursts(on, off):
    """``on`` cycles running, then ``off`` paused, repeated."""
    return fixed([0] * on + [1] * off)


def pattern_of(spec, seed=0):
    """A pattern from JSON data: ``["never"]``, ``["fixed", [0, 1]]``, ``["random", p]``, ``["bursts", on, off]``."""
    kind, *args = spec
    return {"never": never, "fixed": fixed, "bursts": bursts,
            "random": lambda p: random_pauses(p, seed)}[kind](*args)


class StreamSource:
    """Offers ``items`` on stream ``name`` of the bench (call :meth:`drive` before each step,
    :meth:`update` with the sampled ``ready`` after it)."""

    def __init__(self, bench, name, items, pauses=None):
        self.bench, self.name = bench, name
        self.items = list(items)
        self.pauses = pauses or never()
        self.sent = 0
        self._offering = False

    @property
    def done(self):
        return self.sent == len(self.items)

    def drive(self):
        if not self._offering and not self.done and not next(self.pauses):
            self._offering = True
            self.bench.set(f"{self.name}__payload", self.items[self.sent])
        self.bench.set(f"{self.name}__valid", int(self._offering))

    def update(self, ready):
        if self._offering and ready:
            self._offering = False
            self.sent += 1


class StreamSink:
    """Takes items from stream ``name`` while its pauses let ``ready`` high."""

    def __init__(self, bench, name, pauses=None):
        self.bench, self.name = bench, name
        self.pauses = pauses or never()
        self.ready = 0

    def drive(self):
        self.ready = int(not next(self.pauses))
        self.bench.set(f"{self.name}__ready", self.ready)

    def taken(self, valid):
        return bool(valid and self.ready)
