"""ConnectionHost: routing, refusals, ping echo, carrier sense; the protocol cores import no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import audionet.modem.proto as proto_pkg
from audionet.errors import ConfigError, LocalProtocolError
from audionet.modem.proto.arq import ArqConfig, Connection
from audionet.modem.proto.frame import Address, Flags, Frame, Protocol
from audionet.modem.proto.host import (
    CarrierConfig,
    ConnectionHost,
    IncomingConnection,
    PingReceived,
)


def test_protocol_cores_import_no_io() -> None:
    forbidden = {"asyncio", "socket", "time", "sounddevice", "selectors", "threading", "subprocess"}
    for path in Path(proto_pkg.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


def test_ping_request_is_echoed_with_ack() -> None:
    host = ConnectionHost(2)
    request = Frame(Address(1, 0), Address(2, 0), 7, Flags.NONE, Protocol.PING, payload=b"12345678")
    host.receive_frame(request, 1.0)
    reply = host.poll_frame(1.0)
    assert reply == Frame(
        Address(2, 0), Address(1, 0), 7, Flags.ACK, Protocol.PING, payload=b"12345678"
    )
    event = host.next_event()
    assert isinstance(event, PingReceived) and not event.reply and event.seq == 7


def test_syn_to_a_closed_port_is_refused_and_listening_port_accepted() -> None:
    host = ConnectionHost(2)
    host.listen(7)
    host.receive_frame(Frame(Address(1, 5), Address(2, 9), 100, Flags.SYN), 0.0)
    rst = host.poll_frame(0.0)
    assert rst is not None and rst.flags & Flags.RST and rst.ack == 101 and rst.dst == Address(1, 5)
    host.receive_frame(Frame(Address(1, 5), Address(2, 7), 100, Flags.SYN, window=4), 0.0)
    event = host.next_event()
    assert isinstance(event, IncomingConnection) and event.connection.remote == Address(1, 5)
    synack = host.poll_frame(0.0)
    assert synack is not None and synack.flags == Flags.SYN | Flags.ACK and synack.ack == 101


def test_half_duplex_waits_for_quiet_and_lets_acks_go_first() -> None:
    carrier = CarrierConfig(ack_gap=0.01, data_gap=0.05, backoff=0.0)
    host = ConnectionHost(1, half_duplex=True, carrier=carrier, seed=1)
    conn = host.connect(Address(2, 7), 0.0)
    host.set_carrier(True, 0.0)
    assert host.poll_frame(0.0) is None  # the line is busy: wait
    host.set_carrier(False, 1.0)
    assert host.poll_frame(1.005) is None  # not even an ACK this soon
    assert host.poll_frame(1.02) is None  # a SYN is data: waits for the longer gap
    assert host.get_timer() == pytest.approx(1.05)
    syn = host.poll_frame(1.06)
    assert syn is not None and syn.flags == Flags.SYN
    # an acknowledgement may go out after the short gap
    conn.receive_frame(Frame(Address(2, 7), conn.local, 50, Flags.SYN | Flags.ACK, ack=syn.seq + 1,
                             window=8), 2.0)  # fmt: skip
    host.set_carrier(True, 2.0)
    host.set_carrier(False, 2.1)
    conn.send(b"data")
    ack = host.poll_frame(2.12)
    assert ack is not None and ack.flags == Flags.ACK and not ack.payload
    assert host.poll_frame(2.12) is None  # the data waits for the data gap
    data = host.poll_frame(2.2)
    assert data is not None and data.payload == b"data"


def test_full_duplex_ignores_the_carrier() -> None:
    host = ConnectionHost(1)
    host.connect(Address(2, 7), 0.0)
    host.set_carrier(True, 0.0)
    assert host.poll_frame(0.0) is not None


def test_connections_interleave_fairly() -> None:
    host = ConnectionHost(1, ArqConfig(max_payload=10))
    for p in (200, 201, 202):
        host.connect(Address(2, 7), 0.0, port=p)
    frames = [host.poll_frame(0.0) for _ in range(4)]
    assert [f.src.port for f in frames[:3] if f is not None] == [200, 201, 202]
    assert frames[3] is None  # each has sent its SYN and now waits


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError):
        ConnectionHost(256)
    host = ConnectionHost(1)
    host.connect(Address(2, 7), 0.0, port=130)
    with pytest.raises(LocalProtocolError):
        host.connect(Address(2, 7), 0.0, port=130)
    assert isinstance(host.connections[0], Connection)


frames_from_anyone = st.builds(
    Frame,
    src=st.builds(Address, st.integers(0, 3), st.integers(0, 3)),
    dst=st.builds(Address, st.integers(0, 3), st.integers(0, 3)),
    seq=st.integers(0, 0xFFFF),
    flags=st.integers(0, 0x7F).map(Flags),
    protocol=st.sampled_from(Protocol),
    ack=st.integers(0, 0xFFFF),
    window=st.integers(0, 255),
    sack=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=8),
)


@settings(max_examples=300)
@given(st.lists(frames_from_anyone, max_size=30), st.integers(0, 0xFFFF))
def test_hostile_frames_never_crash_a_host(frames: list[Frame], isn: int) -> None:
    """A peer may send any well-formed frame at any time: events and frames come out, no errors."""
    host = ConnectionHost(2, ArqConfig(window=4), seed=isn)
    host.listen(1)
    host.connect(Address(1, 1), 0.0, port=3)
    now = 0.0
    for frame in frames:
        now += 0.3
        host.receive_frame(frame, now)
        host.handle_timer(now)
        for _ in range(10):
            if host.poll_frame(now) is None:
                break
        while host.next_event() is not None:
            pass
