"""The optional C extension (the per-frame core of an AudioSocket call); everything else is in
pyproject.toml. Without a C compiler the package installs without it and runs the same code in
Python (audionet.audiosocket.framecore)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "audionet.audiosocket._framecore",
            ["src/audionet/audiosocket/_framecore.c"],
            # no fused multiply-add: the same double roundings as the Python twin
            extra_compile_args=["-O2", "-ffp-contract=off"],
            optional=True,
        )
    ]
)
