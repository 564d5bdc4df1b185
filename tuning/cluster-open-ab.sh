#!/usr/bin/env bash
# Same-run A/B: the create workload (OPEN with create + CLOSE per file) against one
# server and against a node of a one-member etcd cluster, alternating, memory backend.
set -euo pipefail
B=${B:-$(dirname "$0")/../target/release/ringnfs}
D=$(mktemp -d)
etcd --data-dir "$D/etcd" --listen-client-urls http://127.0.0.1:23791 --advertise-client-urls http://127.0.0.1:23791 \
    --listen-peer-urls http://127.0.0.1:23801 >"$D/etcd.log" 2>&1 &
EPID=$!
trap 'kill $EPID 2>/dev/null; rm -rf "$D"' EXIT
sleep 2
run() { # MODE ROUND
    local extra=()
    [ "$1" = cluster ] && extra=(--cluster etcd=http://127.0.0.1:23791 --node-id 1 --cluster-name "ab$2")
    "$B" serve --backend memory --listen 127.0.0.1:32051 --control off --state-dir "$D/s-$1-$2" --threads 1 "${extra[@]}" >"$D/srv.log" 2>&1 &
    local pid=$!
    sleep 1.5
    "$B" bench --server 127.0.0.1:32051 --workload create --connections 4 --depth 4 --duration 5 --server-pid $pid --json "$D/$1-$2.json" --quiet >/dev/null 2>&1 || true
    kill -INT $pid; wait $pid 2>/dev/null || true
    jq -r --arg m "$1" '"\($m) ops_per_sec=\(.ops_per_sec) server_cpu_us_per_op=\(.server_cpu_us_per_op)"' "$D/$1-$2.json"
}
for r in 1 2 3 4 5; do run single $r; run cluster $r; done
