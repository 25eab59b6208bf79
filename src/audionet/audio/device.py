"""The sound card through sounddevice (PortAudio): an optional extra, imported only when used.

``pip install 'audionet[device]'`` installs sounddevice; it also needs the PortAudio library
(Debian/Ubuntu: ``apt-get install libportaudio2``). Without either, :func:`load_sounddevice` raises a
:class:`DependencyError` that says exactly that.
"""

from __future__ import annotations

from types import ModuleType

from audionet.errors import DependencyError


def load_sounddevice() -> ModuleType:
    """Import sounddevice, turning both ways it can be missing into one clear error."""
    try:
        import sounddevice
    except ImportError as exc:
        raise DependencyError(
            "the sound device needs the 'device' extra: pip install 'audionet[device]'"
        ) from exc
    except OSError as exc:  # sounddevice is installed but the PortAudio library is not
        raise DependencyError(
            f"the sound device needs the PortAudio library ({exc}); on Debian/Ubuntu: "
            "apt-get install libportaudio2"
        ) from exc
    module: ModuleType = sounddevice
    return module
