"""An emulation of a station running the original Java program (oliverzh2000/audio-networking).

It follows the Java source line by line (each statement cites the lines it mirrors) so audionet's
``--legacy`` stations can be tested against what the original really does, defects included, on
the simulated and the virtual cable. See :mod:`tests.modem.original.station`.
"""
