"""The modem's protocol cores, free of I/O: frames, connections (ARQ), host, ping, files.

Nothing here imports asyncio, sockets, clocks or sound libraries: time is passed in as ``now``
(seconds, any origin) and frames go in and out as values, as in aioquic and h11.
"""
