"""``audionet dns info``: what a zone serves (streams, codec, buffer depth), read through DNS."""

from __future__ import annotations

from dataclasses import dataclass

from audionet.dns.client import DnsFetcher
from audionet.dns.errors import BadRecordError, DnsError
from audionet.dns.proto import names, v1, v2
from audionet.dns.proto.client import Failure


@dataclass(frozen=True, slots=True)
class StreamInfo:
    name: str  #: stream name ("" for the v1 stream at the zone's top)
    version: int
    codec: str
    rate: int
    channels: int
    frame_ms: int
    encrypted: bool
    packs: int  #: packs available now
    frames_per_pack: int  #: in the newest pack
    first: int
    last: int

    @property
    def depth_seconds(self) -> float:
        """Audio the server holds now (what a listener can buffer from)."""
        return self.packs * self.frames_per_pack * self.frame_ms / 1000

    def describe(self) -> str:
        enc = ", encrypted" if self.encrypted else ""
        label = self.name or "(v1 stream at the zone top)"
        return (
            f"{label}: v{self.version} {self.codec} {self.rate} Hz {self.channels} ch "
            f"{self.frame_ms} ms frames{enc}; packs {self.first}..{self.last} "
            f"({self.packs} packs x {self.frames_per_pack} frames = {self.depth_seconds:.1f} s buffered)"
        )


async def zone_info(zone: str, fetcher: DnsFetcher) -> list[StreamInfo]:
    """Read the zone's streams; DnsError when nothing AoDNS is found there."""
    z = names.normalize_zone(zone)
    out: list[StreamInfo] = []
    streams = await fetcher.txt(names.v2_streams_name(z))
    if isinstance(streams, list):
        for rr in streams:
            name = b"".join(rr).decode("ascii", "replace")
            if name:  # (an empty name: no stream is live now, e.g. no call in progress)
                out.append(await _v2_info(z, name, fetcher))
        return out
    seq = await fetcher.txt(names.v1_sequence_name(z))
    if isinstance(seq, list) and seq:
        seqs = v1.decode_sequence_list(seq[0])
        frames = 0
        if seqs:
            pack = await fetcher.txt(names.v1_pack_name(z, max(seqs)))
            frames = len(pack) if isinstance(pack, list) else 0
        first, last = (min(seqs), max(seqs)) if seqs else (0, -1)
        return [StreamInfo("", 1, "opus", 16000, 1, 60, False, len(seqs), frames, first, last)]
    why = streams.value if isinstance(streams, Failure) else "no answer"
    raise DnsError(f"no AoDNS stream found at {z} ({why}); check the zone and --server")


async def _v2_info(zone: str, stream: str, fetcher: DnsFetcher) -> StreamInfo:
    cfg_rr = await fetcher.txt(names.v2_config_name(zone, stream))
    idx_rr = await fetcher.txt(names.v2_index_name(zone, stream))
    if not isinstance(cfg_rr, list) or not isinstance(idx_rr, list):
        raise DnsError(f"stream {stream!r} is listed but its config or index does not answer")
    cfg = v2.StreamConfig.from_text(b"".join(cfg_rr[0]))
    idx = v2.Index.from_text(b"".join(idx_rr[0]))
    frames = 0
    if idx.count:
        pack_rr = await fetcher.txt(names.v2_pack_name(zone, stream, idx.last, idx.epoch))
        if isinstance(pack_rr, list) and len(pack_rr) == 1:
            payload = v2.decode_payload(pack_rr[0], cfg.encoding)
            if len(payload) < v2.HEADER_LEN:
                raise BadRecordError(f"pack {idx.last} of {stream!r} is too short")
            frames = v2.HEADER.unpack_from(payload)[5]  # the header is readable without the key
    return StreamInfo(
        stream,
        2,
        cfg.codec,
        cfg.rate,
        cfg.channels,
        cfg.frame_ms,
        cfg.encrypted,
        idx.count,
        frames,
        idx.first,
        idx.last,
    )
