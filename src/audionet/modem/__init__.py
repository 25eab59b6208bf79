"""audio-networking: a reliable, TCP-like link over an analog audio cable (a software modem).

Layers, bottom up: :mod:`audionet.modem.phy` (samples <-> frame bytes), :mod:`audionet.modem.channel`
(a deterministic simulator of cables, sound cards and phone lines), :mod:`audionet.modem.proto`
(frames, connections with a sliding window, ping, file transfer; no I/O), and the adapters that run
them over WAV files, a sound card, a virtual cable or simulated time.
"""
