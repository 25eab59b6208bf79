"""The server side without I/O: codec frames in, zone snapshots out.

:class:`ZonePublisher` owns one zone's :class:`SnapshotBuilder`. It serves either one v1 stream (the
original's names at the zone's top) or any number of named v2 streams. Each ``feed`` of an encoded
frame returns True when a pack closed and a new snapshot is ready (:meth:`ZonePublisher.snapshot`).
"""

from __future__ import annotations

import logging
import os
from collections import deque
from dataclasses import replace

from audionet.dns.errors import StreamConfigError
from audionet.dns.proto import names, v1, v2
from audionet.dns.proto.crypto import AEAD_NAME, SALT_LEN, PackCipher
from audionet.dns.proto.snapshot import Snapshot, SnapshotBuilder

log = logging.getLogger(__name__)

#: v2 control-record TTLs: the index changes with every pack, so resolvers may keep it 1 s; the
#: config changes only when the server restarts (new epoch and salt): 2 s lets clients notice.
INDEX_TTL = 1
CONFIG_TTL = 2
STREAMS_TTL = 10


class ZonePublisher:
    def __init__(self, zone: str, ns_address: str = "127.0.0.1") -> None:
        self.zone = names.normalize_zone(zone)
        self.builder = SnapshotBuilder(self.zone, ns_address)
        self.streams: dict[str, V2Stream] = {}
        self.v1: V1Stream | None = None
        self._snapshot = self.builder.build()
        self.packs_published = 0
        self.frames_dropped = 0

    def add_v1(self, frame_seconds: float = 0.06, packs: int = v1.PACKS_KEPT) -> V1Stream:
        if self.v1 is not None or self.streams:
            raise StreamConfigError("a v1 stream takes the whole zone (its names sit at the top)")
        self.v1 = V1Stream(self, frame_seconds, packs)
        return self.v1

    def add_v2(
        self,
        stream: str,
        config: v2.StreamConfig,
        passphrase: str | None = None,
        epoch: int | None = None,
        max_pack_seconds: float = 1.0,
    ) -> V2Stream:
        if self.v1 is not None:
            raise StreamConfigError("this zone already serves a v1 stream")
        name = names.check_stream(stream)
        if name in self.streams:
            raise StreamConfigError(f"stream {name!r} is already served")
        st = V2Stream(self, name, config, passphrase, epoch, max_pack_seconds)
        self.streams[name] = st
        self._list_streams()
        self.publish()
        return st

    def end_v2(self, stream: str) -> V2Stream:
        """The stream is over: its last frames are published, its index says ``end=1``, and it
        leaves the streams list. Its records stay until :meth:`remove_v2`, so listeners learn that
        it ended instead of finding it gone."""
        st = self.streams.pop(names.check_stream(stream))
        st.end()
        self._list_streams()
        self.publish()
        return st

    def remove_v2(self, st: V2Stream) -> None:
        """Delete every record of a stream that :meth:`end_v2` ended."""
        if self.streams.get(st.stream) is st:
            raise StreamConfigError(f"stream {st.stream!r} is still live: end it first")
        z, b = self.zone, self.builder
        if st.stream not in self.streams:  # (a new run under the same name keeps its own)
            b.remove(names.v2_config_name(z, st.stream))
            b.remove(names.v2_index_name(z, st.stream))
            b.remove(names.v2_index_wildcard(z, st.stream))
        for pack in st.kept:
            b.remove(names.v2_pack_name(z, st.stream, pack.seq, st.epoch))
        st.kept.clear()
        self.publish()

    def _list_streams(self) -> None:
        # With no live stream (a call station between calls) the list is one empty string, so
        # the zone still says it is an AoDNS v2 zone.
        listed = [(s.encode(),) for s in self.streams] or [(b"",)]
        self.builder.set_txt(names.v2_streams_name(self.zone), STREAMS_TTL, listed)

    def publish(self) -> Snapshot:
        self._snapshot = self.builder.build()
        return self._snapshot

    def snapshot(self) -> Snapshot:
        return self._snapshot


class V1Stream:
    """The original format: ``sequence.Z`` and ``seq_N.Z``, newest ``packs`` kept."""

    def __init__(self, zone: ZonePublisher, frame_seconds: float, packs: int) -> None:
        self.zone = zone
        self.frame_seconds = frame_seconds
        self.packs_kept = packs
        self.packer = v1.V1Packer()
        self.kept: deque[v1.V1Pack] = deque()
        self.frames = 0

    def feed(self, frame: bytes) -> bool:
        if not v1.frame_fits(frame):
            self.zone.frames_dropped += 1
            log.warning("v1: dropped a %d-byte frame too large for one TXT string", len(frame))
            return False
        self.frames += 1
        pack = self.packer.feed(frame)
        if pack is None:
            return False
        b = self.zone.builder
        z = self.zone.zone
        self.kept.append(pack)
        b.set_txt(
            names.v1_pack_name(z, pack.seq),
            v1.pack_ttl(len(pack.frames), self.frame_seconds, self.packs_kept),
            [(s,) for s in pack.strings()],
        )
        while len(self.kept) > self.packs_kept:
            b.remove(names.v1_pack_name(z, self.kept.popleft().seq))
        seqs = [p.seq for p in self.kept]
        b.set_txt(names.v1_sequence_name(z), v1.SEQUENCE_TTL, [(v1.encode_sequence_list(seqs),)])
        self.zone.packs_published += 1
        self.zone.publish()
        return True


class V2Stream:
    """One named v2 stream: config, index and packs under ``<stream>.Z``."""

    def __init__(
        self,
        zone: ZonePublisher,
        stream: str,
        config: v2.StreamConfig,
        passphrase: str | None,
        epoch: int | None,
        max_pack_seconds: float,
    ) -> None:
        self.zone = zone
        self.stream = stream
        ep = int.from_bytes(os.urandom(4), "big") if epoch is None else epoch
        self.cipher: PackCipher | None = None
        if passphrase is not None:
            if not passphrase:
                raise StreamConfigError("an empty passphrase protects nothing; give a real one")
            salt = os.urandom(SALT_LEN)
            self.cipher = PackCipher.from_passphrase(passphrase, salt)
            config = replace(config, aead=AEAD_NAME, salt=salt, kcv=self.cipher.check_value)
        self.config = replace(config, epoch=ep)
        z = zone.zone
        longest = names.v2_pack_name(z, stream, 9_999_999_999, ep)
        budget = v2.rdata_budget(names.wire_length(longest))
        max_frames = max(1, int(max_pack_seconds / self.config.frame_seconds))
        self.packer = v2.V2Packer(
            ep, budget, self.config.encoding, self.cipher is not None, max_frames
        )
        self.kept: deque[v2.Pack] = deque()
        self.frames = 0
        b = zone.builder
        b.set_txt(names.v2_config_name(z, stream), CONFIG_TTL, [(self.config.to_text(),)])
        self._set_index()

    @property
    def epoch(self) -> int:
        return self.config.epoch

    def _set_index(self, ended: bool = False) -> None:
        first = self.kept[0].seq if self.kept else 0
        idx = v2.Index(self.epoch, first, len(self.kept), ended)
        rrs = [(idx.to_text(),)]
        b = self.zone.builder
        b.set_txt(names.v2_index_name(self.zone.zone, self.stream), INDEX_TTL, rrs)
        # The same record under a wildcard: a client may read it as ``<nonce>.index.S.Z``, a name
        # no resolver has cached (for resolvers that keep answers longer than their TTL).
        b.set_txt(names.v2_index_wildcard(self.zone.zone, self.stream), INDEX_TTL, rrs)

    def pack_ttl(self, pack: v2.Pack) -> int:
        return max(5, int(len(pack.frames) * self.config.frame_seconds * self.config.packs * 0.8))

    def feed(self, frame: bytes) -> bool:
        try:
            pack = self.packer.feed(frame)
        except ValueError:
            self.zone.frames_dropped += 1
            log.warning("v2: dropped a %d-byte frame too large for one pack", len(frame))
            return False
        self.frames += 1
        if pack is None:
            return False
        self._add(pack)
        return True

    def end(self) -> None:
        """Publish the frames of the unfinished pack and mark the index ended (see
        :meth:`ZonePublisher.end_v2`)."""
        pack = self.packer.flush()
        if pack is not None:
            self._add(pack)
        self._set_index(ended=True)

    def _add(self, pack: v2.Pack) -> None:
        b = self.zone.builder
        z = self.zone.zone
        self.kept.append(pack)
        payload = pack.to_payload(self.cipher)
        b.set_txt(
            names.v2_pack_name(z, self.stream, pack.seq, self.epoch),
            self.pack_ttl(pack),
            [v2.encode_payload(payload, self.config.encoding)],
        )
        while len(self.kept) > self.config.packs:
            old = self.kept.popleft()
            b.remove(names.v2_pack_name(z, self.stream, old.seq, self.epoch))
        self._set_index()
        self.zone.packs_published += 1
        self.zone.publish()
