"""audionet: sound and data over unusual carriers.

Three systems in one package:

* :mod:`audionet.dns`: live audio streamed as DNS TXT records (AoDNS), playable through any resolver;
* :mod:`audionet.modem`: a reliable, TCP-like link over an analog audio cable (a software modem);
* :mod:`audionet.audiosocket`: an asyncio server and an Asterisk-like client for Asterisk's AudioSocket.

They share :mod:`audionet.audio` (formats, sources, sinks, resampling and codecs).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
