#!/usr/bin/env bash
# The peers `make bench` runs against, from Debian's packages: NSD and dnsperf (bench/dns_qps.py),
# unbound (bench/dns_stream.py, bench/bridges.py), Go for the Go AudioSocket echo
# (bench/audiosocket_calls.py). amodem comes from PyPI into its own venv (bench/modem_ofdm.py).
# Installs what is missing when apt-get can run (root, or sudo without a password); otherwise says
# in one line what to install, and the benchmarks that need a missing peer say so in their tables.
set -uo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have nsd || need+=(nsd)
have dnsperf || need+=(dnsperf)
have unbound || need+=(unbound)
have go || need+=(golang-go)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
if command -v apt-get >/dev/null 2>&1 && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
    echo "installing the benchmark peers: ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y --no-install-recommends "${need[@]}" >&2 \
        || { $SUDO apt-get update >&2 && $SUDO apt-get install -y --no-install-recommends "${need[@]}" >&2; } \
        || echo "could not install ${need[*]}: apt-get install ${need[*]}" >&2
else
    echo "benchmark peers missing: apt-get install ${need[*]}" >&2
fi
exit 0
