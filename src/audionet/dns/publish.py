"""Publish the stream into an existing authoritative server by RFC 2136 dynamic update, TSIG-signed.

So the DNS itself carries the load: the primary (BIND 9, Knot, PowerDNS) hands the records to its
secondaries and any number of caching resolvers. Each batch of record changes (a new pack, the new
index, the pack that expired) becomes one UPDATE message sent over TCP: ``replace`` for a changed
RRset (RFC 2136 §2.5.2 delete-RRset followed by §2.5.1 add) and delete-RRset for an expired one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.name
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import dns.update

from audionet.dns.errors import DnsError
from audionet.dns.proto.snapshot import Change, txt_rdata
from audionet.errors import ConfigError

log = logging.getLogger(__name__)

#: RFC 8945 §6: HMAC-SHA256 is the algorithm every implementation must support.
DEFAULT_ALGORITHM = "hmac-sha256"


@dataclass(frozen=True, slots=True)
class TsigKey:
    name: str
    secret: str  #: base64, as in BIND's ``key`` statement
    algorithm: str = DEFAULT_ALGORITHM

    @classmethod
    def parse(cls, text: str) -> TsigKey:
        """``NAME:SECRET`` or ``ALGORITHM:NAME:SECRET`` (like ``nsupdate -y``)."""
        parts = text.split(":")
        if len(parts) == 2:
            key = cls(parts[0], parts[1])
        elif len(parts) == 3:
            key = cls(parts[1], parts[2], parts[0])
        else:
            raise ConfigError(
                "TSIG key must be NAME:SECRET or ALGORITHM:NAME:SECRET (base64 secret)"
            )
        try:
            base64.b64decode(key.secret, validate=True)
        except (binascii.Error, ValueError) as e:
            raise ConfigError(f"TSIG secret of {key.name!r} is not base64") from e
        return key

    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        name = dns.name.from_text(self.name)
        return {name: dns.tsig.Key(name, self.secret, self.algorithm)}


def build_update(
    zone: str, changes: Sequence[Change], key: TsigKey | None
) -> dns.update.UpdateMessage:
    """One UPDATE message applying ``changes`` in order (later changes to a name win)."""
    kw = {}
    if key is not None:
        ring = key.keyring()
        kw = {"keyring": ring, "keyname": next(iter(ring)), "keyalgorithm": key.algorithm}
    update = dns.update.UpdateMessage(zone + ".", **kw)  # type: ignore[arg-type]
    last: dict[str, Change] = {}
    for change in changes:
        last[change[0]] = change  # a pack added and expired in one batch needs only the deletion
    for name, ttl, rrs in last.values():
        owner = dns.name.from_text(name + ".")
        if rrs is None:
            update.delete(owner, "TXT")
        else:
            update.replace(owner, ttl, *[txt_rdata(s) for s in rrs])
    return update


class DynamicPublisher:
    """Sends batches of changes to ``host:port`` in order, one UPDATE at a time, from a queue."""

    def __init__(self, zone: str, host: str, port: int, key: TsigKey | None, timeout: float = 5.0):
        self.zone = zone
        self.host = host
        self.port = port
        self.key = key
        self.timeout = timeout
        self._queue: asyncio.Queue[list[Change]] = asyncio.Queue()
        self.sent = 0
        self.failed = 0
        self._task: asyncio.Task[None] | None = None

    async def send(self, changes: Sequence[Change]) -> None:
        """Send one batch now; DnsError when the server refuses it (the rcode says why)."""
        update = build_update(self.zone, changes, self.key)
        try:
            resp = await dns.asyncquery.tcp(update, self.host, timeout=self.timeout, port=self.port)
        except (dns.exception.DNSException, OSError, EOFError) as e:
            raise DnsError(f"dynamic update to {self.host}:{self.port} failed: {e}") from e
        if resp.rcode() != dns.rcode.NOERROR:
            hint = {
                dns.rcode.NOTAUTH: "wrong TSIG key or the server is not authoritative",
                dns.rcode.REFUSED: "the zone does not allow updates from this key/address",
                dns.rcode.NOTZONE: "the names are outside the server's zone",
            }.get(resp.rcode(), "")
            raise DnsError(
                f"dynamic update refused: {dns.rcode.to_text(resp.rcode())}"
                + (f" ({hint})" if hint else "")
            )

    async def flush(self, more: Sequence[Change] = ()) -> None:
        """Send everything queued so far (and ``more``) now, as one UPDATE."""
        batch = list(more)
        pending: list[Change] = []
        while not self._queue.empty():
            pending += self._queue.get_nowait()
        batch = pending + batch
        if batch:
            await self.send(batch)
            self.sent += 1

    def submit(self, changes: list[Change]) -> None:
        if changes:
            self._queue.put_nowait(changes)

    async def run(self) -> None:
        """Drain the queue forever, merging a backlog into one UPDATE; failures are logged."""
        while True:
            batch = await self._queue.get()
            while not self._queue.empty():
                batch += self._queue.get_nowait()
            try:
                await self.send(batch)
                self.sent += 1
            except DnsError as e:
                self.failed += 1
                log.warning("%s", e)
