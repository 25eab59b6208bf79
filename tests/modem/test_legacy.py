"""The original's connection protocol (LegacyConnection, LegacyHost): its wire behaviour, and the
defects we do not copy."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audionet.errors import ConfigError, LocalProtocolError
from audionet.modem.proto.arqtypes import Closed, Connected, MessageReceived, PeerClosed, State
from audionet.modem.proto.frame import LEGACY, Address, Flags, Frame, Protocol
from audionet.modem.proto.host import PingReceived
from audionet.modem.proto.legacy import LegacyConfig, LegacyConnection
from audionet.modem.proto.legacyhost import (
    LegacyConnectionEvent,
    LegacyHost,
    LegacyIncoming,
)
from tests.modem.lossy import Faults, LossyPair

A, B = Address(1, 10), Address(2, 21)


def frames(conn: LegacyConnection | LegacyHost, now: float = 0.0) -> list[Frame]:
    out = []
    while (f := conn.poll_frame(now)) is not None:
        out.append(f)
    return out


def events(conn: LegacyConnection) -> list[object]:
    out = []
    while (e := conn.next_event()) is not None:
        out.append(e)
    return out


def established(seq: int = 0) -> LegacyConnection:
    conn = LegacyConnection(B, A)
    conn.accept(0.0, seq)
    events(conn)
    return conn


def data(seq: int, payload: bytes, flags: Flags = Flags.BEG | Flags.END) -> Frame:
    return Frame(A, B, seq, flags, payload=payload)


def test_config_refuses_frames_the_original_cannot_read() -> None:
    LegacyConfig(max_payload=32767)
    with pytest.raises(ConfigError, match="signed 16-bit"):
        LegacyConfig(max_payload=32768)
    with pytest.raises(LocalProtocolError, match="32767"):
        LEGACY.encode(Frame(A, B, payload=bytes(32768)))


def test_active_open_numbers_frames_as_the_original() -> None:
    conn = LegacyConnection(A, B)
    conn.connect(0.0)
    conn.send(b"x" * 600)  # three frames of 256, 256, 88 bytes (Connection.java:14, :56-61)
    (syn,) = frames(conn)
    assert (syn.seq, syn.flags, syn.payload) == (0, Flags.SYN, b"")
    assert frames(conn) == []  # stop-and-wait: nothing more until the SYN is acknowledged
    conn.receive_frame(Frame(B, A, 0, Flags.SYN | Flags.ACK), 0.1)
    assert events(conn) == [Connected()] and conn.state is State.ESTABLISHED
    sent = []
    for _ in range(3):
        (f,) = frames(conn, 0.2)
        sent.append(f)
        conn.receive_frame(Frame(B, A, f.seq, Flags.ACK), 0.3)
    assert [(f.seq, f.flags, len(f.payload)) for f in sent] == [
        (1, Flags.BEG, 256), (2, Flags.NONE, 256), (3, Flags.END, 88)]  # fmt: skip
    assert conn.idle and conn.stats.bytes_acked == 600


def test_each_frame_is_answered_as_the_original_does() -> None:
    conn = established()
    conn.receive_frame(data(0, b"hi"), 0.0)
    # Connection.java:211-212: same seq, ACK, SYN and FIN copied, no payload, no BEG/END
    assert frames(conn) == [Frame(B, A, 0, Flags.ACK)]
    assert events(conn) == [MessageReceived(b"hi")]
    conn.receive_frame(data(0, b"hi"), 0.5)  # our ACK was lost: the repeat is acknowledged again
    assert frames(conn) == [Frame(B, A, 0, Flags.ACK)] and events(conn) == []


def test_a_frame_out_of_sequence_is_neither_taken_nor_acknowledged() -> None:
    conn = established()
    conn.receive_frame(data(5, b"later"), 0.0)  # the original would acknowledge it (:209-215)
    assert frames(conn) == [] and events(conn) == []
    assert conn.expected_seq == 0


def test_a_stray_ack_never_reaches_the_data_path() -> None:
    """Connection.java:174-180: the original lets an ACK with another seq fall through to its
    data path, where it joins (and can block) a message; we ignore it."""
    conn = established()
    conn.receive_frame(Frame(A, B, 0, Flags.ACK), 0.0)  # seq == what we expect from the peer
    assert conn.expected_seq == 0 and events(conn) == [] and frames(conn) == []
    conn.receive_frame(data(0, b"real"), 0.1)
    assert events(conn) == [MessageReceived(b"real")]


def test_a_continuation_without_its_beg_is_dropped() -> None:
    conn = established()
    conn.receive_frame(data(0, b"tail", Flags.END), 0.0)
    assert events(conn) == [] and len(frames(conn)) == 1  # acknowledged (it was taken), dropped
    conn.receive_frame(data(1, b"ab", Flags.BEG), 0.1)
    conn.receive_frame(data(2, b"cd", Flags.END), 0.2)
    assert events(conn) == [MessageReceived(b"abcd")]


def test_a_message_over_the_limit_aborts() -> None:
    conn = LegacyConnection(B, A, LegacyConfig(max_message=300))
    conn.accept(0.0)
    events(conn)
    conn.receive_frame(data(0, bytes(256), Flags.BEG), 0.0)
    conn.receive_frame(data(1, bytes(256), Flags.NONE), 0.1)
    assert events(conn) == [Closed("message larger than 300 bytes")]


def test_resends_every_timeout_then_gives_up() -> None:
    conn = LegacyConnection(A, B, LegacyConfig(max_retries=3), airtime=lambda n: 0.05)
    conn.connect(0.0)
    assert len(frames(conn, 0.0)) == 1
    assert conn.get_timer() == pytest.approx(0.75)  # 700 ms after the frame finished playing
    times = []
    now = 0.0
    while not conn.is_closed:
        now = conn.get_timer() or now
        conn.handle_timer(now)
        if frames(conn, now):
            times.append(round(now, 2))
    assert times == [0.75, 1.5] and events(conn) == [Closed("no acknowledgement after 3 tries")]


def test_our_fin_is_sent_once_even_when_its_ack_is_lost() -> None:
    """A repeated FIN for a connection the original has forgotten kills its receiving thread
    (ConnectionHost.java:146-151 then :196-197): never send it twice."""
    conn = established()
    conn.close()
    (fin,) = frames(conn)
    assert fin.flags == Flags.FIN and conn.state is State.FIN_WAIT
    timer = conn.get_timer()
    assert timer == pytest.approx(conn.config.fin_wait)
    conn.handle_timer(timer)
    assert frames(conn, timer) == [] and events(conn) == [Closed(None)]


def test_the_peers_fin_is_acknowledged_and_closes() -> None:
    conn = established()
    conn.receive_frame(Frame(A, B, 0, Flags.FIN), 0.0)
    assert events(conn) == [PeerClosed(), Closed(None)]
    assert conn.take_acks() == [Frame(B, A, 0, Flags.ACK | Flags.FIN)]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.binary(max_size=700), min_size=1, max_size=6))
def test_messages_arrive_whole_and_in_order_over_a_lossy_link(seed: int, msgs: list[bytes]) -> None:
    a, b = LegacyHost(1, seed=seed), LegacyHost(2, seed=seed + 1)
    b.listen(21)
    pair = LossyPair(a, b, random.Random(seed), Faults(drop=0.1, duplicate=0.05, corrupt=0.05),
                     profile=LEGACY)  # type: ignore[arg-type]  # fmt: skip
    conn = a.connect(Address(2, 21), 0.0, port=10)
    for m in msgs:
        conn.send(m)
    got = lambda: [e.event.data for e in pair.events[1]  # noqa: E731
                   if isinstance(e, LegacyConnectionEvent) and isinstance(e.event, MessageReceived)]  # fmt: skip
    assert pair.run(600, until=lambda: got() == msgs and conn.idle)
    conn.close()
    assert pair.run(60, until=lambda: conn.is_closed)  # FIN acknowledged, or its wait over


def test_close_ends_both_sides() -> None:
    a, b = LegacyHost(1), LegacyHost(2)
    b.listen(21)
    pair = LossyPair(a, b, random.Random(3), profile=LEGACY)  # type: ignore[arg-type]
    conn = a.connect(Address(2, 21), 0.0, port=10)
    conn.send(b"bye")
    assert pair.run(60, until=lambda: conn.idle)
    conn.close()
    start = pair.now
    assert pair.run(60, until=lambda: conn.is_closed)
    assert b.connections == [] and a.connections == []
    assert pair.now - start < conn.config.fin_wait  # closed by the ACK of the FIN, not its wait


def test_sequence_numbers_wrap_past_255() -> None:
    a, b = LegacyHost(1), LegacyHost(2)
    b.listen(21)
    pair = LossyPair(a, b, random.Random(1), profile=LEGACY, bitrate=1e6)  # type: ignore[arg-type]
    conn = a.connect(Address(2, 21), 0.0, port=10)
    msg = random.Random(2).randbytes(300 * 20)
    conn.send(msg)  # with the config's 256-byte frames: 24 frames; use small frames instead
    small = a.connect(Address(2, 21), 0.0, port=11, config=LegacyConfig(max_payload=20))
    small.send(msg)  # 300 frames: seq runs 1..255, 0..45
    got = lambda: [e.event.data for e in pair.events[1]  # noqa: E731
                   if isinstance(e, LegacyConnectionEvent) and isinstance(e.event, MessageReceived)]  # fmt: skip
    assert pair.run(600, until=lambda: len(got()) == 2)
    assert got() == [msg, msg]


# -- the host -------------------------------------------------------------------------------------


def test_ping_is_echoed_as_the_original() -> None:
    host = LegacyHost(2)
    host.receive_frame(Frame(Address(1, 0), Address(2, 0), 9, Flags.NONE, Protocol.PING, payload=b"12345678"), 1.0)  # fmt: skip
    assert host.poll_frame(1.0) == Frame(Address(2, 0), Address(1, 0), 9, Flags.ACK, Protocol.PING, payload=b"12345678")  # fmt: skip
    assert isinstance(host.next_event(), PingReceived)
    host.ping(
        Address(1, 21), 300, b"t" * 8
    )  # from port 0 to port 0, 8-bit seq (ConnectionHost.java:271)
    assert host.poll_frame(2.0) == Frame(Address(2, 0), Address(1, 0), 300 % 256, Flags.NONE, Protocol.PING, payload=b"t" * 8)  # fmt: skip


def test_a_syn_to_a_listening_port_is_answered_at_once() -> None:
    host = LegacyHost(2)
    host.listen(21)
    host.receive_frame(Frame(A, B, 0, Flags.SYN), 0.0)
    assert isinstance(host.next_event(), LegacyIncoming)
    assert frames(host) == [Frame(B, A, 0, Flags.SYN | Flags.ACK)]
    host.receive_frame(Frame(A, B, 0, Flags.SYN), 0.8)  # our answer was lost: answered again
    assert frames(host) == [Frame(B, A, 0, Flags.SYN | Flags.ACK)] and len(host.connections) == 1


def test_the_first_frame_of_its_mains_opens_a_connection() -> None:
    """FileTransferProtocol.main makes both connections by hand: no SYN, data from seq 0."""
    host = LegacyHost(2)
    host.listen(21)
    host.receive_frame(data(0, b"FTP_REQUEST_FILE x"), 0.0)
    kinds = [type(e) for e in iter(host.next_event, None)]
    assert kinds[0] is LegacyIncoming and kinds.count(LegacyConnectionEvent) == 2  # +message
    assert frames(host) == [Frame(B, A, 0, Flags.ACK)]


def test_frames_from_unknown_peers_are_ignored_silently() -> None:
    host = LegacyHost(2)
    host.listen(21)
    for f in (
        data(3, b"mid-stream"),
        Frame(A, B, 0, Flags.ACK),
        Frame(A, Address(2, 99), 0, Flags.SYN),
    ):
        host.receive_frame(f, 0.0)
    assert frames(host) == [] and host.connections == [] and host.next_event() is None


def test_a_fin_for_a_forgotten_connection_is_acknowledged_on_its_behalf() -> None:
    host = LegacyHost(2)
    host.receive_frame(Frame(A, B, 17, Flags.FIN), 0.0)
    assert frames(host) == [Frame(B, A, 17, Flags.ACK | Flags.FIN)]


def test_a_new_syn_from_a_restarted_peer_opens_a_new_connection() -> None:
    host = LegacyHost(2)
    host.listen(21)
    host.receive_frame(Frame(A, B, 0, Flags.SYN), 0.0)
    host.receive_frame(data(1, b"one"), 0.1)
    old = host.connections[0]
    frames(host)
    host.receive_frame(Frame(A, B, 0, Flags.SYN), 5.0)  # the original restarted: seq from 0
    assert old.is_closed and host.connections[0] is not old
    assert frames(host) == [Frame(B, A, 0, Flags.SYN | Flags.ACK)]


def test_connections_are_bounded() -> None:
    host = LegacyHost(2, max_connections=2)
    host.listen(21)
    for port in range(5):
        host.receive_frame(Frame(Address(1, port), B, 0, Flags.SYN), 0.0)
    assert len(host.connections) == 2
