#!/usr/bin/env bash
# Scaling (issue 7, item 4): ops/s, p99 and server CPU µs/op as connections trunked
# into one session grow 1→16, and as sessions (one connection each) grow 1→64, at
# depth 8 per connection, against one ringnfs (memory backend, --max-slots 256,
# --control off, state and export in a temp dir, a free loopback port).
# Prints a Markdown table. The load generator shares the machine's cores with the
# server, so on a 2-core machine expect a plateau at two cores' worth.
#
# Usage: benches/scaling.sh [seconds per run, default 4]
# Env: BIN=path/to/ringnfs (default: cargo build --release, target/release/ringnfs)
#      WORKLOADS="sequence getattr"  CONNS="1 2 4 8 16"  SESSIONS="1 2 4 8 16 32 64"
#      DEPTH=8  WARMUP=1
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-4}
warmup=${WARMUP:-1}
depth=${DEPTH:-8}
workloads=${WORKLOADS:-"sequence getattr"}
conns=${CONNS:-"1 2 4 8 16"}
sessions=${SESSIONS:-"1 2 4 8 16 32 64"}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/ringnfs
fi
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --listen 127.0.0.1:$port --backend memory --max-slots 256 --control off \
  --state-dir "$tmp/state" --export "$tmp/export" >"$tmp/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
kill -0 $pid || { cat "$tmp/server.log"; exit 1; }

echo "| workload | shape | sessions × conns × depth | ops/s | p99 µs | server CPU µs/op |"
echo "|---|---|---|---|---|---|"
run() { # workload shape sessions connections
  "$BIN" bench --server 127.0.0.1:$port --workload "$1" --sessions "$3" --connections "$4" \
    --depth "$depth" --duration "$secs" --warmup "$warmup" --server-pid $pid --quiet \
    --json "$tmp/r.json" >/dev/null
  python3 - "$tmp/r.json" "$1" "$2" "$3×$4×$depth" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r.get("latency_us", {})
cpu = r.get("server_cpu_us_per_op")
assert r["error_total"] == 0 and not r["connection_failures"], r
cpu = "-" if cpu is None else f"{cpu:.2f}"
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {r['ops_per_sec']:,.0f} | {lat.get('p99', 0):,.1f} | {cpu} |")
PY
}
for w in $workloads; do
  for c in $conns; do run "$w" trunked 1 "$c"; done
  for s in $sessions; do run "$w" sessions "$s" 1; done
done
