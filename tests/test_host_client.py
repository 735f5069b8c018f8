"""The host client (eie.host) without hardware: the protocol's Python model behind a fake port.

The scenarios of eie.tb.host_scenarios run here against eie.tb.device_model exactly as they run
against the RTL in tests/test_rtl_host_link.py; the rest checks the client's own error handling
(timeouts, corrupt and stray responses, port failures) and the protocol helpers.
"""

import numpy as np
import pytest

from eie.host import Device, DeviceError, LinkError, LinkTimeout, describe_error
from eie.hw.io_map import image_writes
from eie.hw.link_map import image_id, pack_records, word_bytes
from eie.sim.golden import run_golden
from eie.sim.random_net import random_inputs, random_network
from eie.spec.config import EIEConfig
from eie.spec.emit import write_images
from eie.spec.image import load_images
from eie.spec.protocol import (
    RESPONSE,
    Command,
    ErrorCode,
    Flag,
    Status,
    crc8,
    crc16,
    encode_frame,
    parse_header,
)
from eie.tb.device_model import DeviceModel, ModelSerial
from eie.tb.host_scenarios import CASES, check_errors, load_and_run
from eie.tb.scoreboard import Scoreboard

CONFIG = EIEConfig(n_pe=3, mat_depth=128, ptr_depth=128, max_rows_per_pe=16, bias_depth=32, max_layers=3)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    net = random_network(3, [20, 30, 6], CONFIG, density=0.3)
    images = load_images(write_images(net, CONFIG, tmp_path_factory.mktemp("img")), expect_config=CONFIG)
    x = random_inputs(4, 3, 20, CONFIG, density=0.6)
    return images, x, run_golden(images, x)


def _device(images=None, **kw):
    model = DeviceModel(CONFIG, images)
    return Device(ModelSerial(model, **kw)), model


def test_crc_check_values_and_residues():
    assert crc16(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE
    assert crc8(b"123456789") == 0xF4     # CRC-8 (poly 0x07)
    frame = encode_frame(Command.RUN, 9, b"payload")
    assert crc8(frame[1:6]) == 0 and crc16(frame[1:]) == 0
    assert parse_header(frame[:6]) == (Command.RUN, 9, 7)
    assert parse_header(frame[:5] + bytes([frame[5] ^ 1])) is None


def test_encode_frame_rejects_what_does_not_fit():
    with pytest.raises(ValueError, match=r"^cmd and seq must be bytes, not 256 and 0$"):
        encode_frame(256, 0)
    with pytest.raises(ValueError, match=r"^a frame carries at most 65535 payload bytes, not 65536$"):
        encode_frame(1, 0, bytes(65536))


def test_status_round_trip_and_wrong_length():
    st = Status(1, "0123456789abcdef", 4, 16, Flag.LOADED | Flag.BAKED, ErrorCode.BAD_CRC, 3, "fedcba9876543210",
                13, 3)
    assert Status.unpack(st.pack()) == st
    with pytest.raises(ValueError, match=r"^a STATUS payload has 28 bytes, not 27$"):
        Status.unpack(st.pack()[:-1])


def test_records_hold_every_write_in_frames_of_whole_records(case):
    images, _, _ = case
    writes = image_writes(images)
    for size in (24, 100, 1024):
        payloads = pack_records(CONFIG, writes, size)
        assert all(len(p) <= size for p in payloads)
        model = DeviceModel(CONFIG)
        model.loading = True
        for p in payloads:
            assert model._records(p) == ErrorCode.NONE  # whole records in every payload
        assert model.load_writes == len(writes)
        assert all(model.memory[int(s), pe, a] == d for s, pe, a, d in writes)
    with pytest.raises(ValueError, match=r"^max_payload must hold a record of one word \(16 bytes\), not 15$"):
        pack_records(CONFIG, writes, 15)
    assert word_bytes(CONFIG)[0] == 2  # 16-bit pointers


def test_load_and_run_on_the_model_is_bit_exact(case):
    images, x, expected = case
    device, model = _device()
    scoreboard = Scoreboard(expected, n_pe=CONFIG.n_pe, layer=1)
    figures = load_and_run(device, images, x, scoreboard)
    scoreboard.finish()
    assert figures["writes"] == len(image_writes(images))
    # The model rebuilt the network from what the client sent.
    np.testing.assert_array_equal(run_golden(model.images(), x), expected)


def test_the_protocol_error_scenarios_pass_on_the_model(case):
    images, x, expected = case
    device, _ = _device(images)
    assert check_errors(device, images, x, expected) == CASES


def test_baked_images_are_held_without_a_load(case):
    images, _, _ = case
    device, _ = _device(images)
    assert device.holds(images)
    st = device.status()
    assert st.flags == Flag.LOADED | Flag.BAKED and st.image_id == image_id(images)


def test_images_for_another_configuration_are_refused_with_both_hashes(case, tmp_path):
    images, _, _ = case
    other = CONFIG.replace(n_pe=2)
    device, model = _device(images)
    net = random_network(3, [20, 30, 6], other, density=0.3)
    foreign = load_images(write_images(net, other, tmp_path / "other"), expect_config=other)
    with pytest.raises(DeviceError, match=rf"^the device is built for configuration {CONFIG.config_hash()} but the "
                                          rf"images were made for {other.config_hash()}; nothing was written"):
        device.load(foreign)
    assert model.loaded and not model.loading


class ScriptedPort:
    """Answers each write with the next scripted reply (bytes, or a callable of the written frame)."""

    def __init__(self, *replies, timeout=0.5):
        self.replies = list(replies)
        self.pending = bytearray()
        self.timeout = timeout

    def write(self, data):
        reply = self.replies.pop(0) if self.replies else b""
        self.pending += reply(bytes(data)) if callable(reply) else reply
        return len(data)

    def read(self, n):
        data = bytes(self.pending[:n])
        del self.pending[:n]
        return data


def _answer(cmd, payload=b"", *, garbage=b"", stale=False, corrupt=False):
    def reply(frame):
        seq = frame[2]
        out = b""
        if stale:
            out += encode_frame(cmd | RESPONSE, (seq - 1) & 0xFF, b"old")
        body = encode_frame(cmd, seq, payload)
        if corrupt:
            body = body[:-1] + bytes([body[-1] ^ 1])
        return garbage + out + body
    return reply


def _status_payload():
    return Status(1, CONFIG.config_hash(), 3, 16, Flag(0), ErrorCode.NONE, 0, "0" * 16, 0, 0).pack()


def test_a_silent_device_times_out():
    with pytest.raises(LinkTimeout, match=r"^no response from the device to STATUS within 0.5 s \(0 of 6 bytes\)"):
        Device(ScriptedPort(b"")).status()


def test_a_response_cut_short_times_out():
    port = ScriptedPort(lambda frame: encode_frame(Command.STATUS | RESPONSE, frame[2], _status_payload())[:20])
    with pytest.raises(LinkTimeout, match=r"^no response from the device to STATUS within 0.5 s \(14 of 30 bytes\)"):
        Device(port).status()


def test_garbage_and_stale_responses_are_skipped():
    reply = _answer(Command.STATUS | RESPONSE, _status_payload(), garbage=b"\xa5\x00\xa5\x13\x37", stale=True)
    assert Device(ScriptedPort(reply)).status().config_hash == CONFIG.config_hash()


def test_a_corrupt_response_is_an_error():
    port = ScriptedPort(_answer(Command.STATUS | RESPONSE, _status_payload(), corrupt=True))
    with pytest.raises(LinkError, match=r"^the response to STATUS failed its CRC-16"):
        Device(port).status()


def test_a_malformed_status_is_an_error():
    port = ScriptedPort(_answer(Command.STATUS | RESPONSE, b"short"))
    with pytest.raises(LinkError, match=r"^malformed STATUS response: a STATUS payload has 28 bytes, not 5$"):
        Device(port).status()


def test_an_answer_to_another_command_is_an_error():
    port = ScriptedPort(_answer(Command.RUN | RESPONSE, b""))
    with pytest.raises(LinkError, match=r"^the device answered STATUS with RUN$"):
        Device(port).status()


@pytest.mark.parametrize("code", list(ErrorCode)[1:])
def test_device_errors_are_one_line_messages(code):
    port = ScriptedPort(_answer(Command.ERROR, bytes([code, Command.STATUS, Flag.LOADED])))
    with pytest.raises(DeviceError) as info:
        Device(port).status()
    assert info.value.code == code and info.value.flags == Flag.LOADED
    assert str(info.value) == f"the device refused STATUS: {describe_error(code)}" and "\n" not in str(info.value)


def test_an_unknown_error_code_is_reported():
    assert describe_error(200) == "unknown error code 200"


def test_port_failures_are_link_errors():
    class Broken:
        timeout = 1

        def write(self, data):
            raise OSError("device disconnected")

        def read(self, n):
            raise OSError("device disconnected")

    with pytest.raises(LinkError, match=r"^writing to the serial port failed: device disconnected$"):
        Device(Broken()).status()
    with pytest.raises(TypeError, match=r"^port must have a write\(\) method like serial.Serial, not object$"):
        Device(object())


def test_run_checks_its_input(case):
    images, x, _ = case
    device, _ = _device(images)
    with pytest.raises(LinkError, match=r"^run takes one vector of integer activations, not an array of shape"):
        device.run(x)
    with pytest.raises(LinkError, match=r"^input activations must fit 16-bit signed \(-32768..32767\)$"):
        device.run(np.full(20, 40000))
    outputs, cycles = device.run_batch(x)
    assert outputs.shape == (3, 6) and cycles.shape == (3,)


def test_open_reports_a_missing_port():
    with pytest.raises(LinkError, match=r"^cannot open serial port /nonexistent/tty at 3000000 baud: "):
        Device.open("/nonexistent/tty")
