"""Testbench knobs (:mod:`eie.tb.knobs`): written by the Python side, read back typed by the testbench."""

import json
from pathlib import Path

import pytest

from eie.tb.knobs import PLUSARG, Knobs, knob_plusargs


def test_knobs_round_trip_through_the_file_the_plus_argument_names(tmp_path):
    args = knob_plusargs(tmp_path / "k.json", images=[tmp_path / "a", tmp_path / "b"], seed=3, serial=True,
                         report=tmp_path / "r.json", backpressure="random:0.5")
    assert args == [f"+{PLUSARG}={(tmp_path / 'k.json').resolve()}"]
    knobs = Knobs(json.loads((tmp_path / "k.json").read_text()), "k.json")
    assert knobs.paths("images") == [(tmp_path / "a").resolve(), (tmp_path / "b").resolve()]
    assert knobs.get("seed") == 3 and knobs.flag("serial") and not knobs.flag("inject_fault")
    assert knobs.path("report") == (tmp_path / "r.json").resolve()
    assert knobs.get("backpressure") == "random:0.5" and knobs.get("idle", 0.0) == 0.0
    assert knobs.paths("outputs", required=False) == [] and knobs.path("cycles", required=False) is None


def test_a_missing_required_knob_is_named():
    with pytest.raises(RuntimeError, match=r"^testbench knob 'images' is missing \(no \+eie_knobs plus-argument\)"):
        Knobs({}, "no +eie_knobs plus-argument").paths("images")


def test_knobs_must_be_an_object():
    with pytest.raises(RuntimeError, match=r"must be a JSON object"):
        Knobs([1, 2], str(Path("k.json")))
