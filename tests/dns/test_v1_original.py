"""``dns play --format v1`` through a real unbound against a station that answers as the original
AoDNS server does (:mod:`tests.dns.original_aodns`: NODATA with an SOA of TTL 60 and minimum 3600
for a name it does not have, AA and RA set, the SOA in the authority section of every answer)."""

from __future__ import annotations

from pathlib import Path

import pytest

from audionet.audio.analysis import dominant_frequency, dropouts, tone_snr
from audionet.dns.client import DnsFetcher, Player, PlayStatus
from audionet.dns.localresolver import DaemonOptions, arun_resolver
from audionet.dns.proto.client import ClientSettings
from tests.conftest import require_binary
from tests.dns.helpers import SinkBox
from tests.dns.original_aodns import OriginalStation
from tests.dns.test_client import ZONE

pytestmark = [pytest.mark.daemon, pytest.mark.slow]


async def test_v1_through_unbound_against_the_original_plays_a_minute_without_a_gap(
    tmp_path: Path,
) -> None:
    """A minute of a 440 Hz tone. The station answers the first query for packs 40 and 80 as the
    original does when a query lands mid-rebuild (NODATA, which unbound then keeps 60 s): the
    player skips exactly those two, counted, and never stalls; it never asks for a pack the
    sequence list has not shown; its buffer never runs dry."""
    binary = require_binary("unbound")
    station = OriginalStation(ZONE, race={40, 80})
    statuses: list[PlayStatus] = []
    # unbound's default: no 0x20 (the original compares names case-sensitively).
    opts = DaemonOptions(use_caps_for_id=False)
    async with (
        station.running(prefill=16.0) as st,
        arun_resolver("unbound", binary, tmp_path / "u", ZONE, st.port, opts) as port,
    ):
        box = SinkBox()
        settings = ClientSettings(ZONE, version=1)
        player = Player(settings, DnsFetcher("127.0.0.1", port), box, statuses.append)
        report = await player.run(60.0, give_up=20)
    assert box.sink is not None
    pcm, fmt = box.sink.pcm, box.sink.format
    zone = station.zone
    assert report.seconds == pytest.approx(60.0, abs=0.07)
    assert report.direct is False and report.probes == 0
    assert zone.unlisted == []  # never a pack name before the list showed it
    assert zone.raced == [40, 80]  # both were asked for (once: unbound kept the NODATA)
    assert report.packs_lost == 2  # every skipped pack counted, and nothing else skipped
    assert report.underruns == 0 and report.concealed == 0
    # The buffer outlasts unbound's 10 s hold on the list, and never ran dry while playing.
    assert 11.5 <= report.target <= 14.0
    playing = [s for s in statuses if s.playing]
    assert len(playing) > 100
    assert min(s.buffered for s in playing) > 0.3
    assert report.startup < 3.0
    # The audio: no gap anywhere, the tone throughout except a click at each skipped pack.
    assert dropouts(pcm, fmt) == 0
    assert abs(dominant_frequency(pcm, fmt) - 440) < 3
    window = fmt.bytes_for(0.5)
    # (from the second window on: the decoder starts mid-stream, its first frame fades in)
    snrs = [tone_snr(pcm[i : i + window], fmt, 440) for i in range(window, len(pcm), window)]
    bad = [i for i, snr in enumerate(snrs) if snr <= 20]
    clicks = [i for i in bad if i - 1 not in bad]  # a skip can spoil two adjacent windows
    assert len(clicks) <= report.packs_lost
    assert len(bad) <= 2 * report.packs_lost


async def test_v1_straight_from_the_original_looks_ahead_and_counts_nodata_as_probes() -> None:
    """Without a resolver in between (the answers carry AA) nothing caches the original's NODATA:
    the player looks ahead for the next pack, and "not there yet" counts as a probe."""
    station = OriginalStation(ZONE)
    async with station.running(prefill=5.0) as st:
        box = SinkBox()
        # (3 s: room for a retry after a query the original leaves unanswered, see below)
        settings = ClientSettings(ZONE, version=1, target_seconds=3.0)
        report = await Player(settings, DnsFetcher("127.0.0.1", st.port), box).run(6.0, give_up=10)
    assert report.direct is True
    assert report.probes > 3
    # Only the queries the original left unanswered failed (timeouts, retried): it strips
    # whitespace off raw queries, so one whose random ID starts with such a byte does not parse.
    assert report.failures <= station.zone.unanswered
    assert report.underruns == 0 and report.packs_lost == 0
    assert station.zone.unlisted  # the look-ahead asked for packs not there yet
    assert box.sink is not None
    pcm, fmt = box.sink.pcm, box.sink.format
    edge = fmt.bytes_for(0.5)  # the decoder starts mid-stream: its first frame fades in
    assert tone_snr(pcm[edge:], fmt, 440) > 20
