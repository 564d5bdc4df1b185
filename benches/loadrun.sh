#!/usr/bin/env bash
# First load run (issue 3): NULL and SEQUENCE-only COMPOUND rates against a local
# ringnfs, with 1, 4 and 16 connections trunked into one session and with 16 sessions.
# The load generator runs on the same 2 cores as the server. Prints a Markdown table.
# Usage: benches/loadrun.sh [seconds per run, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
port=${PORT:-20499}
cargo build --release --quiet
bin=target/release/ringnfs
state=$(mktemp -d)
$bin serve --listen 127.0.0.1:$port --state-dir "$state" --max-slots 256 --control off >"$state/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$state"' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

echo "| workload | sessions x connections x depth | ops/s | p50 us | p99 us | server CPU us/op |"
echo "|---|---|---|---|---|---|"
run() { # workload sessions connections depth
  $bin bench --server 127.0.0.1:$port --workload "$1" --sessions "$2" --connections "$3" --depth "$4" \
    --duration "$secs" --warmup 1 --server-pid $pid --quiet --json "$state/r.json" >/dev/null \
    || [ $? = 1 ] # 1: errors, asserted on the JSON below
  python3 - "$state/r.json" "$1" "$2x$3x$4" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r.get("latency_us", {})
cpu = r.get("server_cpu_us_per_op")
assert r["error_total"] == 0 and not r["connection_failures"], r
print(f"| {sys.argv[2]} | {sys.argv[3]} | {r['ops_per_sec']:,.0f} | {lat.get('p50', 0):.1f} | {lat.get('p99', 0):.1f} | {cpu if cpu is None else round(cpu, 2)} |")
PY
}
for w in null sequence; do
  run $w 1 1 8
  run $w 1 4 8
  run $w 1 16 8
  run $w 16 1 8
done
