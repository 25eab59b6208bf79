"""The original's audio line, line code and framing, line by line in Python.

``RealTimeAudioIO.java`` (8-bit samples through 32-sample buffers, every line-coded sample divided
by 3), ``ManchesterCodec.java`` (its writer and its transition-counting reader) and
``RealTimeFrameIO.java`` (frame bytes, checksums, the preamble hunt). Comments cite the Java lines
each statement mirrors (files of oliverzh2000/audio-networking as read for issue 13).
"""

from __future__ import annotations

from collections import deque

from tests.modem.original.jvm import Blocking, hash_code, jbyte

#: RealTimeAudioIO.java:18, :20: the lines' buffer, and the 32-sample buffers in front of them.
DATA_LINE_BUFFER_SIZE = 4096
INTERNAL_BUFFER_SIZE = 32


class RealTimeAudioIO:
    """The sound card as the original sees it: 8-bit signed samples in and out.

    Input: samples heard wait in the capture line, at most ``DATA_LINE_BUFFER_SIZE``
    (RealTimeAudioIO.java:18, :43); what arrives while it is full is lost (``overruns``).
    ``readSample`` takes them 32 at a time (:79-89), so the reader blocks until 32 are there.
    Output: ``writeSample`` fills a 32-sample buffer and hands it to the playback line only when
    full (:101-107), so up to 31 samples of a frame wait there for the next frame; the playback
    line plays only between ``startOutput`` and ``stopOutput``, which waits for it to drain
    (:135-143). ``writeSamples`` divides each sample by 3 (:111-115).
    """

    def __init__(self) -> None:
        self.line_in: deque[int] = deque()
        self.overruns = 0
        self._in_buf: list[int] = []
        self._in_pos = 0
        self._out_buf: list[int] = []
        self.line_out: deque[int] = deque()
        self.playing = False

    # -- the cable side (not Java) -------------------------------------------------------------

    def hear(self, samples: list[int]) -> None:
        room = DATA_LINE_BUFFER_SIZE - len(self.line_in)
        self.line_in.extend(samples[:room])
        self.overruns += max(0, len(samples) - room)

    def play(self, n: int) -> list[int]:
        """The next ``n`` samples of the playback line (silence while stopped or empty)."""
        out = []
        if self.playing:
            for _ in range(min(n, len(self.line_out))):
                out.append(self.line_out.popleft())
        return out + [0] * (n - len(out))

    # -- RealTimeAudioIO.java ------------------------------------------------------------------

    def _refill(self) -> bool:
        # readSample (:79-89): when the 32-sample buffer is empty, read 32 more from the line
        # (TargetDataLine.read blocks until it has them)
        if self._in_pos < len(self._in_buf):
            return True
        if len(self.line_in) < INTERNAL_BUFFER_SIZE:
            return False
        self._in_buf = [self.line_in.popleft() for _ in range(INTERNAL_BUFFER_SIZE)]
        self._in_pos = 0
        return True

    def write_sample(self, sample: int) -> None:
        self._out_buf.append(sample)  # :102
        if len(self._out_buf) == INTERNAL_BUFFER_SIZE:  # :103
            self.line_out.extend(self._out_buf)  # :105
            self._out_buf = []  # :106

    def write_samples(self, samples: list[int]) -> None:
        for sample in samples:  # :112
            self.write_sample(int(sample / 3))  # :113 ((byte) (sample / 3), truncating)

    def start_output(self) -> None:
        self.playing = True  # :135-137

    def stop_output(self) -> Blocking[None]:
        yield lambda: not self.line_out  # :140 outputLine.drain()
        self.line_out.clear()  # :141 flush()
        self.playing = False  # :142 stop()


def _half_wave(period: int, inverted: bool) -> list[int]:
    """ManchesterCodec.roundedHalfSquareWave (:63-75)."""
    wave = [-128 if inverted else 127] * (period // 2)  # :64-71
    wave[0] = int(wave[0] * 0.6)  # :72 (compound assignment casts back to byte: truncation)
    wave[-1] = int(wave[-1] * 0.6)  # :73
    return wave


class ManchesterCodec:
    """ManchesterCodec.java."""

    def __init__(self, bit_length: int, audio: RealTimeAudioIO) -> None:
        self.audio = audio  # :32-33
        self.bit_length = bit_length
        self.up_long = _half_wave(bit_length * 2, False)  # :35-38
        self.up_short = _half_wave(bit_length, False)
        self.down_long = _half_wave(bit_length * 2, True)
        self.down_short = _half_wave(bit_length, True)
        self.prev_sample = False  # :27
        self.prev_symbol = False  # :28
        self.samples_since_last_transition = 0  # :29

    def encode_bit(self, bit: bool) -> None:
        if self.prev_symbol != bit:  # :87
            if self.prev_symbol:  # :88
                self.audio.write_samples(self.up_long)  # :89
            else:
                self.audio.write_samples(self.down_long)  # :91
        else:
            if self.prev_symbol:  # :94
                self.audio.write_samples(self.up_short)  # :95
                self.audio.write_samples(self.down_short)  # :96
            else:
                self.audio.write_samples(self.down_short)  # :98
                self.audio.write_samples(self.up_short)  # :99
        self.prev_symbol = bit  # :102

    def encode_bytes(self, data: bytes) -> None:
        for i in range(len(data) * 8):  # :115-118, BitSet.valueOf: bit i is bit i % 8 of byte i / 8
            self.encode_bit(bool(data[i // 8] >> (i % 8) & 1))

    def decode_bit(self) -> Blocking[bool]:
        audio = self.audio
        thres = self.bit_length * 3 // 4  # :140
        while True:  # :142
            if audio._in_pos >= len(audio._in_buf):
                yield audio._refill
                audio._refill()
            sample = audio._in_buf[audio._in_pos] >= 0  # :143 readSample() >= 0
            audio._in_pos += 1
            if sample != self.prev_sample:  # :144
                if self.samples_since_last_transition >= thres:  # :145
                    self.samples_since_last_transition = 0  # :146
                    return sample  # :147 (prevSample is not updated here)
                self.prev_sample = sample  # :149
            self.samples_since_last_transition += 1  # :151

    def decode_bytes(self, n: int) -> Blocking[bytes]:
        bits = []
        for _ in range(n * 8):  # :172-174
            bits.append((yield from self.decode_bit()))
        # :175-176: the BitSet, bit n*8 set so toByteArray keeps trailing zeros, first n bytes
        return bytes(sum(bits[8 * j + k] << k for k in range(8)) for j in range(n))


#: RealTimeFrameIO.java:8-9: the long 0x5555555555555555 with its last byte 0xD5, big-endian.
PREAMBLE = bytes([0x55] * 7 + [0xD5])
SYN_MASK, ACK_MASK, FIN_MASK, BEG_MASK, END_MASK = 0x01, 0x02, 0x04, 0x10, 0x20  # :10-14
MAX_FRAME_LENGTH = 32767  # :16


class Address:
    """Address.java: a host and a port byte; ``equals`` compares both."""

    def __init__(self, host: int, port: int) -> None:
        self.host = jbyte(host)
        self.port = jbyte(port)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Address) and (self.host, self.port) == (other.host, other.port)

    def __hash__(self) -> int:
        return hash((self.host, self.port))

    def __repr__(self) -> str:
        return f"{self.host}.{self.port}"


class Frame:
    """Frame.java (9274dbb)."""

    PROTOCOL_CONNECTION = 0
    PROTOCOL_PING = 1

    def __init__(
        self, source: Address, dest: Address, seq: int, syn: bool, ack: bool, fin: bool,
        beg: bool, end: bool, protocol: int, payload: bytes = b"",
    ) -> None:  # fmt: skip
        self.source, self.dest, self.seq = source, dest, jbyte(seq)
        self.syn, self.ack, self.fin, self.beg, self.end = syn, ack, fin, beg, end
        self.protocol = protocol
        self.payload = payload

    def __repr__(self) -> str:
        named = zip(("ACK", "SYN", "FIN", "BEG", "END"),
                    (self.ack, self.syn, self.fin, self.beg, self.end), strict=True)  # fmt: skip
        flags = "".join(n for n, f in named if f)
        return f"<{self.source}->{self.dest} seq={self.seq} {flags} {len(self.payload)} B>"


class RealTimeFrameIO:
    """RealTimeFrameIO.java: frames to line-coded samples and back."""

    def __init__(self, codec: ManchesterCodec, audio: RealTimeAudioIO) -> None:
        self.codec = codec  # :22
        self.audio = audio  # :23 (RealTimeAudioIO.getInstance(): the sound card, always)
        self.header_failures = 0
        self.payload_failures = 0

    def encode(self, frame: Frame) -> None:
        from tests.modem.original.jvm import IllegalArgumentException

        if len(frame.payload) > MAX_FRAME_LENGTH:  # :66-68
            raise IllegalArgumentException(f"Frame size exceeds {MAX_FRAME_LENGTH} bytes")
        self.codec.encode_bytes(PREAMBLE)  # :69
        flags = 0  # :77
        flags |= SYN_MASK if frame.syn else 0  # :78-82
        flags |= ACK_MASK if frame.ack else 0
        flags |= FIN_MASK if frame.fin else 0
        flags |= BEG_MASK if frame.beg else 0
        flags |= END_MASK if frame.end else 0
        n = len(frame.payload)
        header = bytes(  # :70-76, :84-86 (putShort((short) length): big-endian, low 16 bits)
            [frame.source.host & 0xFF, frame.source.port & 0xFF, frame.dest.host & 0xFF,
             frame.dest.port & 0xFF, frame.seq & 0xFF, flags, frame.protocol & 0xFF,
             (n >> 8) & 0xFF, n & 0xFF]
        )  # fmt: skip
        frame_bytes = header + (hash_code(header) & 0xFFFFFFFF).to_bytes(4, "big")  # :88, :99-100
        if n > 0:  # :101-104
            frame_bytes += frame.payload + (hash_code(frame.payload) & 0xFFFFFFFF).to_bytes(
                4, "big"
            )
        self.codec.encode_bytes(frame_bytes)  # :105
        self.codec.encode_bytes(bytes([0, 0]))  # :106
        for _ in range(64):  # :107
            self.audio.write_sample(0)  # :108

    def decode(self) -> Blocking[Frame]:
        codec = self.codec
        while True:  # :118-119 (start:)
            preamble_bits_left = 32  # :120
            prev_preamble_bit = False  # :121
            while preamble_bits_left > 0:  # :122
                if (yield from codec.decode_bit()) != prev_preamble_bit:  # :123
                    preamble_bits_left -= 1  # :124
                    prev_preamble_bit = not prev_preamble_bit  # :125
                else:
                    preamble_bits_left = 32  # :127
            found = False
            for i in range(64):  # :131
                if (yield from codec.decode_bit()) and (yield from codec.decode_bit()):  # :132
                    found = True
                    break  # :133
                if i == 63:  # :135
                    break  # :137 continue start
            if not found:
                continue
            header = yield from codec.decode_bytes(2 + 2 + 1 + 1 + 1 + 2)  # :142
            source = Address(header[0], header[1])  # :144
            dest = Address(header[2], header[3])  # :145
            seq = jbyte(header[4])  # :146
            flags = header[5]  # :147
            syn = flags & SYN_MASK != 0  # :148-152
            ack = flags & ACK_MASK != 0
            fin = flags & FIN_MASK != 0
            beg = flags & BEG_MASK != 0
            end = flags & END_MASK != 0
            protocol = jbyte(header[6])  # :153
            payload_length = int.from_bytes(header[7:9], "big", signed=True)  # :154 getShort()
            check = yield from codec.decode_bytes(4)  # :156
            if hash_code(header) != int.from_bytes(check, "big", signed=True):  # :157
                self.header_failures += 1  # :158 ("INVALID header checksum")
                continue  # :159
            if payload_length > 0:  # :161
                payload = yield from codec.decode_bytes(payload_length)  # :162
                check = yield from codec.decode_bytes(4)  # :163
                if hash_code(payload) != int.from_bytes(check, "big", signed=True):  # :164
                    self.payload_failures += 1  # :165
                    continue  # :166
                return Frame(source, dest, seq, syn, ack, fin, beg, end, protocol, payload)  # :168
            return Frame(source, dest, seq, syn, ack, fin, beg, end, protocol)  # :170


class WavFileAudioIO:
    """WavFileAudioIO.java's writing half: samples kept as written, unscaled (:83-105); the file
    is 8-bit (:24-25), stored unsigned as WAV requires (``AudioSystem.write``)."""

    def __init__(self) -> None:
        self.samples: list[int] = []

    def write_sample(self, sample: int) -> None:
        self.samples.append(sample)  # :85

    def write_samples(self, samples: list[int]) -> None:
        for sample in samples:  # :101-103
            self.write_sample(sample)
