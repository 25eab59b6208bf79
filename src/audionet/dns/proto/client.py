"""The listening client's logic, without I/O: what to ask, what the answers mean, what to play.

The adapter (``audionet.dns.client``) calls :meth:`StreamClient.requests` with the current time and
sends each :class:`Request` as a TXT query, feeds every outcome back with :meth:`on_answer` /
:meth:`on_failure`, and calls :meth:`playout` once per frame duration.

Start-up: read the config (v2) and the index (v2) or sequence list (v1), fetch the newest pack to
learn
how much audio a pack holds, then fetch backwards just enough packs for the target fill; from then
on
fetch every new pack as the index shows it, several at a time. A pack that is gone is skipped (v1)
or
concealed frame by frame (v2, which numbers frames). A new server run (v2 epoch, v1 sequence numbers
going back) resets the buffer.
"""

from __future__ import annotations

import logging
import math
import secrets
from dataclasses import dataclass
from enum import Enum

from audionet.dns.errors import BadRecordError, KeyRequiredError
from audionet.dns.proto import names, v1, v2
from audionet.dns.proto.crypto import PackCipher
from audionet.dns.proto.jitter import Item, JitterBuffer

log = logging.getLogger(__name__)


class Kind(Enum):
    CONFIG = "config"
    INDEX = "index"
    PACK = "pack"


class Failure(Enum):
    """Why a query gave no usable answer."""

    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    TRANSIENT = "transient"  #: timeout, SERVFAIL, network error: retry with backoff
    BAD = "bad"  #: the record did not parse


@dataclass(frozen=True, slots=True)
class Request:
    kind: Kind
    name: str
    seq: int = -1
    epoch: int = 0


FRESH_INDEX_MODES = ("auto", "always", "never")
#: "auto" reads the index under fresh names once it has not changed for this long (seconds), or for
#: two packs' worth of audio plus 1.5 s when packs are longer: the index's TTL (1 s) plus the poll
#: interval plus one pack's production time stay well below it when nothing holds the index.
STALE_INDEX_SECONDS = 2.5
#: Underruns this close together (seconds of playback) are a pattern, not a one-off outage.
RECURRING_UNDERRUN_SECONDS = 30.0
#: v1 through a resolver. The client never asks for a pack the sequence list has not shown (a
#: resolver caches "no such name" for the SOA's negative TTL: 60 s with the original server), so it
#: learns of new packs only when the resolver's copy of the list expires: every ``sequence`` TTL
#: (10 s). The buffer must outlast that wait, one pack still being produced when the list was read
#: and one pack of spread, plus this margin for the re-read and the fetches.
V1_RESOLVER_MARGIN = 1.5
#: Re-read the list this long after the resolver's copy expires (TTLs count whole seconds, so the
#: first re-read can still meet the old copy with TTL 0; the next one comes as soon again).
V1_EXPIRY_SLACK = 0.25
#: ... but never wait longer than this for a re-read (a resolver that clamps TTLs up).
V1_MAX_REREAD = 30.0


@dataclass(frozen=True, slots=True)
class ClientSettings:
    zone: str
    stream: str = "main"
    version: int = 2
    passphrase: str | None = None
    #: Buffer before playing. Through a resolver the index can be 1 s old (its TTL) plus half a poll
    #: interval when read, and a pack holds ~0.4-0.7 s: 3 s leaves more than a second of margin.
    target_seconds: float = 3.0
    concurrency: int = 4
    #: v2 index re-read interval (its TTL is 1 s); v1's sequence list is cached 4 s like the
    #: original.
    index_interval: float = 0.5
    v1_sequence_interval: float = 4.0
    #: v1 frame length (the original is fixed at Opus 60 ms and cannot tell the client).
    v1_frame_seconds: float = 0.06
    retries: int = 4
    backoff: float = 0.2
    #: v2: read the index as ``<nonce>.index.S.Z`` (a name no resolver has cached, answered by the
    #: server's wildcard) "never", "always", or, with "auto", once the index stops advancing for
    #: longer than its TTL explains: a resolver holding it past its TTL (Knot Resolver keeps
    #: every answer at least 5 s by default; ``cache-min-ttl`` in unbound; some ISP resolvers).
    fresh_index: str = "auto"
    #: An underrun within 30 s of playback after the previous one grows the target by half, up to
    #: this many times ``target_seconds`` (1: a fixed target).
    max_target_factor: float = 4.0

    def __post_init__(self) -> None:
        if self.fresh_index not in FRESH_INDEX_MODES:
            raise ValueError(f"fresh_index must be one of {FRESH_INDEX_MODES}")
        if self.max_target_factor < 1:
            raise ValueError("max_target_factor must be at least 1")


@dataclass(slots=True)
class Stats:
    queries: int = 0
    answers: int = 0
    failures: int = 0
    bytes: int = 0
    packs: int = 0
    packs_lost: int = 0
    restarts: int = 0
    probes: int = 0  #: v1 look-ahead queries for a pack that did not exist yet (direct only)
    #: True: answers carry AA, the client talks to the authoritative server itself; False: a
    #: resolver answers (no AA); None: no answer yet.
    direct: bool | None = None
    #: v2: the index is read under fresh names (set, or "auto" found it held past its TTL)
    fresh_index: bool = False


class StreamClient:
    def __init__(self, settings: ClientSettings) -> None:
        self.s = settings
        self.zone = names.normalize_zone(settings.zone)
        self.stream = names.check_stream(settings.stream) if settings.version == 2 else ""
        self.config: v2.StreamConfig | None = None
        self.cipher: PackCipher | None = None
        self._salt: bytes | None = None
        self.stats = Stats()
        self.frame_seconds = settings.v1_frame_seconds if settings.version == 1 else 0.0
        self.jitter = JitterBuffer(1)
        self._epoch = 0
        self._inflight: set[Request] = set()
        self._due: dict[Request, float] = {}  # request -> earliest time to (re)send
        self._tries: dict[int, int] = {}
        self._have: set[int] = set()  # pack numbers received or given up
        self._want_from: int | None = None  # first pack number we fetch
        self._direct: bool | None = None  # see Stats.direct
        self._known_last = -1  # newest pack the index/list showed
        self._known_first = 0  # oldest pack the index/list showed
        self._listed_last = -1  # v1: newest pack the sequence list showed (probes go further)
        self._list_ttl = 0  # v1 through a resolver: the longest TTL the sequence list came with
        self._pack_frames = 0.0  # frames per pack, learnt from the first pack
        self._next_index = 0.0
        self._nonce = secrets.token_hex(3)  # this client's prefix of fresh index names
        self._index_reads = 0
        self._index_seen: tuple[int, int, int] | None = None  # (epoch, first, count) last read
        self._index_changed = 0.0  # when it last changed
        self._end_last: int | None = None  # v2: the last pack of a stream whose index says ended
        self.stats.fresh_index = settings.version == 2 and settings.fresh_index == "always"
        # v1 has no frame numbers: packs are released in order and numbered here.
        self._v1_staged: dict[int, tuple[bytes, ...] | None] = {}
        self._v1_next_seq: int | None = None
        self._v1_next_frame = 0
        if settings.version == 2:
            self._due[self._config_req()] = 0.0

    # -- names -------------------------------------------------------------------------------
    def _config_req(self) -> Request:
        return Request(Kind.CONFIG, names.v2_config_name(self.zone, self.stream))

    def _index_req(self) -> Request:
        if self.s.version == 1:
            return Request(Kind.INDEX, names.v1_sequence_name(self.zone))
        if self.stats.fresh_index:
            self._index_reads += 1
            nonce = f"{self._nonce}{self._index_reads:x}"
            return Request(Kind.INDEX, names.v2_fresh_index_name(self.zone, self.stream, nonce))
        return Request(Kind.INDEX, names.v2_index_name(self.zone, self.stream))

    def _pack_req(self, seq: int) -> Request:
        if self.s.version == 1:
            return Request(Kind.PACK, names.v1_pack_name(self.zone, seq), seq)
        name = names.v2_pack_name(self.zone, self.stream, seq, self._epoch)
        return Request(Kind.PACK, name, seq, self._epoch)

    @property
    def ready(self) -> bool:
        """True once the stream settings are known (v2: config read)."""
        return self.frame_seconds > 0

    # -- what to send ------------------------------------------------------------------------
    def requests(self, now: float) -> list[Request]:
        """Requests to send now (each is then in flight until answered or failed)."""
        if self.ready and now >= self._next_index:
            self._next_index = now + (
                self.s.index_interval if self.s.version == 2 else self.s.v1_sequence_interval
            )
            pending = (r.kind == Kind.INDEX for r in (*self._due, *self._inflight))
            if not any(pending):  # (fresh index names differ each time: one read at a time)
                self._due[self._index_req()] = now
        out: list[Request] = []
        # Control records first, then packs oldest first (they play first).
        for req in sorted(self._due, key=lambda r: (r.kind != Kind.PACK, -r.seq), reverse=True):
            if self._due[req] > now or req in self._inflight:
                continue
            if req.kind == Kind.PACK and self._packs_inflight() >= self.s.concurrency:
                continue
            self._inflight.add(req)
            del self._due[req]
            self.stats.queries += 1
            out.append(req)
        return out

    def _packs_inflight(self) -> int:
        return sum(1 for r in self._inflight if r.kind == Kind.PACK)

    def next_wakeup(self, now: float) -> float:
        """When :meth:`requests` may have something new (for the adapter's sleep)."""
        times = [t for r, t in self._due.items() if r not in self._inflight]
        if self.ready:
            times.append(self._next_index)
        return max(now, min(times)) if times else now + 1.0

    # -- what came back ----------------------------------------------------------------------
    def on_answer(
        self,
        req: Request,
        rrs: list[tuple[bytes, ...]],
        now: float,
        ttl: int | None = None,
        authoritative: bool | None = None,
    ) -> None:
        """``rrs``: the TXT RRset, one tuple of strings per resource record, in any order.

        ``ttl``: the RRset's TTL as received (a resolver counts it down); ``authoritative``: the
        response's AA flag (None when not known)."""
        self._inflight.discard(req)
        self._note_source(authoritative)
        self.stats.answers += 1
        self.stats.bytes += sum(len(s) for rr in rrs for s in rr)
        try:
            if req.kind == Kind.CONFIG:
                self._on_config(rrs)
            elif req.kind == Kind.INDEX:
                self._on_index(rrs, now, ttl)
            else:
                self._on_pack(req, rrs, now)
        except BadRecordError as e:
            log.warning("%s: %s", req.name, e)
            self.on_failure(req, Failure.BAD, now)

    def on_failure(
        self, req: Request, why: Failure, now: float, authoritative: bool | None = None
    ) -> None:
        """``why`` the query failed; ``authoritative``: the negative response's AA flag."""
        self._inflight.discard(req)
        self._note_source(authoritative)
        negative = why in (Failure.NXDOMAIN, Failure.NODATA)
        if self.s.version == 1 and req.kind == Kind.PACK and req.seq > self._known_last >= 0:
            # A v1 probe for the next pack (only ever sent straight to the server): not there yet
            # is expected, as NXDOMAIN (ours) or NODATA (the original's); ask again soon.
            if negative:
                self.stats.probes += 1
            else:
                self.stats.failures += 1
            if self._direct:
                self._due[req] = now + self._probe_delay()
            return
        self.stats.failures += 1
        if req.kind != Kind.PACK:
            tries = self._tries.get(-2 if req.kind == Kind.CONFIG else -3, 0) + 1
            self._tries[-2 if req.kind == Kind.CONFIG else -3] = tries
            delay = min(2.0, self.s.backoff * 2 ** min(tries, 4))
            if req.kind == Kind.CONFIG or not self.ready:
                self._due[req] = now + delay
            else:
                self._next_index = min(self._next_index, now + delay)
            return
        if req.epoch != self._epoch or req.seq in self._have:
            return
        tries = self._tries.get(req.seq, 0) + 1
        self._tries[req.seq] = tries
        gone = self._want_from is not None and req.seq < self._want_from
        # A listed pack said not to exist: through a resolver that answer is cached (60 s with the
        # original server), so asking again cannot help; straight from the server one retry covers
        # a zone caught mid-rebuild (the original rebuilds in place). Either way: move on, counted.
        hopeless = negative and (not self._direct or tries > 1)
        if tries > self.s.retries or gone or hopeless:
            self._give_up(req.seq)
        else:
            self._due[req] = now + self.s.backoff * 2 ** (tries - 1)

    def _note_source(self, authoritative: bool | None) -> None:
        """Learn from the AA flag whether a resolver stands between us and the server (sticky)."""
        if authoritative is None:
            return
        if not authoritative:
            if self._direct is not False:
                self._direct = False
                self.stats.direct = False
                if self.jitter.target > 1:
                    self._set_target()
        elif self._direct is None:
            self._direct = True
            self.stats.direct = True

    def _give_up(self, seq: int) -> None:
        self._have.add(seq)
        self._tries.pop(seq, None)
        self.stats.packs_lost += 1
        if self.s.version == 1:
            self._v1_staged[seq] = None
            self._v1_release()
        self._check_final()

    def _on_config(self, rrs: list[tuple[bytes, ...]]) -> None:
        if not rrs:
            raise BadRecordError("empty config record")
        cfg = v2.StreamConfig.from_text(b"".join(rrs[0]))
        self._tries.pop(-2, None)
        if cfg.encrypted:
            if self.s.passphrase is None:
                raise KeyRequiredError(
                    f"stream {self.stream!r} is encrypted: pass its passphrase with --key"
                )
            if self._salt != cfg.salt or self.cipher is None:
                self.cipher = PackCipher.from_passphrase(self.s.passphrase, cfg.salt)
                self._salt = cfg.salt
            self.cipher.verify(cfg.kcv)
        else:
            if self.s.passphrase is not None and self.config is None:
                log.warning("stream %r is not encrypted; the passphrase is not needed", self.stream)
            self.cipher = None
        first = self.config is None
        self.config = cfg
        self.frame_seconds = cfg.frame_seconds
        if first:
            self._epoch = cfg.epoch
            self._set_target()
        elif cfg.epoch != self._epoch:
            self._restart(cfg.epoch)

    def _restart(self, epoch: int) -> None:
        log.info("stream restarted (new run); buffering again")
        self.stats.restarts += 1
        self._epoch = epoch
        self._have.clear()
        self._tries = {k: v for k, v in self._tries.items() if k < 0}
        self._due = {r: t for r, t in self._due.items() if r.kind != Kind.PACK}
        self._want_from = None
        self._known_last = -1
        self._known_first = 0
        self._listed_last = -1
        self._v1_staged.clear()
        self._v1_next_seq = None
        self.jitter.reset()

    def _on_index(self, rrs: list[tuple[bytes, ...]], now: float, ttl: int | None = None) -> None:
        if not rrs:
            raise BadRecordError("empty index record")
        self._tries.pop(-3, None)
        if self.s.version == 1:
            seqs = v1.decode_sequence_list(rrs[0])
            if ttl is not None and self._direct is False:
                # The resolver's copy changes only when it expires: read it again right then.
                self._next_index = now + min(V1_MAX_REREAD, ttl + V1_EXPIRY_SLACK)
                if ttl > self._list_ttl:
                    self._list_ttl = ttl
                    if self.jitter.target > 1:
                        self._set_target()
            if not seqs:
                return
            first, last = min(seqs), max(seqs)
            if last + 3 < self._listed_last:
                self._restart(0)  # the listed numbers went back: a new server run
            self._listed_last = last
            if self.jitter.target == 1 and self._want_from is None:
                self._set_target()
        else:
            idx = v2.Index.from_text(rrs[0][0] if rrs[0] else b"")
            if idx.epoch != self._epoch:
                # A new run: its config (salt, epoch) comes first.
                self._due.setdefault(self._config_req(), now)
                return
            self._check_stale((idx.epoch, idx.first, idx.count), now)
            if idx.ended:
                self._end_last = idx.last
            if idx.count == 0:
                self.jitter.final |= idx.ended  # ended before its first pack
                return
            first, last = idx.first, idx.last
        self._plan(first, last, now)
        self._check_final()

    def _target_seconds(self) -> float:
        """The buffer to fill before playing: ``target_seconds``, or for v1 through a resolver
        enough to outlast the resolver's hold on the sequence list (see V1_RESOLVER_MARGIN)."""
        target = self.s.target_seconds
        if self.s.version == 1 and self._direct is False:
            per_pack = self._pack_frames * self.frame_seconds or 1.0
            hold = max(self._list_ttl, v1.SEQUENCE_TTL)
            target = max(target, hold + V1_RESOLVER_MARGIN + 2 * per_pack)
        return target

    def _set_target(self) -> None:
        target = max(1, math.ceil(self._target_seconds() / self.frame_seconds))
        if self.jitter.started:
            target = max(target, self.jitter.target)  # keep what underruns made it grow to
        self.jitter.target = target
        self.jitter.max_target = max(target, int(target * self.s.max_target_factor))
        self.jitter.window = max(1, round(RECURRING_UNDERRUN_SECONDS / self.frame_seconds))

    def _check_stale(self, seen: tuple[int, int, int], now: float) -> None:
        """ "auto": switch to fresh index names when the index stops changing for too long."""
        if seen != self._index_seen:
            self._index_seen = seen
            self._index_changed = now
            return
        if self.stats.fresh_index or self.s.fresh_index != "auto" or not self._pack_frames:
            return
        pack_seconds = self._pack_frames * self.frame_seconds
        if now - self._index_changed > max(STALE_INDEX_SECONDS, 2 * pack_seconds + 1.5):
            log.info(
                "the index has not changed for %.1f s: the resolver holds it past its TTL; "
                "reading it under fresh names from now on",
                now - self._index_changed,
            )
            self.stats.fresh_index = True
            self._due.setdefault(self._index_req(), now)

    def _plan(self, first: int, last: int, now: float) -> None:
        """Schedule the packs between what we have and ``last``."""
        self._known_first = first
        if self._want_from is None:
            if not self._pack_frames:
                # Fetch the newest pack alone first: it tells how much audio a pack holds.
                if self._known_last < 0:
                    self._known_last = last
                    self._due.setdefault(self._pack_req(last), now)
                return
            per_pack = self._pack_frames * self.frame_seconds
            back = math.ceil(self._target_seconds() / per_pack) + 1
            # After a restart the pack size is known already: anchor on the new run's newest pack.
            anchor = last if self._known_last < 0 else self._known_last
            self._want_from = max(first, anchor - back + 1)
            if self.s.version == 1:
                self._v1_next_seq = self._want_from
        start = max(self._want_from, first)
        for seq in range(start, last + 1):
            if seq not in self._have:
                req = self._pack_req(seq)
                if req not in self._inflight:
                    self._due.setdefault(req, now)
        # Packs that left the index without arriving are gone.
        for seq in range(self._want_from, first):
            if seq not in self._have:
                self._due.pop(self._pack_req(seq), None)
                self._give_up(seq)
        self._want_from = max(self._want_from, first)
        self._known_last = max(self._known_last, last)
        if len(self._have) > 4 * (last - first + 2) + 64:
            # Forget packs older than the index (a long session must not grow without bound).
            self._have = {s for s in self._have if s >= first}
            self._tries = {k: v for k, v in self._tries.items() if k < 0 or k >= first}
        if self.s.version == 1:
            self._probe(now)

    def _probe_delay(self) -> float:
        return max(0.1, self._pack_frames * self.frame_seconds / 3)

    def _probe(self, now: float) -> None:
        """v1 straight from the server only: ask for the pack after the newest listed one.

        The sequence list is re-read every 4 s (as the original client caches it); asking
        ``seq_{last+1}`` learns of a new pack as soon as it exists. Never through a resolver: it
        would cache the "no such name" (the original server's NODATA for 60 s) and hide the pack
        after it appears.
        """
        if not self._direct:
            return
        req = self._pack_req(self._known_last + 1)
        if req.seq not in self._have and req not in self._inflight and req not in self._due:
            self._due[req] = now + self._probe_delay()

    def _on_pack(self, req: Request, rrs: list[tuple[bytes, ...]], now: float) -> None:
        if req.epoch != self._epoch or req.seq in self._have:
            return
        if self.s.version == 1:
            pack1 = v1.parse_pack_strings(req.seq, [s for rr in rrs for s in rr[:1]])
            frames = pack1.frames
            self._have.add(req.seq)
            self._learn(len(frames), now)
            if self._want_from is not None and req.seq > self._known_last:
                self._known_last = req.seq
                self._probe(now)
            self._v1_staged[req.seq] = frames
            self._v1_release()
        else:
            if len(rrs) != 1:
                raise BadRecordError(f"pack {req.seq}: {len(rrs)} records, expected one")
            assert self.config is not None
            payload = v2.decode_payload(rrs[0], self.config.encoding)
            pack = v2.Pack.from_payload(payload, self.cipher)
            if pack.seq != req.seq or pack.epoch != req.epoch:
                raise BadRecordError(f"pack {req.seq}: header says pack {pack.seq}")
            self._have.add(req.seq)
            self._learn(len(pack.frames), now)
            for i, f in enumerate(pack.frames):
                self.jitter.put(pack.first_frame + i, f)
        self.stats.packs += 1
        self._tries.pop(req.seq, None)
        self._check_final()

    def _learn(self, frames: int, now: float) -> None:
        if frames and not self._pack_frames:
            self._pack_frames = float(frames)
            if self.s.version == 1 and not self.jitter.started:
                self._set_target()  # the v1 target through a resolver counts packs
            if self._known_last >= 0:
                self._plan(self._known_first, self._known_last, now)

    def _v1_release(self) -> None:
        """Give v1 packs to the jitter buffer in sequence order, numbering their frames."""
        if self._v1_next_seq is None:
            return
        while self._v1_next_seq in self._v1_staged:
            frames = self._v1_staged.pop(self._v1_next_seq)
            self._v1_next_seq += 1
            for f in frames or ():
                self.jitter.put(self._v1_next_frame, f)
                self._v1_next_frame += 1

    def _check_final(self) -> None:
        """v2: once a stream has ended and every pack of it is here (or given up), no frame will
        follow: the jitter buffer plays out what it has and stops."""
        end = self._end_last
        if end is None or self.jitter.final or self._want_from is None:
            return  # not ended, already final, or its packs are not planned yet
        if all(seq in self._have for seq in range(self._want_from, end + 1)):
            self.jitter.final = True

    @property
    def finished(self) -> bool:
        """v2: the stream ended (its index says so) and all of it has been played."""
        return self._end_last is not None and self.jitter.drained

    # -- playout -----------------------------------------------------------------------------
    def playout(self) -> Item:
        """The item to play for this frame tick."""
        return self.jitter.pop()

    @property
    def buffered_seconds(self) -> float:
        return self.jitter.depth * self.frame_seconds
