"""A UDP query flood from one source address, for rate limiting tests (run as a subprocess).

    python -m tests.dns.flood --source 127.0.9.9 --server 127.0.0.1:5053 --name N --rate 2000 --seconds 4

It sends the same TXT query (EDNS, 4096 bytes: the full pack comes back over UDP, the
amplification an attacker wants) at a steady rate from ``--source``, never retries over TCP (a
forged victim would not), reads every response, and prints one JSON line: queries sent, answers
per second split into full and truncated (TC), and bytes each way.
"""

from __future__ import annotations

import argparse
import json
import socket
import time

import dns.flags
import dns.message


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--server", required=True, help="HOST:PORT")
    ap.add_argument("--name", required=True)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    host, _, port = args.server.rpartition(":")
    wire = bytearray(dns.message.make_query(args.name, "TXT", use_edns=0, payload=4096).to_wire())
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.source, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.setblocking(False)
    dest = (host, int(port))
    seconds = int(args.seconds + 0.999)
    full = [0] * (seconds + 2)
    truncated = [0] * (seconds + 2)
    sent = bytes_out = bytes_in = 0
    start = time.monotonic()
    end = start + args.seconds

    def drain() -> None:
        nonlocal bytes_in
        while True:
            try:
                data = sock.recv(65535)
            except BlockingIOError:
                return
            bytes_in += len(data)
            second = min(int(time.monotonic() - start), seconds + 1)
            if data[2] & (dns.flags.TC >> 8):
                truncated[second] += 1
            else:
                full[second] += 1

    while (now := time.monotonic()) < end:
        due = int((now - start) * args.rate)
        while sent < due:
            wire[0:2] = (sent & 0xFFFF).to_bytes(2, "big")
            sock.sendto(wire, dest)
            sent += 1
            bytes_out += len(wire)
        drain()
        time.sleep(0.002)
    time.sleep(0.5)  # the last answers
    drain()
    print(
        json.dumps(
            {
                "sent": sent,
                "full": full,
                "truncated": truncated,
                "bytes_out": bytes_out,
                "bytes_in": bytes_in,
            }
        )
    )


if __name__ == "__main__":
    main()
