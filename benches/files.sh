#!/usr/bin/env bash
# File-service figures (issue 4) with the in-repo load generator against a local ringnfs,
# on both backends: GETATTR at queue depth 1 and 64, 4 KiB random read/write IOPS,
# sequential 1 MiB read and write MiB/s. The generator shares the 2 cores with the
# server. Prints a Markdown table. Usage: benches/files.sh [seconds per run, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
port=${PORT:-20498}
cargo build --release --quiet
bin=target/release/ringnfs
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

echo "| backend | workload | conns x depth | ops/s | MiB/s | p50 us | p99 us | server CPU us/op |"
echo "|---|---|---|---|---|---|---|---|"
run() { # backend workload connections depth
  $bin bench --server 127.0.0.1:$port --workload "$2" --connections "$3" --depth "$4" \
    --duration "$secs" --warmup 1 --server-pid $pid --quiet --file-size-mib 256 \
    --json "$work/r.json" >/dev/null || [ $? = 1 ] # 1: errors, asserted on the JSON below
  python3 - "$work/r.json" "$1" "$2" "$3x$4" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["error_total"] == 0 and not r["connection_failures"], r
lat = r["latency_us"]
cpu = r.get("server_cpu_us_per_op")
mib = f"{r['mib_per_sec']:.0f}" if r["mib_per_sec"] else "-"
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {r['ops_per_sec']:,.0f} | {mib} | {lat['p50']:.1f} | {lat['p99']:.1f} | {cpu if cpu is None else round(cpu, 2)} |")
PY
}
for backend in memory local; do
  rm -rf "$work/export"
  $bin serve --listen 127.0.0.1:$port --backend $backend --export "$work/export" \
    --state-dir "$work/state" --max-slots 256 --control off >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  run $backend getattr 1 1
  run $backend getattr 1 64
  run $backend randread 4 16
  run $backend randwrite 4 16
  run $backend read 4 4
  run $backend write 4 4
  kill $pid; wait $pid || true
done
