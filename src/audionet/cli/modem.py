"""``audionet modem``: a reliable link over an analog audio cable (a software modem)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from audionet.cli.main import add_command, add_group
from audionet.errors import ConfigError, TransferError

console = Console(stderr=True)
CHANNELS = ("none", "clean", "cable", "cable-hard", "phone")
PHYS = ("ofdm", "ofdm-phone", "manchester")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = add_group(
        sub,
        "modem",
        help="a reliable link over an analog audio cable (a software modem)",
        description="A reliable link over an analog audio cable or a phone line: OFDM with LDPC "
        "and rate adaptation\n(or the original Manchester line code), frames with CRC-32, "
        "connections with a\nselective-repeat window, ping and file transfer.",
        epilog="examples:\n  audionet modem loopback photo.jpg -o copy.jpg --channel cable-hard\n"
        "  audionet modem listen --audio cable:127.0.0.1:7700 --root shared/",
    )
    p = add_command(
        group,
        "loopback",
        _loopback,
        help="send a file between two simulated stations over a simulated cable",
        epilog="example:\n  audionet modem loopback photo.jpg -o copy.jpg --channel cable --window 16\n"
        "  audionet modem loopback photo.jpg -o copy.jpg --channel phone --phy ofdm-phone",
    )
    p.add_argument("file", type=Path, help="file to send")
    p.add_argument("-o", "--output", type=Path, required=True, help="where the receiver stores it")
    p.add_argument("--channel", choices=CHANNELS, default="cable", help="simulated line")
    p.add_argument("--seed", type=int, default=0, help="seed of the channel's noise")
    p.add_argument(
        "--latency", type=float, default=0.0, help="extra delay each way in seconds (sound cards)"
    )
    p.add_argument(
        "--half-duplex", action="store_true", help="one shared line, carrier sense (not two cables)"
    )
    _phy_options(p)
    _link_options(p)

    p = add_command(
        group,
        "encode",
        _encode,
        help="write a file's bytes as modem frames to a WAV file (one way, no acknowledgements)",
        epilog="example:\n  audionet modem encode notes.txt -o tx.wav\n"
        "  audionet modem encode notes.txt -o tx.wav --legacy",
    )
    p.add_argument("file", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help="WAV file to write")
    p.add_argument(
        "--frame-size", type=int, default=None, help="payload bytes per frame (512; legacy 256)"
    )
    _phy_options(p)

    p = add_command(
        group,
        "decode",
        _decode,
        help="recover the bytes of the frames in a WAV file",
        epilog="example:\n  audionet modem decode rx.wav -o notes.txt\n"
        "  (OFDM frames name their own mode; the sample rate is the WAV file's)",
    )
    p.add_argument("wav", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help="file to write")
    _phy_options(p)

    p = add_command(
        group,
        "listen",
        _listen,
        help="serve a folder: receive files sent to us, answer requests and pings",
        epilog="examples:\n  audionet modem listen --audio cable:127.0.0.1:7700 --root shared/\n"
        "  audionet modem listen --legacy --address 2:21 --audio device   "
        "# for the original program\n"
        "  audionet modem listen --audio audiosocket-listen:127.0.0.1:9301 --root inbox/  (a call)",
    )
    p.add_argument("--root", type=Path, default=Path("."), help="folder to serve and store into")
    p.add_argument("--address", default="2:21", help="our HOST:PORT (default 2:21)")
    _realtime_options(p)

    p = add_command(
        group,
        "send",
        _send,
        help="send a file or a directory to a listening station",
        epilog="examples:\n  audionet modem send photo.jpg --audio cable:127.0.0.1:7700\n"
        "  audionet modem send photo.jpg --legacy --peer 55:20 --address 1:10 --audio device\n"
        "  audionet modem send photo.jpg --audio audiosocket:127.0.0.1:9301  (dial the listener)",
    )
    p.add_argument("file", type=Path)
    p.add_argument("--as", dest="name", default=None, help="name on the other side")
    _peer_options(p)

    p = add_command(
        group,
        "get",
        _get,
        help="fetch a file (or with --dir a directory) from a listening station",
        epilog="examples:\n  audionet modem get docs/report.pdf -o . --audio cable:127.0.0.1:7700\n"
        "  audionet modem get folder1 --dir --legacy --peer 55:20 --address 1:10 --audio device",
    )
    p.add_argument("path", help="path on the other side, relative to its --root")
    p.add_argument("--dir", action="store_true", help="PATH is a directory")
    p.add_argument("-o", "--output", type=Path, default=Path("."), help="folder to store into")
    _peer_options(p)

    p = add_command(
        group,
        "ping",
        _ping,
        help="round-trip time and loss to another station",
        epilog="examples:\n  audionet modem ping --peer 2 --count 5 --audio cable:127.0.0.1:7700\n"
        "  audionet modem ping --legacy --peer 55 --audio device",
    )
    p.add_argument("--count", type=int, default=4)
    p.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds between pings (default 1: on a phone call with ofdm-phone a ping frame is "
        "about 0.5 s of air each way and a round trip about 1.5 s; the line is full duplex, so "
        "1 s apart they do not queue)",
    )
    _peer_options(p)
    _register_ofdm_tools(group)


def _register_ofdm_tools(group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``probe`` and ``analyze``: the OFDM line measured, and what a receiver saw in a recording."""
    p = add_command(
        group,
        "probe",
        _probe,
        help="measure the SNR per carrier both ways and pick each direction's OFDM mode",
        epilog="examples:\n  audionet modem probe --channel cable-hard\n"
        "  audionet modem probe --channel phone --phy ofdm-phone --margin 4\n"
        "  audionet modem probe --audio cable:127.0.0.1:7700 --peer 2   (a 'modem listen' there)",
    )
    p.add_argument("--channel", choices=CHANNELS, default="cable", help="simulated line (cable)")
    p.add_argument(
        "--audio", default=None, help="probe a real station ('device' or 'cable:HOST:PORT') "
        "instead of a simulated one",
    )  # fmt: skip
    p.add_argument("--phy", choices=PHYS[:2], default="ofdm", help="OFDM profile (ofdm)")
    p.add_argument("--rate", type=int, default=None, help="sample rate in Hz (the profile's)")
    p.add_argument("--margin", type=float, default=3.0, help="dB of SNR kept in reserve (3)")
    p.add_argument("--count", type=int, default=3, help="pings to exchange (3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated line's noise")
    p.add_argument("--peer", default="2:21", help="the listening station's HOST[:PORT]")
    p.add_argument("--address", default="1", help="our host byte (default 1)")
    p.add_argument("--timeout", type=float, default=30.0, help="give up after this many seconds")

    p = add_command(
        group,
        "analyze",
        _analyze,
        help="what an OFDM receiver sees in a recording: frames, SNR, clock offset, a picture",
        epilog="example:\n  audionet modem analyze rx.wav --plot rx.png\n"
        "(the plot needs matplotlib: pip install 'audionet[plot]')",
    )
    p.add_argument("wav", type=Path, help="recording (WAV, 8 kHz for ofdm-phone)")
    p.add_argument("--plot", type=Path, default=None, help="write the picture to this PNG")
    p.add_argument("--phy", choices=PHYS[:2], default=None, help="profile (default: by rate)")


def _probe(args: argparse.Namespace) -> int:
    from audionet.modem import probe

    if args.audio is None:
        result = probe.probe_simulated(
            _channel(args.channel) or "clean", args.phy, args.margin, args.seed, args.count
        )
    else:
        from audionet.modem.apps import PingClient
        from audionet.modem.link import ModemEndpoint, Station
        from audionet.modem.loopback import make_phy
        from audionet.modem.proto.host import ConnectionHost
        from audionet.modem.proto.ping import Pinger

        phy = make_phy(args.phy, args.rate, margin=args.margin)
        app = PingClient(Pinger(_peer(args.peer), count=args.count, interval=0.5))
        station = Station(ModemEndpoint(ConnectionHost(_peer(args.address).host), phy), [app])
        _run(args, station, serve=False)
        result = probe.report(phy, args.margin, len(app.replies))  # type: ignore[arg-type]
    print("\n".join(result.lines()))
    return 0 if result.outbound.mode and result.inbound.mode else 1


def _analyze(args: argparse.Namespace) -> int:
    from audionet.modem.analyze import analyze_wav, plot

    result = analyze_wav(args.wav, args.phy)
    print("\n".join(result.lines()))
    if args.plot is not None:
        plot(result, args.plot)
        print(f"picture -> {args.plot}")
    return 0 if result.frames else 1


def _phy_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bit-length",
        type=float,
        default=None,
        help="manchester: samples per bit (default 8); asks for manchester",
    )
    _rate_option(p)
    p.add_argument("--legacy", action="store_true", help="the original implementation's frames")
    _ofdm_options(p)


def _rate_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rate",
        type=int,
        default=None,
        help="sample rate in Hz (default: the PHY's: ofdm 48000 (or 44100), ofdm-phone 8000, "
        "manchester 44100)",
    )


def _ofdm_options(p: argparse.ArgumentParser) -> None:
    """The physical layer and, for OFDM, its mode (added to every command that runs a modem)."""
    p.add_argument(
        "--phy",
        choices=PHYS,
        default=None,
        help="physical layer: ofdm (audio cables, the default), ofdm-phone (telephone lines, "
        "8 kHz, G.711; the default on a phone call), manchester (the original line code; "
        "--legacy and --bit-length imply it)",
    )
    p.add_argument(
        "--mode",
        default="auto",
        help="OFDM payload mode: auto (rate adaptation; 'encode' uses qam64-3/4) or a fixed one, "
        "e.g. qam256-5/6, qam1024-3/4, qpsk-1/2",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=3.0,
        help="OFDM rate adaptation: dB of SNR kept in reserve (default 3)",
    )


def _link_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--frame-size",
        type=int,
        default=None,
        help=(
            "payload bytes per frame (default: ofdm 16384, ofdm-phone 8192, manchester 512; "
            "with --legacy 256, at most 32767)"
        ),
    )
    p.add_argument(
        "--window", type=int, default=16, help="frames in flight (1-33; --legacy: always 1)"
    )
    p.add_argument("--stop-and-wait", action="store_true", help="the original's link design")


def _realtime_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--audio",
        default="cable:127.0.0.1:7700",
        help="'device' (sound card), 'cable:HOST:PORT' (virtual cable to another process), or a "
        "phone call: 'audiosocket-listen:HOST:PORT' (an AudioSocket server that waits for "
        "Asterisk to connect the call) or 'audiosocket:HOST:PORT' (dial out like Asterisk's "
        "channel driver); a call is 8 kHz signed linear",
    )
    p.add_argument(
        "--channel", choices=CHANNELS, default="cable", help="simulated cable (not on a call)"
    )
    p.add_argument(
        "--bit-length",
        type=float,
        default=None,
        help="manchester: samples per bit (default 8; 2 on a phone call); asks for manchester",
    )
    _rate_option(p)
    _ofdm_options(p)
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    p.add_argument(
        "--legacy",
        action="store_true",
        help="speak the original implementation's protocol (its frames, line, connections, "
        "ping and FTP_* messages) to a station running the original program",
    )
    _link_options(p)


def _peer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--peer", default="2:21", help="the listening station's HOST[:PORT]")
    p.add_argument(
        "--address",
        default="1",
        help="our HOST[:PORT] (default 1; the port matters with --legacy, default 10: "
        "the original only hears the address its Connection names)",
    )
    _realtime_options(p)


def _frame_size(args: argparse.Namespace) -> int:
    """``--frame-size``, or the default of the protocol; checked against the legacy limit."""
    from audionet.modem.phy.ofdm import SUGGESTED_PAYLOAD
    from audionet.modem.proto.frame import MAX_LEGACY_PAYLOAD

    legacy = getattr(args, "legacy", False)
    size: int = args.frame_size or (256 if legacy else SUGGESTED_PAYLOAD.get(_phy_name(args), 512))
    if legacy and size > MAX_LEGACY_PAYLOAD:
        raise ConfigError(
            f"--legacy --frame-size {size}: the original reads the payload length as a signed "
            f"16-bit number, so a frame of more than {MAX_LEGACY_PAYLOAD} bytes would reach it as "
            f"header-only and its payload would be lost; use --frame-size {MAX_LEGACY_PAYLOAD} or "
            "less (the original's own is 256)"
        )
    if not 1 <= size <= 0xFFFF:
        raise ConfigError(f"--frame-size {size}: use 1..65535 bytes")
    return size


def _config(args: argparse.Namespace) -> Any:
    from audionet.modem.proto.arq import ArqConfig
    from audionet.modem.proto.legacy import LegacyConfig

    size = _frame_size(args)
    if getattr(args, "legacy", False):
        return LegacyConfig(max_payload=size)
    if args.stop_and_wait:
        return ArqConfig.stop_and_wait(size)
    config = ArqConfig(window=args.window, max_payload=size)
    if _on_call(args):
        from audionet.bridges.modem_call import phone_config

        config = phone_config(config)
    return config


def _on_call(args: argparse.Namespace) -> bool:
    """Whether the station's audio is a phone call (an AudioSocket leg)."""
    return str(getattr(args, "audio", "")).startswith("audiosocket")


def _phy_name(args: argparse.Namespace) -> str:
    """The physical layer: --legacy implies manchester, so does a --bit-length; else --phy, or by
    default ofdm-phone on a phone call and ofdm on a cable."""
    if args.legacy:
        return "manchester"
    if getattr(args, "phy", None):
        return str(args.phy)
    if getattr(args, "bit_length", None) is not None:
        return "manchester"
    return "ofdm-phone" if _on_call(args) else "ofdm"


def _channel(name: str) -> str | None:
    return None if name == "none" else name


# -- loopback, encode, decode -----------------------------------------------------------------


def _loopback(args: argparse.Namespace) -> int:
    from audionet.modem.loopback import run_loopback

    if not args.file.is_file():
        raise ConfigError(f"{args.file}: no such file")
    config = _config(args)  # bad settings fail before the progress bar starts
    total = args.file.stat().st_size
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn(
            "{task.fields[rate]:.2f} kbit/s  air {task.fields[air]:.0f} s  ETA {task.fields[eta]}"
        ),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("loopback", total=total, rate=0.0, air=0.0, eta="?")

        def update(done: int, size: int, air: float) -> None:
            rate = 8 * done / air / 1000 if air > 0 else 0.0
            eta = f"{(size - done) * 8 / (rate * 1000):.0f} s" if rate > 0 else "?"
            progress.update(task, completed=done, rate=rate, air=air, eta=eta)

        result = run_loopback(
            args.file,
            args.output,
            channel=_channel(args.channel),
            phy=_phy_name(args),
            mode=args.mode,
            margin=args.margin,
            samples_per_bit=args.bit_length or 8,
            sample_rate=args.rate,
            config=config,
            seed=args.seed,
            latency=args.latency,
            half_duplex=args.half_duplex,
            progress=update,
            legacy=args.legacy,
        )
    # result.ok: this run's receiver stored the file and its SHA-256 equals the source's (a copy
    # left by an earlier run does not count)
    same = result.ok
    print(
        f"sent {result.size} bytes over '{args.channel}' with {_phy_name(args)} "
        f"in {result.seconds:.1f} s of air time"
    )
    print(
        f"goodput {result.goodput / 1000:.2f} kbit/s, {result.frames_sent} frames, "
        f"{result.retransmissions} retransmissions, {result.frames_bad} damaged frames heard"
    )
    print(
        f"SHA-256 {'matches' if same else 'DIFFERS (or no copy arrived)'}"
        + (f" ({result.error})" if result.error else "")
    )
    return 0 if same else 1


def _phy(args: argparse.Namespace, mode: str | None = None, *, wav: bool = False) -> Any:
    from audionet.modem.loopback import make_phy

    if _on_call(args):
        from audionet.bridges.modem_call import phone_phy

        return phone_phy(
            _phy_name(args),
            args.bit_length,
            args.rate,
            args.legacy,
            mode=mode or args.mode,
            margin=args.margin,
        )
    # the original plays a third of full scale on a sound card, full scale into a WAV file
    amplitude = 1.0 if wav and args.legacy else None
    return make_phy(
        _phy_name(args),
        args.rate,
        args.bit_length or 8,
        mode or args.mode,
        legacy=args.legacy,
        margin=args.margin,
        amplitude=amplitude,
    )


def _encode(args: argparse.Namespace) -> int:
    from audionet.modem.backends import encode_wav
    from audionet.modem.proto.frame import Address, Flags, Frame, get_profile

    data = args.file.read_bytes()
    profile = get_profile("legacy" if args.legacy else "audionet")
    size = _frame_size(args)
    chunks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    modulo = 256 if args.legacy else 0x10000
    frames = [
        Frame(
            Address(1, 0),
            Address(2, 0),
            i % modulo,
            (Flags.BEG if i == 0 else Flags.NONE)
            | (Flags.END if i == len(chunks) - 1 else Flags.NONE),
            payload=chunk,
        )
        for i, chunk in enumerate(chunks)
    ]
    phy = _phy(args, _encode_mode(args), wav=True)
    seconds = encode_wav(frames, args.output, phy, profile, eight_bit=args.legacy)
    print(f"{len(data)} bytes in {len(frames)} frames, {seconds:.2f} s of audio -> {args.output}")
    return 0


def _encode_mode(args: argparse.Namespace) -> str:
    """One way there is no feedback to adapt to: ``auto`` means the profile's default mode."""
    from audionet.modem.phy.ofdm import DEFAULT_MODE

    if args.mode != "auto":
        return str(args.mode)
    return DEFAULT_MODE.get(_phy_name(args), "auto")


def _decode(args: argparse.Namespace) -> int:
    from audionet.audio.wav import open_wav
    from audionet.modem.backends import decode_wav
    from audionet.modem.proto.frame import Flags, get_profile

    profile = get_profile("legacy" if args.legacy else "audionet")
    if args.rate is None and _phy_name(args) != "manchester":
        with open_wav(args.wav) as w:
            args.rate = w.getframerate()  # OFDM: the file's rate (48000, 44100, 8000)
    result = decode_wav(args.wav, _phy(args), profile)
    modulo = 256 if args.legacy else 0x10000
    data = bytearray()
    begun = ended = False
    gaps = 0
    previous = None
    for frame in result.frames:
        if previous is not None:
            if frame == previous:
                continue  # the same frame heard twice
            gaps += frame.seq != (previous.seq + 1) % modulo
        previous = frame
        begun |= bool(frame.flags & Flags.BEG)
        ended |= bool(frame.flags & Flags.END)
        data += frame.payload
    args.output.write_bytes(bytes(data))
    complete = begun and ended and gaps == 0
    print(
        f"{len(result.frames)} frames good, {result.bad} bad, {len(data)} bytes -> {args.output}"
        + ("" if complete else " (INCOMPLETE: frames missing)")
    )
    return 0 if complete and result.bad == 0 else 1


# -- real time: listen, send, get, ping -------------------------------------------------------


def _station(args: argparse.Namespace, host: int, apps: list[Any]) -> Any:
    from audionet.modem.link import ModemEndpoint, Station
    from audionet.modem.proto.frame import get_profile
    from audionet.modem.proto.host import ConnectionHost
    from audionet.modem.proto.legacyhost import LegacyHost

    config = _config(args)  # bad settings fail before the line opens
    phy = _phy(args)
    profile = get_profile("legacy" if args.legacy else "audionet")
    link = LegacyHost(host, config) if args.legacy else ConnectionHost(host, config)
    return Station(ModemEndpoint(link, phy, profile), apps)


def _run(
    args: argparse.Namespace,
    station: Any,
    serve: bool,
    until: Callable[[], bool] | None = None,
    on_tick: Callable[[float], None] | None = None,
) -> bool:
    from audionet.modem.realtime import open_audio, run_realtime

    on_call = args.audio.startswith("audiosocket")
    line = "the call" if on_call else "the other end of the cable"

    async def once() -> bool:
        if serve or args.audio.startswith("audiosocket-listen"):
            console.print(f"waiting for {line} ({args.audio}) ...")
        port = await open_audio(args.audio, station.endpoint.rate, _channel(args.channel), serve)
        try:
            done = await run_realtime(station, port, until=until, on_tick=on_tick)
        finally:
            await port.close()
        if not done and on_call and not serve:
            raise TransferError(
                f"{getattr(port, 'end_reason', 'the call ended')} before the station was done"
            )
        return done

    async def main() -> bool:
        done = await once()
        while serve and not done:  # a listener takes the next plug when the other end leaves
            console.print("the call ended" if on_call else "the other end unplugged")
            done = await once()
        return done

    async def bounded() -> bool:
        try:
            return await asyncio.wait_for(main(), args.timeout) if args.timeout else await main()
        except TimeoutError:
            return False

    return asyncio.run(bounded())


def _listen(args: argparse.Namespace) -> int:
    from audionet.modem.apps import FileServer
    from audionet.modem.legacyapps import LegacyFileServer
    from audionet.modem.proto.files import FileReceived, TransferFailed
    from audionet.modem.proto.frame import Address

    address = Address.parse(args.address)
    _config(args)  # bad settings fail before anything starts
    args.root.mkdir(parents=True, exist_ok=True)
    checked = "" if args.legacy else ", SHA-256 verified"
    with _transfer_progress() as progress:
        tasks: dict[str, Any] = {}

        def on_progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(f"receive {name}", total=total)
            progress.update(tasks[name], completed=done)

        def on_event(event: Any) -> None:
            task = tasks.pop(getattr(event, "path", ""), None)
            if task is not None:
                progress.remove_task(task)
            if isinstance(event, FileReceived):
                console.print(f"received {event.local} ({event.size} bytes{checked})")
            elif isinstance(event, TransferFailed):
                console.print(f"[red]transfer failed[/red]: {event.path}: {event.reason}")

        server: Any
        if args.legacy:
            server = LegacyFileServer(args.root, address.port, on_event=on_event)
        else:
            server = FileServer(args.root, address.port, progress=on_progress, on_event=on_event)
        station = _station(args, address.host, [server])
        what = " for the original program" if args.legacy else ""
        console.print(f"station {address} serving {args.root.resolve()}{what} (Ctrl-C to stop)")
        _run(args, station, serve=True, until=lambda: False)
    return 0


def _transfer_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _client(args: argparse.Namespace, client: Any, total: int, what: str) -> int:
    from audionet.modem.legacyapps import CLIENT_PORT
    from audionet.modem.proto.frame import Address

    ours = (
        args.address if ":" in args.address or not args.legacy else f"{args.address}:{CLIENT_PORT}"
    )
    station = _station(args, Address.parse(ours).host, [client])
    with _transfer_progress() as progress:
        task = progress.add_task(what, total=total or None)
        client.progress = lambda name, done, size: progress.update(task, completed=done, total=size)

        def tick(now: float) -> None:
            conn = client.connection
            if conn is not None and client.local is not None:
                progress.update(task, completed=conn.stats.bytes_acked)
            elif conn is not None and args.legacy:  # the original sends no sizes
                progress.update(task, completed=conn.stats.bytes_received)

        _run(args, station, serve=False, on_tick=tick)
    if not client.done:
        listener = "the original program" if args.legacy else "'audionet modem listen'"
        raise TransferError(f"timed out; is {listener} running on the other end?")
    client.raise_for_error()
    return 0


def _file_client(
    args: argparse.Namespace,
    name: str,
    root: Path,
    *,
    local: Path | None = None,
    directory: bool = False,
) -> Any:
    from audionet.modem.apps import FileClient
    from audionet.modem.legacyapps import CLIENT_PORT, LegacyFileClient
    from audionet.modem.proto.frame import Address
    from audionet.modem.proto.legacyfiles import check_name

    peer = _peer(args.peer)
    _config(args)  # bad settings fail before anything starts
    if not args.legacy:
        return FileClient(peer, name, root, local=local, directory=directory)
    check_name(name)  # the original resolves any path it is given, outside its folder too
    ours = Address.parse(args.address if ":" in args.address else f"{args.address}:{CLIENT_PORT}")
    return LegacyFileClient(peer, name, root, local=local, directory=directory, port=ours.port)


def _send(args: argparse.Namespace) -> int:
    if not args.file.exists():
        raise ConfigError(f"{args.file}: no such file or directory")
    name = args.name or args.file.name
    client = _file_client(args, name, args.file.parent, local=args.file)
    total = args.file.stat().st_size if args.file.is_file() else 0
    _client(args, client, total, f"send {name}")
    print(f"sent {args.file} to {client.remote} as {name}")
    return 0


def _get(args: argparse.Namespace) -> int:
    from audionet.modem.proto.files import FileReceived

    client = _file_client(args, args.path, args.output, directory=args.dir)
    args.output.mkdir(parents=True, exist_ok=True)
    _client(args, client, 0, f"get {args.path}")
    checked = "" if args.legacy else ", SHA-256 verified"
    files = [e for e in client.events if isinstance(e, FileReceived)]
    for f in files:
        print(f"received {f.local} ({f.size} bytes{checked})")
    return 0


def _ping(args: argparse.Namespace) -> int:
    from audionet.modem.apps import PingClient
    from audionet.modem.proto.ping import Pinger

    peer = _peer(args.peer)
    if args.legacy and args.count > 256:
        raise ConfigError("--legacy pings carry an 8-bit sequence number: use --count 256 or less")
    pinger = Pinger(peer, count=args.count, interval=args.interval)
    app = PingClient(
        pinger,
        on_reply=lambda seq, rtt: print(
            f"reply from {peer.host}: seq={seq} time={rtt * 1e3:.1f} ms"
        ),
    )
    station = _station(args, _peer(args.address).host, [app])
    _run(args, station, serve=False)
    stats = pinger.stats()
    print(f"--- {peer.host} ping statistics ---\n{stats.summary()}")
    return 0 if stats.received else 1


def _peer(text: str) -> Any:
    from audionet.modem.apps import FILE_PORT
    from audionet.modem.proto.frame import Address

    return Address.parse(text if ":" in text else f"{text}:{FILE_PORT}")
