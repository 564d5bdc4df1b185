#!/usr/bin/env bash
# Scaling (issue 7, item 4): ops/s, p99 and server CPU µs/op as connections trunked
# into one session grow 1→16, and as sessions (one connection each) grow 1→64, at
# depth 8 per connection, against one ringnfs (memory backend, --max-slots 256,
# --control off, state and export in a temp dir, a free loopback port).
# Prints a Markdown table. The load generator shares the machine's cores with the
# server, so on a 2-core machine expect a plateau at two cores' worth.
#
# Every configuration runs ROUNDS times (rounds outermost, so slow phases of other
# load on the machine spread over all configurations); the table shows the median
# round by ops/s, with the min–max ops/s over rounds.
#
# Usage: benches/scaling.sh [seconds per run, default 4]
# Env: BIN=path/to/ringnfs (default: cargo build --release, target/release/ringnfs);
#      `$BIN bench` needs ringnfs-bench in the same directory (cargo build --release)
#      WORKLOADS="sequence getattr"  CONNS="1 2 4 8 16"  SESSIONS="1 2 4 8 16 32 64"
#      DEPTH=8  WARMUP=1  ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-4}
warmup=${WARMUP:-1}
rounds=${ROUNDS:-3}
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

run() { # round workload shape sessions connections
  "$BIN" bench --server 127.0.0.1:$port --workload "$2" --sessions "$4" --connections "$5" \
    --depth "$depth" --duration "$secs" --warmup "$warmup" --server-pid $pid --quiet \
    --json "$tmp/r-$2-$3-$4-$5-$1.json" >/dev/null || [ $? = 1 ] # 1: errors, asserted below
}
for r in $(seq "$rounds"); do
  for w in $workloads; do
    for c in $conns; do run "$r" "$w" trunked 1 "$c"; done
    for s in $sessions; do run "$r" "$w" sessions "$s" 1; done
  done
done
cfgs=()
for w in $workloads; do
  for c in $conns; do cfgs+=("$w trunked 1 $c"); done
  for s in $sessions; do cfgs+=("$w sessions $s 1"); done
done
python3 - "$tmp" "$rounds" "$depth" "${cfgs[@]}" <<'PY'
import json, sys
tmp, rounds, depth, cfgs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
print("| workload | shape | sessions × conns × depth | ops/s (median round) | ops/s min–max | p99 µs | server CPU µs/op |")
print("|---|---|---|---|---|---|---|")
for cfg in cfgs:
    w, shape, s, c = cfg.split()
    runs = []
    for r in range(1, rounds + 1):
        j = json.load(open(f"{tmp}/r-{w}-{shape}-{s}-{c}-{r}.json"))
        assert j["error_total"] == 0 and not j["connection_failures"], j
        runs.append(j)
    runs.sort(key=lambda j: j["ops_per_sec"])
    m = runs[len(runs) // 2]
    cpu = m.get("server_cpu_us_per_op")
    cpu = "-" if cpu is None else f"{cpu:.2f}"
    lo, hi = runs[0]["ops_per_sec"], runs[-1]["ops_per_sec"]
    print(f"| {w} | {shape} | {s}×{c}×{depth} | {m['ops_per_sec']:,.0f} | {lo:,.0f}–{hi:,.0f} "
          f"| {m.get('latency_us', {}).get('p99', 0):,.1f} | {cpu} |")
PY
