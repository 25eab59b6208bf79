"""``audionet modem``: a reliable link over an analog audio cable (a software modem)."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = add_group(
        sub,
        "modem",
        help="a reliable link over an analog audio cable (a software modem)",
        description="A reliable link over an analog audio cable: Manchester line code, frames with "
        "CRC-32,\nconnections with a selective-repeat window, ping and file transfer.",
        epilog="examples:\n  audionet modem loopback photo.jpg -o copy.jpg --channel cable-hard\n"
        "  audionet modem listen --audio cable:127.0.0.1:7700 --root shared/",
    )
    p = add_command(
        group,
        "loopback",
        _loopback,
        help="send a file between two simulated stations over a simulated cable",
        epilog="example:\n  audionet modem loopback photo.jpg -o copy.jpg --channel cable --window 16",
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
    p.add_argument("--frame-size", type=int, default=None, help="payload bytes per frame")
    _phy_options(p)

    p = add_command(
        group,
        "decode",
        _decode,
        help="recover the bytes of the frames in a WAV file",
        epilog="example:\n  audionet modem decode rx.wav -o notes.txt",
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
        epilog="example:\n  audionet modem get docs/report.pdf -o . --audio cable:127.0.0.1:7700",
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
        epilog="example:\n  audionet modem ping --peer 2 --count 5 --audio cable:127.0.0.1:7700",
    )
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--interval", type=float, default=1.0, help="seconds between pings")
    _peer_options(p)


def _phy_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bit-length", type=float, default=8, help="samples per bit (default 8)")
    p.add_argument("--rate", type=int, default=44100, help="sample rate in Hz (default 44100)")
    p.add_argument("--legacy", action="store_true", help="the original implementation's frames")


def _link_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frame-size", type=int, default=512, help="payload bytes per frame")
    p.add_argument("--window", type=int, default=16, help="frames in flight (1-33)")
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
        "--bit-length", type=float, help="samples per bit (default 8; 2 on a phone call)"
    )
    p.add_argument("--rate", type=int, help="sample rate in Hz (default 44100; 8000 on a call)")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    p.add_argument(
        "--legacy",
        action="store_true",
        help="the original implementation's frames and line (ping and listen answer pings only)",
    )
    _link_options(p)


def _peer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--peer", default="2:21", help="the listening station's HOST[:PORT]")
    p.add_argument("--address", default="1", help="our host byte (default 1)")
    _realtime_options(p)


def _config(args: argparse.Namespace) -> Any:
    from audionet.modem.proto.arq import ArqConfig

    if args.stop_and_wait:
        config = ArqConfig.stop_and_wait(args.frame_size)
    else:
        config = ArqConfig(window=args.window, max_payload=args.frame_size)
    if str(getattr(args, "audio", "")).startswith("audiosocket"):
        from audionet.bridges.modem_call import phone_config

        config = phone_config(config)
    return config


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
            samples_per_bit=args.bit_length,
            sample_rate=args.rate,
            config=config,
            seed=args.seed,
            latency=args.latency,
            half_duplex=args.half_duplex,
            progress=update,
        )
    same = args.output.exists() and _sha256(args.output) == _sha256(args.file)
    print(f"sent {result.size} bytes over '{args.channel}' in {result.seconds:.1f} s of air time")
    print(
        f"goodput {result.goodput / 1000:.2f} kbit/s, {result.frames_sent} frames, "
        f"{result.retransmissions} retransmissions, {result.frames_bad} damaged frames heard"
    )
    print(
        f"SHA-256 {'matches' if same else 'DIFFERS'}"
        + (f" ({result.error})" if result.error else "")
    )
    return 0 if same and result.ok else 1


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _phy(args: argparse.Namespace) -> Any:
    from audionet.modem.phy import get_phy

    if str(getattr(args, "audio", "")).startswith("audiosocket"):
        from audionet.bridges.modem_call import phone_phy

        return phone_phy(getattr(args, "phy", None), args.bit_length, args.rate, args.legacy)
    return get_phy(
        "manchester",
        sample_rate=args.rate or 44100,
        samples_per_bit=args.bit_length or 8,
        legacy=args.legacy,
    )


def _encode(args: argparse.Namespace) -> int:
    from audionet.modem.backends import encode_wav
    from audionet.modem.proto.frame import Address, Flags, Frame, get_profile

    data = args.file.read_bytes()
    profile = get_profile("legacy" if args.legacy else "audionet")
    size = args.frame_size or (256 if args.legacy else 512)
    if not 1 <= size <= 0xFFFF:
        raise ConfigError("--frame-size must be 1..65535 bytes")
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
    seconds = encode_wav(frames, args.output, _phy(args), profile, eight_bit=args.legacy)
    print(f"{len(data)} bytes in {len(frames)} frames, {seconds:.2f} s of audio -> {args.output}")
    return 0


def _decode(args: argparse.Namespace) -> int:
    from audionet.modem.backends import decode_wav
    from audionet.modem.proto.frame import Flags, get_profile

    profile = get_profile("legacy" if args.legacy else "audionet")
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

    phy = _phy(args)
    profile = get_profile("legacy" if args.legacy else "audionet")
    endpoint = ModemEndpoint(ConnectionHost(host, _config(args)), phy, profile)
    return Station(endpoint, apps)


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
    from audionet.modem.proto.files import FileReceived, TransferFailed
    from audionet.modem.proto.frame import Address

    address = Address.parse(args.address)
    args.root.mkdir(parents=True, exist_ok=True)
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
                console.print(f"received {event.local} ({event.size} bytes, SHA-256 verified)")
            elif isinstance(event, TransferFailed):
                console.print(f"[red]transfer failed[/red]: {event.path}: {event.reason}")

        server = FileServer(args.root, address.port, progress=on_progress, on_event=on_event)
        station = _station(args, address.host, [server])
        console.print(f"station {address} serving {args.root.resolve()} (Ctrl-C to stop)")
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
    from audionet.modem.proto.frame import Address

    if args.legacy:
        raise ConfigError(
            "file transfer needs connections, which the legacy frame cannot carry: drop --legacy"
        )
    station = _station(args, Address.parse(args.address).host, [client])
    with _transfer_progress() as progress:
        task = progress.add_task(what, total=total or None)
        client.progress = lambda name, done, size: progress.update(task, completed=done, total=size)

        def tick(now: float) -> None:
            conn = client.connection
            if client.local is not None and conn is not None:
                progress.update(task, completed=conn.stats.bytes_acked)

        _run(args, station, serve=False, on_tick=tick)
    if not client.done:
        raise TransferError("timed out; is 'audionet modem listen' running on the other end?")
    client.raise_for_error()
    return 0


def _send(args: argparse.Namespace) -> int:
    from audionet.modem.apps import FileClient

    if not args.file.exists():
        raise ConfigError(f"{args.file}: no such file or directory")
    peer = _peer(args.peer)
    name = args.name or args.file.name
    client = FileClient(peer, name, args.file.parent, local=args.file)
    total = args.file.stat().st_size if args.file.is_file() else 0
    _client(args, client, total, f"send {name}")
    print(f"sent {args.file} to {peer} as {name}")
    return 0


def _get(args: argparse.Namespace) -> int:
    from audionet.modem.apps import FileClient
    from audionet.modem.proto.files import FileReceived

    args.output.mkdir(parents=True, exist_ok=True)
    client = FileClient(_peer(args.peer), args.path, args.output, directory=args.dir)
    _client(args, client, 0, f"get {args.path}")
    files = [e for e in client.events if isinstance(e, FileReceived)]
    for f in files:
        print(f"received {f.local} ({f.size} bytes, SHA-256 verified)")
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
