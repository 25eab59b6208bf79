"""OFDM physical layer with LDPC coding (issue 14).

Coding layer: :mod:`.qam` (Gray constellations, soft demapping), :mod:`.ldpc` (802.11n LDPC codes,
encoder and layered min-sum decoder), :mod:`.interleave` (bit interleaver across carriers and
symbols).
"""
