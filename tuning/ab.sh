#!/usr/bin/env bash
# A/B comparison of two ringnfs configurations on this machine, same run.
# Starts server A and server B (memory backend by default, --control off, own state
# and export dirs in a temp dir, free loopback ports), then for ROUNDS rounds runs
# every workload against A and B, alternating who goes first. Prints, per workload,
# the median over rounds of B ÷ A for ops/s, p99 and server CPU µs/op (with min–max).
# Ratios > 1 for ops/s and < 1 for p99 / CPU µs/op mean B is better.
#
# Usage: tuning/ab.sh "A serve args" "B serve args"
#   e.g. tuning/ab.sh "" "--ring-entries 4096"
# Env: BIN (default: cargo build --release; target/release/ringnfs): runs the bench
#      (`$BIN bench` execs the ringnfs-bench next to BIN, which cargo build --release
#      puts there), and the servers unless SERVER_BIN_A / SERVER_BIN_B name another build for a side
#      (e.g. the previous commit's binary, to measure a change with the same arguments)
#      WORKLOADS="randread getattr"  ROUNDS=3  DURATION=3  WARMUP=1
#      CONNS=4  DEPTH=8  SESSIONS=1  FILE_MIB=64  BACKEND=memory
#      HOOK_A / HOOK_B: shell commands run before each A / B run (e.g. apply a sysctl
#      profile); RESTART=1 restarts the server before each run (so listen-time
#      settings such as the accept backlog follow the hooks).
#      OUT=dir: keep every run's JSON there.
set -euo pipefail
cd "$(dirname "$0")/.."
a_args=${1:-}
b_args=${2:-}
workloads=${WORKLOADS:-"randread getattr"}
rounds=${ROUNDS:-3}
duration=${DURATION:-3}
warmup=${WARMUP:-1}
conns=${CONNS:-4}
depth=${DEPTH:-8}
sessions=${SESSIONS:-1}
file_mib=${FILE_MIB:-64}
backend=${BACKEND:-memory}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/ringnfs
fi
tmp=$(mktemp -d)
out=${OUT:-$tmp/runs}
mkdir -p "$out"
declare -A pid port
cleanup() {
  for k in A B; do
    if [ -n "${pid[$k]:-}" ]; then kill "${pid[$k]}" 2>/dev/null || true; wait "${pid[$k]}" 2>/dev/null || true; fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # A|B
  local k=$1 args
  local bin
  if [ "$k" = A ]; then args=$a_args bin=${SERVER_BIN_A:-$BIN}; else args=$b_args bin=${SERVER_BIN_B:-$BIN}; fi
  if [ -n "${pid[$k]:-}" ]; then kill "${pid[$k]}" 2>/dev/null || true; wait "${pid[$k]}" 2>/dev/null || true; fi
  port[$k]=$(free_port)
  # shellcheck disable=SC2086
  "$bin" serve --listen 127.0.0.1:${port[$k]} --backend "$backend" --max-slots 256 --control off \
    --state-dir "$tmp/$k/state" --export "$tmp/$k/export" $args >>"$tmp/$k.log" 2>&1 &
  pid[$k]=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/${port[$k]}) 2>/dev/null && break; sleep 0.1; done
  kill -0 "${pid[$k]}" 2>/dev/null || { echo "server $k ($args) failed:" >&2; cat "$tmp/$k.log" >&2; exit 1; }
}
run() { # round A|B workload
  local r=$1 k=$2 w=$3 hook
  if [ "$k" = A ]; then hook=${HOOK_A:-}; else hook=${HOOK_B:-}; fi
  [ -n "$hook" ] && eval "$hook"
  [ "${RESTART:-0}" = 1 ] && start "$k"
  "$BIN" bench --server 127.0.0.1:${port[$k]} --workload "$w" --sessions "$sessions" \
    --connections "$conns" --depth "$depth" --duration "$duration" --warmup "$warmup" \
    --file-size-mib "$file_mib" --server-pid "${pid[$k]}" --quiet \
    --json "$out/$w-$k-$r.json" >/dev/null || [ $? = 1 ] # 1: errors, reported below
}
start A
start B
for r in $(seq "$rounds"); do
  for w in $workloads; do
    if [ $((r % 2)) = 1 ]; then run "$r" A "$w"; run "$r" B "$w"; else run "$r" B "$w"; run "$r" A "$w"; fi
  done
done
echo "A: ${SERVER_BIN_A:-$BIN} serve ${a_args:-(defaults)}"
echo "B: ${SERVER_BIN_B:-$BIN} serve ${b_args:-(defaults)}"
echo "($rounds rounds, ${sessions} session(s) × $conns conns × depth $depth, ${duration}s, backend $backend)"
python3 - "$out" "$rounds" $workloads <<'PY'
import json, sys, statistics as st
out, rounds, wls = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def load(w, k, r):
    j = json.load(open(f"{out}/{w}-{k}-{r}.json"))
    if j["error_total"] or j["connection_failures"]:
        sys.exit(f"errors in {w} {k} round {r}: {j['errors'] if 'errors' in j else j['error_total']}")
    return j
def fmt(xs):
    return f"**{st.median(xs):.2f}×** [{min(xs):.2f}–{max(xs):.2f}]"
print("| workload | ops/s A → B (medians) | ops/s B÷A | p99 B÷A | CPU µs/op A → B | CPU B÷A |")
print("|---|---|---|---|---|---|")
for w in wls:
    A = [load(w, "A", r) for r in range(1, rounds + 1)]
    B = [load(w, "B", r) for r in range(1, rounds + 1)]
    ops = [b["ops_per_sec"] / a["ops_per_sec"] for a, b in zip(A, B)]
    p99 = [b["latency_us"]["p99"] / a["latency_us"]["p99"] for a, b in zip(A, B)]
    cpu = [b["server_cpu_us_per_op"] / a["server_cpu_us_per_op"] for a, b in zip(A, B)
           if a.get("server_cpu_us_per_op") and b.get("server_cpu_us_per_op")]
    oa = st.median(a["ops_per_sec"] for a in A); ob = st.median(b["ops_per_sec"] for b in B)
    ca = st.median(a.get("server_cpu_us_per_op") or 0 for a in A)
    cb = st.median(b.get("server_cpu_us_per_op") or 0 for b in B)
    print(f"| {w} | {oa:,.0f} → {ob:,.0f} | {fmt(ops)} | {fmt(p99)} | {ca:.2f} → {cb:.2f} | {fmt(cpu) if cpu else '-'} |")
PY
