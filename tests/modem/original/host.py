"""The original's ``Connection`` and ``ConnectionHost`` (with its ``Ping``), line by line.

Connection.java (04b2a5b, the version whose ``getMessage`` FileTransferProtocol.java uses) and
ConnectionHost.java (2b277c6) of oliverzh2000/audio-networking. Blocking Java calls are generators
(``yield from``); comments cite the Java lines. Printing is left out.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.modem.original.audio import Address, Frame, RealTimeAudioIO, RealTimeFrameIO
from tests.modem.original.jvm import (
    ArrayList,
    Blocking,
    BlockingQueue,
    IllegalArgumentException,
    Monitor,
    NullPointerException,
    Scheduler,
    Timer,
    TimerTask,
    jbyte,
)

MAX_FRAME_SIZE = 256  # Connection.java:14
RESEND_TIMEOUT = 700  # Connection.java:15 (ms)


class Connection:
    """Connection.java."""

    def __init__(self, host: ConnectionHost, port: int, dest: Address, name: str = "") -> None:
        self.connection_host = host  # :34
        self.source = Address(host.local_host, port)  # :35
        self.dest = dest  # :36
        self.name = name or repr(self.source)  # :37, :40-43
        self.send_seq = 0  # :22
        self.receive_seq = 0  # :23
        self.in_frames: list[Frame] = []  # :25
        self.in_messages: BlockingQueue[bytes] = BlockingQueue()  # :26
        self.out_frames: list[Frame] = []  # :27
        self.frames_added_to_queue = 0  # :29
        self._timer: Timer | None = None  # :30 (a Timer thread per Connection; started lazily)
        self.resend_task: TimerTask | None = None  # :31
        self.log: list[str] = []

    @property
    def resend_timer(self) -> Timer:
        if self._timer is None:
            self._timer = Timer(self.connection_host.scheduler, f"Timer-{self.name}")
        return self._timer

    def add_message_to_send_queue(self, message: bytes) -> None:
        for start in range(0, len(message), MAX_FRAME_SIZE):  # :56
            beg = start == 0  # :57
            end = start + MAX_FRAME_SIZE >= len(message)  # :58
            frame = Frame(self.source, self.dest, jbyte(self.frames_added_to_queue),
                          False, False, False, beg, end, Frame.PROTOCOL_CONNECTION,
                          message[start : min(start + MAX_FRAME_SIZE, len(message))])  # fmt: skip  # :59-61
            self.out_frames.append(frame)  # :62
            self.frames_added_to_queue += 1  # :63

    def get_message(self) -> Blocking[bytes]:
        return (yield from self.in_messages.take())  # :67-73

    def add_syn_to_send_queue(self) -> None:
        self.out_frames.append(Frame(self.source, self.dest, jbyte(self.frames_added_to_queue),
                                     True, False, False, False, False, Frame.PROTOCOL_CONNECTION))  # fmt: skip  # :79-82
        self.frames_added_to_queue += 1  # :83

    def add_fin_to_send_queue(self) -> None:
        self.out_frames.append(Frame(self.source, self.dest, jbyte(self.frames_added_to_queue),
                                     False, False, True, False, False, Frame.PROTOCOL_CONNECTION))  # fmt: skip  # :90-93
        self.frames_added_to_queue += 1  # :94

    def send(self) -> Blocking[None]:
        host = self.connection_host
        if self.out_frames and self.send_seq == self.out_frames[0].seq:  # :106
            out_frame = self.out_frames.pop(0)  # :107
            self.log.append(f"sent {out_frame}")
            yield from host.send(out_frame)  # :110

            def run() -> Blocking[None]:  # :112-126
                if host.is_sending:  # :115
                    return  # :118
                if out_frame.seq == self.send_seq:  # :120
                    self.log.append(f"resent {out_frame}")
                    yield from host.send(out_frame)  # :123

            self.resend_task = TimerTask(run)
            self.resend_timer.schedule(self.resend_task, RESEND_TIMEOUT, RESEND_TIMEOUT)  # :127

    def receive(self, in_frame: Frame) -> Blocking[None]:
        if in_frame.ack and in_frame.seq == self.send_seq:  # :174
            self.log.append(f"received {in_frame}")
            self.send_seq = jbyte(self.send_seq + 1)  # :177
            if self.resend_task is None:  # :178 resendTask.cancel() on null
                raise NullPointerException("resendTask is null")
            self.resend_task.cancel()
        elif in_frame.seq == self.receive_seq:  # :179
            if not in_frame.syn and not in_frame.fin:  # :180
                self.in_frames.append(in_frame)  # :181
                if self.in_frames[0].beg and self.in_frames[-1].end:  # :182
                    message = b"".join(f.payload for f in self.in_frames)  # :184-193
                    self.in_messages.put(message)  # :194-198
                    self.in_frames.clear()  # :199
            self.log.append(f"received {in_frame}")
            self.receive_seq = jbyte(self.receive_seq + 1)  # :204
        else:
            self.log.append(f"ignored {in_frame}")  # :205-208
        if not in_frame.ack:  # :209
            ack = Frame(self.source, self.dest, in_frame.seq, in_frame.syn, True, in_frame.fin,
                        False, False, Frame.PROTOCOL_CONNECTION)  # fmt: skip  # :211-212
            yield from self.connection_host.send(ack)  # :215

    def __eq__(self, other: object) -> bool:  # :219-227
        return (
            isinstance(other, Connection)
            and other.source == self.source
            and other.dest == self.dest
        )

    def __hash__(self) -> int:
        return hash((self.source, self.dest))


class Ping:
    """ConnectionHost.Ping (ConnectionHost.java:245-303)."""

    def __init__(self, host: ConnectionHost, target_host: int) -> None:
        self.host = host
        self.target_host = jbyte(target_host)  # :249-251
        self.replies_received = 0
        self.rtts: list[int] = []
        self.result: bool | None = None

    def send_echo_requests(self, n_frames: int, frame_delay: int, timeout: int) -> Blocking[bool]:
        host, sched = self.host, self.host.scheduler
        seq = 0
        while seq < n_frames:  # :268 (for (byte seq = 0; seq < nFrames; seq++))
            time = sched.millis().to_bytes(8, "big", signed=True)  # :270
            request = Frame(Address(host.local_host, 0), Address(self.target_host, 0), seq,
                            False, False, False, False, False, Frame.PROTOCOL_PING, time)  # fmt: skip  # :271-272
            yield from host.send(request)  # :273
            yield from sched.sleep(frame_delay)  # :274
            seq = jbyte(seq + 1)
        yield from sched.sleep(timeout)  # :277
        host.pings.remove(self)  # :282
        self.result = self.replies_received > 0  # :285
        return self.result

    def receive(self, echo_reply: Frame) -> None:
        self.replies_received += 1  # :298
        sent = int.from_bytes(echo_reply.payload[:8], "big", signed=True)  # :299 getLong()
        self.rtts.append(self.host.scheduler.millis() - sent)


class ConnectionHost:
    """ConnectionHost.java."""

    def __init__(self, local_host: int, frame_io: RealTimeFrameIO, audio: RealTimeAudioIO,
                 scheduler: Scheduler) -> None:  # fmt: skip
        self.local_host = jbyte(local_host)  # :44-47
        self.frame_io = frame_io
        self.audio = audio
        self.scheduler = scheduler
        self.connections: ArrayList[Connection] = ArrayList()  # :19
        self.pings: ArrayList[Ping] = ArrayList()  # :20
        self.is_sending = False  # :24
        self._monitor = Monitor()  # ``synchronized`` send (:190)

    def _receiver(self) -> Blocking[None]:
        while True:  # :26-30
            yield from self.receive()

    def _sender(self) -> Blocking[None]:
        while True:  # :31-42
            for connection in self.connections:  # :33 (fail-fast iterator)
                yield from connection.send()  # :34
            yield from self.scheduler.sleep(20)  # :37

    def receive(self) -> Blocking[None]:
        in_frame = yield from self.frame_io.decode()  # :125
        if in_frame.dest.host != self.local_host:  # :126
            return  # :127
        if in_frame.protocol == Frame.PROTOCOL_CONNECTION:  # :129
            probe = Connection(self, in_frame.dest.port, in_frame.source)
            if (
                in_frame.syn and not in_frame.ack and not self.connections.contains(probe)
            ):  # :131-132
                self.connections.add(Connection(self, in_frame.dest.port, in_frame.source))  # :133
            elif in_frame.fin:  # :134
                fin_connection = None  # :136
                for connection in self.connections:  # :137
                    if connection.source == in_frame.dest and connection.dest == in_frame.source:
                        yield from connection.receive(in_frame)  # :140
                        fin_connection = connection  # :141
                if fin_connection is not None:  # :144
                    self.connections.remove(fin_connection)  # :145
                else:
                    fin_ack = Frame(in_frame.dest, in_frame.source, in_frame.seq,
                                    False, True, True, False, False, Frame.PROTOCOL_CONNECTION)  # fmt: skip  # :149-150
                    yield from self.send(fin_ack)  # :151
            else:
                for connection in self.connections:  # :156
                    if connection.source == in_frame.dest and connection.dest == in_frame.source:
                        yield from connection.receive(in_frame)  # :159
        elif in_frame.protocol == Frame.PROTOCOL_PING:  # :163
            if not in_frame.ack:  # :164
                echo_reply = Frame(in_frame.dest, in_frame.source, in_frame.seq, False, True,
                                   False, False, False, Frame.PROTOCOL_PING, in_frame.payload)  # fmt: skip  # :166-167
                yield from self.send(echo_reply)  # :168
            else:
                for ping in self.pings:  # :170
                    if ping.target_host == in_frame.source.host:  # :171
                        ping.receive(in_frame)  # :172

    def send(self, frame: Frame) -> Blocking[None]:
        yield from self._monitor.enter(self)  # :190 synchronized
        try:
            if frame.protocol == Frame.PROTOCOL_CONNECTION:  # :191
                active = [c.source for c in self.connections]  # :192-195
                if frame.source not in active:  # :196
                    raise IllegalArgumentException(
                        "Source address of PROTOCOL_CONNECTION frame is not from an active connection"
                    )  # :197
            elif frame.protocol == Frame.PROTOCOL_PING and frame.source.host != self.local_host:
                raise IllegalArgumentException(
                    "Source address host of PROTOCOL_PING frame ..."
                )  # :199-200
            self.is_sending = True  # :202
            self.audio.start_output()  # :203
            self.frame_io.encode(frame)  # :204
            yield from self.audio.stop_output()  # :205
            self.is_sending = False  # :206
        finally:
            self._monitor.exit()

    def ping(
        self, target_host: int, n_frames: int, frame_delay: int, timeout: int
    ) -> Blocking[bool]:
        ping = Ping(self, target_host)  # :210
        self.pings.add(ping)  # :211
        self.last_ping = ping
        return (yield from ping.send_echo_requests(n_frames, frame_delay, timeout))  # :212

    def start_parallel_io(self) -> None:
        self.scheduler.start("receiver", self._receiver())  # :222-225
        self.scheduler.start("sender", self._sender())

    def add_connection(self, connection: Connection) -> None:
        self.connections.add(connection)  # :232-234

    def find(self, port: int, dest: Address) -> Callable[[], Connection | None]:
        """Test helper: the live connection from ``port`` to ``dest`` (not Java)."""

        def get() -> Connection | None:
            probe = Connection(self, port, dest)
            return next((c for c in self.connections.items if c == probe), None)

        return get
