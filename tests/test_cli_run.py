"""`eie run`: a board behind a serial port, here the protocol's Python model behind a fake port."""

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from eie.cli import main
from eie.host import Device
from eie.sim.golden import run_golden
from eie.sim.random_net import random_inputs, random_network
from eie.spec.config import EIEConfig
from eie.spec.emit import write_images
from eie.spec.image import load_images
from eie.spec.protocol import Command
from eie.tb.device_model import DeviceModel, ModelSerial

CONFIG = EIEConfig(n_pe=3, mat_depth=128, ptr_depth=128, max_rows_per_pe=16, bias_depth=32, max_layers=3)


@pytest.fixture
def images_dir(tmp_path):
    return write_images(random_network(0, [12, 20, 5], CONFIG, density=0.4), CONFIG, tmp_path / "img")


@pytest.fixture
def board(monkeypatch):
    """The device every `eie run` opens; the test may swap it."""
    state = {"model": DeviceModel(CONFIG), "opened": []}

    def fake_open(cls, name, *, baud, timeout):
        state["opened"].append((name, baud, timeout))
        return cls(ModelSerial(state["model"], timeout=timeout, baudrate=baud))

    monkeypatch.setattr(Device, "open", classmethod(fake_open))
    return state


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_run_loads_then_reuses_the_images_and_is_bit_exact(images_dir, tmp_path, board):
    x = random_inputs(1, 5, 12, CONFIG)
    np.save(tmp_path / "x.npy", x)
    code, out = run("run", images_dir, "--port", "/dev/ttyUSB7", "--input", tmp_path / "x.npy", "--raw",
                    "--out", tmp_path / "y.npy", "--baud", 1_000_000)
    assert code == 0, out
    assert re.search(r"images loaded now \(\d+ writes\)", out)
    assert "bit-exact: 5 inputs, 25 outputs, device == golden model" in out
    assert board["opened"] == [("/dev/ttyUSB7", 1_000_000, 2.0)]
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), run_golden(load_images(images_dir), x))
    code, out = run("run", images_dir, "--port", "p", "--input", tmp_path / "x.npy", "--raw")
    assert code == 0 and "images already on the device" in out, out
    code, out = run("run", images_dir, "--port", "p", "--input", tmp_path / "x.npy", "--raw", "--load", "--json")
    report = json.loads(out)
    assert report["writes"] > 0 and report["bit_exact"] and len(report["cycles"]) == 5


def test_float_inputs_are_quantised_like_golden(images_dir, tmp_path, board):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((3, 12)))
    code, out = run("run", images_dir, "--port", "p", "--input", tmp_path / "x.npy")
    assert code == 0 and "bit-exact: 3 inputs" in out, out


def test_a_wrong_device_answer_exits_1_and_says_where(images_dir, tmp_path, board):
    class Faulty(DeviceModel):
        def _reply(self, cmd, seq, payload=b""):
            if cmd == Command.RUN:
                payload = bytes([payload[0] ^ 1]) + payload[1:]
            super()._reply(cmd, seq, payload)

    board["model"] = Faulty(CONFIG)
    np.save(tmp_path / "x.npy", random_inputs(1, 2, 12, CONFIG))
    code, out = run("run", images_dir, "--port", "p", "--input", tmp_path / "x.npy", "--raw")
    assert code == 1
    assert re.search(r"MISMATCH: 2 of 10 outputs differ from the golden model; first: input 0, row 0: device", out)


@pytest.mark.parametrize("setup, args, message", [
    ("other-config", [], r"^Error: the device is built for configuration \w{16} but the images were made for \w{16}; "
                         r"nothing was sent"),
    ("empty", ["--no-load"], r"^Error: the device does not hold these images \(it holds none, these are \w{16}\); "
                             r"drop --no-load to load them$"),
    ("mute", [], r"^Error: no response from the device to STATUS within 2 s"),
    ("empty", ["--input-shape-error"], None),
])
def test_errors_are_one_line_and_write_nothing(images_dir, tmp_path, board, setup, args, message):
    if setup == "other-config":
        board["model"] = DeviceModel(CONFIG.replace(n_pe=2))
    if setup == "mute":
        board["model"].feed = lambda data: None
    x = random_inputs(1, 2, 12, CONFIG)
    if args == ["--input-shape-error"]:
        args, x, message = [], x[:, :7], r"^Error: input has shape \(2, 7\) but the network takes \(batch, 12\)$"
        board["opened"] = None  # the inputs are checked before the port is opened
    np.save(tmp_path / "x.npy", x)
    code, out = run("run", images_dir, "--port", "p", "--input", tmp_path / "x.npy", "--raw",
                    "--out", tmp_path / "y.npy", *args)
    assert code == 1
    assert len(out.strip().splitlines()) == 1 and re.search(message, out.strip()), out
    assert not (tmp_path / "y.npy").exists()
    assert not board["model"].loading
