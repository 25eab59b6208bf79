"""The shared audio layer: formats, sources, sinks, resampling and codecs (SPEC §1).

PCM convention: ``bytes`` of signed 16-bit little-endian samples, channels interleaved; see
:mod:`audionet.audio.format`.
"""

from audionet.audio.format import AudioFormat

__all__ = ["AudioFormat"]
