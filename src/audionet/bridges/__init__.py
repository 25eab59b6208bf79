"""Bridges between the three systems, where a phone call meets DNS and the modem.

* :mod:`~audionet.bridges.relay` and :mod:`~audionet.bridges.bridge`: ``audionet audiosocket bridge``,
  what Asterisk does when it bridges two AudioSocket legs (no clock of its own; optionally G.711,
  jitter and frame loss), so two AudioSocket servers can talk without an Asterisk.
* :mod:`~audionet.bridges.call_dns`: a phone call broadcast over DNS
  (``audionet dns serve ZONE --source audiosocket:HOST:PORT``).
* :mod:`~audionet.bridges.dns_call`: a DNS stream played into calls
  (``audionet audiosocket serve --app dns:ZONE``).
* :mod:`~audionet.bridges.modem_call`: the modem's real-time stations on a call
  (``--audio audiosocket-listen:HOST:PORT`` and ``--audio audiosocket:HOST:PORT``).

Each module builds on the public APIs of the systems it joins (the AudioSocket call API and client,
the AoDNS publisher, server and client state machine, the modem's station and PHY interface); the
systems themselves know nothing of the bridges.
"""
