"""The checker of what Asterisk accepts from a server."""

from __future__ import annotations

from audionet.audiosocket.check import AsteriskChecker
from audionet.audiosocket.proto import HANGUP_MESSAGE, Audio, Hangup, encode_audio, encode_dtmf


def test_good_stream_has_no_violations() -> None:
    c = AsteriskChecker()
    data = encode_audio(bytes(320)) + encode_audio(b"\x01\x00", 16000) + HANGUP_MESSAGE
    evs = [e for i in range(len(data)) for e in c.receive_data(data[i : i + 1], 0.0)]
    assert evs == [Audio(bytes(320), 8000), Audio(b"\x01\x00", 16000), Hangup(True, evs[2].reason)]
    assert c.receive_data(b"", 0.0) == [] and c.ok


def test_each_rejected_message() -> None:
    cases = {
        encode_dtmf("1"): "kind 0x03",
        b"\xff\x00\x01\x01": "kind 0xff",
        b"\x02\x00\x00": "kind 0x02",
        b"\x10\x00\x00": "length 0",
        b"\x10\x00\x03abc": "odd length 3",
    }
    for data, text in cases.items():
        c = AsteriskChecker()
        c.receive_data(data, 0.0)
        assert len(c.violations) == 1 and text in c.violations[0].message, data


def test_late_payload_and_close_without_hangup() -> None:
    c = AsteriskChecker()
    msg = encode_audio(bytes(320))
    c.receive_data(msg[:100], 1.000)
    c.receive_data(msg[100:], 1.020)
    assert "20.0 ms after its header" in c.violations[0].message
    c = AsteriskChecker()
    c.receive_data(msg[:2], 1.000)  # a split header is fine (Asterisk keeps polling for it)
    c.receive_data(msg[2:], 1.050)
    assert c.ok
    assert c.receive_data(b"", 2.0) == [Hangup(True, "server closed the connection")]
    assert "without sending a hangup" in c.violations[0].message


def test_data_after_hangup() -> None:
    c = AsteriskChecker()
    c.receive_data(HANGUP_MESSAGE + encode_audio(b"\x00\x00"), 0.0)
    assert "after the hangup" in c.violations[0].message
