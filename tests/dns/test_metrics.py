"""Server counters and their Prometheus text."""

from audionet.dns.metrics import ServerMetrics, rcode_name, type_name


def test_prometheus_text_and_summary() -> None:
    m = ServerMetrics()
    m.queries[(16, 0)] += 3
    m.queries[(16, 3)] += 1
    m.queries[(0, -1)] += 2
    m.bytes_out = 1234
    m.send_dropped = 7
    m.rrl_slipped = 5
    m.rrl_dropped = 4
    text = m.prometheus_text()
    assert "aodns_answers_dropped_total 7" in text
    assert "aodns_rrl_slipped_total 5" in text and "aodns_rrl_dropped_total 4" in text
    assert 'aodns_queries_total{qtype="TXT",result="NOERROR"} 3' in text
    assert 'aodns_queries_total{qtype="TXT",result="NXDOMAIN"} 1' in text
    assert "aodns_bytes_out_total 1234" in text
    assert m.total == 6
    assert m.summary()["by_type_result"]["TXT/NOERROR"] == 3
    assert m.summary()["rrl_dropped"] == 4


def test_names() -> None:
    assert type_name(16) == "TXT" and type_name(99) == "TYPE99"
    assert (
        rcode_name(-1) == "DROPPED" and rcode_name(5) == "REFUSED" and rcode_name(77) == "RCODE77"
    )
