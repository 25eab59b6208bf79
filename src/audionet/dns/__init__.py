"""AoDNS: stream live audio as DNS TXT records and listen through any resolver.

``proto/`` holds the sans-I/O cores (names, the v1 and v2 record formats, encryption, the
precomputed
answer snapshot, the client's state machine and jitter buffer); ``server.py`` and ``client.py`` are
the
asyncio adapters.
"""
