"""Sans-I/O cores of AoDNS: no sockets, no event loop, no clock (time is passed in)."""
