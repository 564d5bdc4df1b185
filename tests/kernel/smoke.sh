#!/usr/bin/env bash
# Linux kernel NFS client smoke test for ringnfs, in qemu (TCG, no root tricks).
#
#   tests/kernel/smoke.sh [--kernel 6.1|6.12] [--scenario all|basic|nconnect|trunk]
#                         [--opts MOUNT_OPTIONS] [--port N] [--no-build]
#                         [--no-capture] [--nfs-debug HEX] [--timeout SECONDS]
#                         [--step-timeout SECONDS] [--server-arg ARG]...
#
# See tests/kernel/README.md. Exit status 0 when every STEP passed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${RINGNFS_KERNEL_CACHE:-$REPO/target/kernel}

KERNEL=6.1
SCENARIO=all
OPTS=
PORT=20490
BUILD=1
CAPTURE=1
NFSDEBUG=
TIMEOUT=900
STEP_TIMEOUT=180
SERVER_ARGS=()

while [ $# -gt 0 ]; do
    case "$1" in
    --kernel) KERNEL=$2; shift 2 ;;
    --scenario) SCENARIO=$2; shift 2 ;;
    --opts) OPTS=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --no-capture) CAPTURE=0; shift ;;
    --nfs-debug) NFSDEBUG=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --step-timeout) STEP_TIMEOUT=$2; shift 2 ;;
    --server-arg) SERVER_ARGS+=("$2"); shift 2 ;;
    --server-arg=*) SERVER_ARGS+=("${1#--server-arg=}"); shift ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

log() { echo "[smoke $(date +%H:%M:%S)] $*"; }
die() { echo "[smoke] ERROR: $*" >&2; exit 2; }

# ------------------------------------------------------------------ host tools
need_pkgs() {
    local missing=() p
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    [ -e "$CACHE/.apt-updated" ] || { apt-get update -qq && touch "$CACHE/.apt-updated"; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}
mkdir -p "$CACHE"
need_pkgs qemu-system-x86 busybox-static socat kmod cpio xz-utils zstd gcc libc6-dev
if [ $CAPTURE = 1 ]; then need_pkgs tcpdump tshark; fi

# ------------------------------------------------------------------ kernel
case "$KERNEL" in
6.1) META=linux-image-amd64 ;;
6.12) META=linux-image-6.12-amd64 ;;
*) die "--kernel must be 6.1 or 6.12" ;;
esac
KDIR=$CACHE/k-$KERNEL
mkdir -p "$KDIR"
if [ ! -s "$KDIR/vmlinux" ]; then
    [ -e "$CACHE/.apt-updated" ] || { apt-get update -qq && touch "$CACHE/.apt-updated"; }
    PKG=$(apt-cache depends "$META" | awk '/Depends: linux-image-/ {print $2; exit}')
    [ -n "$PKG" ] || die "cannot resolve $META (apt-cache depends)"
    log "kernel $KERNEL: package $PKG"
    mkdir -p "$CACHE/debs"
    DEB=$(ls "$CACHE/debs/${PKG}_"*.deb 2>/dev/null | head -1 || true)
    if [ -z "$DEB" ]; then
        (cd "$CACHE/debs" && apt-get download "$PKG" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
        DEB=$(ls "$CACHE/debs/${PKG}_"*.deb | head -1)
    fi
    rm -rf "$KDIR/root" && mkdir -p "$KDIR/root"
    dpkg-deb -x "$DEB" "$KDIR/root"
    KVER=$(ls "$KDIR/root/lib/modules" | head -1)
    depmod -b "$KDIR/root" "$KVER"
    VMLINUZ=$KDIR/root/boot/vmlinuz-$KVER
    # bzImage: the vmlinux is a compressed stream inside (xz in Debian's 6.1,
    # zstd in its 6.12); PVH boots the uncompressed ELF directly.
    OFF=$(LC_ALL=C grep -obUaP -m1 '\xFD7zXZ\x00' "$VMLINUZ" | head -1 | cut -d: -f1 || true)
    if [ -n "$OFF" ]; then
        tail -c +$((OFF + 1)) "$VMLINUZ" >"$KDIR/vmlinuz.payload"
        xz -dc --single-stream <"$KDIR/vmlinuz.payload" >"$KDIR/vmlinux.tmp"
    else
        OFF=$(LC_ALL=C grep -obUaP -m1 '\x28\xB5\x2F\xFD' "$VMLINUZ" | head -1 | cut -d: -f1 || true)
        [ -n "$OFF" ] || die "no xz or zstd stream in $VMLINUZ"
        tail -c +$((OFF + 1)) "$VMLINUZ" >"$KDIR/vmlinuz.payload"
        # zstd complains about the bytes after the frame; the output is whole.
        zstd -qdc "$KDIR/vmlinuz.payload" >"$KDIR/vmlinux.tmp" 2>/dev/null || true
    fi
    rm -f "$KDIR/vmlinuz.payload"
    file "$KDIR/vmlinux.tmp" | grep -q ELF || die "extracted vmlinux is not ELF"
    echo "$KVER" >"$KDIR/kver"
    mv "$KDIR/vmlinux.tmp" "$KDIR/vmlinux"
fi
KVER=$(cat "$KDIR/kver")
log "kernel $KERNEL = $KVER"

# ------------------------------------------------------------------ initramfs
IMG=$KDIR/initramfs.cpio.gz
INPUTS=("$HERE/nfsmount.c" "$HERE/guest/init" "$HERE/guest/scenario.sh")
rebuild=0
[ -s "$IMG" ] || rebuild=1
for f in "${INPUTS[@]}"; do [ "$f" -nt "$IMG" ] 2>/dev/null && rebuild=1; done
if [ $rebuild = 1 ]; then
    log "building initramfs"
    R=$KDIR/initramfs
    rm -rf "$R" && mkdir -p "$R"/{bin,sbin,proc,sys,dev,tmp,mnt,lib/modules,etc}
    cp /bin/busybox "$R/bin/busybox"
    for a in $(/bin/busybox --list); do
        [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"
    done
    gcc -static -O2 -Wall -o "$R/bin/nfsmount" "$HERE/nfsmount.c"
    : >"$R/modules.load"
    # Dependency closure, in load order, from the kernel's own modules.dep.
    for m in virtio_pci virtio_net nfsv4; do
        modprobe -d "$KDIR/root" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
    done | awk '!seen[$0]++' | while read -r ko; do
        base=$(basename "$ko")
        case "$base" in
        *.ko.xz) xz -dc "$ko" >"$R/lib/modules/${base%.xz}"; base=${base%.xz} ;;
        *.ko.zst) zstd -qdc "$ko" >"$R/lib/modules/${base%.zst}"; base=${base%.zst} ;;
        *) cp "$ko" "$R/lib/modules/$base" ;;
        esac
        echo "/lib/modules/$base" >>"$R/modules.load"
    done
    log "modules: $(xargs -n1 basename <"$R/modules.load" | sed 's/\.ko$//' | tr '\n' ' ')"
    install -m 755 "$HERE/guest/init" "$R/init"
    install -m 755 "$HERE/guest/scenario.sh" "$R/scenario.sh"
    (cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) >"$IMG.tmp"
    mv "$IMG.tmp" "$IMG"
fi

# ------------------------------------------------------------------ server
BIN=$REPO/target/release/ringnfs
if [ $BUILD = 1 ]; then
    log "cargo build --release"
    if ! (cd "$REPO" && cargo build --release 2>&1 | tail -3); then
        [ -x "$BIN" ] || die "build failed and no previous binary"
        log "build failed: using the previous $BIN"
    fi
fi
[ -x "$BIN" ] || die "no $BIN"

RUN=$CACHE/runs/$(date +%Y%m%d-%H%M%S)-$KERNEL-$SCENARIO
mkdir -p "$RUN/export" "$RUN/state"
# Run a private copy: a rebuild during the run must not change what is tested.
cp -p "$BIN" "$RUN/ringnfs"
BIN=$RUN/ringnfs
HEAD=$(cat "$REPO/.git/HEAD" 2>/dev/null || true)
case "$HEAD" in ref:*) HEAD=$(cat "$REPO/.git/${HEAD#ref: }" 2>/dev/null || echo "$HEAD") ;; esac
BIN_INFO="HEAD ${HEAD:0:12} (plus any uncommitted edits), binary built $(date -r "$RUN/ringnfs" '+%F %T'), sha256 $(sha256sum "$RUN/ringnfs" | cut -c1-12)"
echo "$BIN_INFO" >"$RUN/binary.txt"
chmod 1777 "$RUN/export"
ln -sfn "$RUN" "$CACHE/runs/latest"
# Keep the last 10 runs (a run with its capture is ~50 MiB).
ls -d "$CACHE"/runs/2*/ 2>/dev/null | head -n -10 | xargs -r rm -rf
log "run directory $RUN"

PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

if [ $CAPTURE = 1 ]; then
    tcpdump -i lo -s 0 -U -w "$RUN/nfs.pcap" "tcp port $PORT" 2>"$RUN/tcpdump.log" &
    PIDS+=($!)
fi

RUST_LOG=${RUST_LOG:-debug} "$BIN" serve --listen "127.0.0.1:$PORT" --listen "127.0.0.2:$PORT" \
    --export "$RUN/export" --state-dir "$RUN/state" --threads 2 "${SERVER_ARGS[@]}" \
    >"$RUN/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=($SERVER_PID)
for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.2/$PORT") 2>/dev/null; then
        break
    fi
    kill -0 $SERVER_PID 2>/dev/null || { cat "$RUN/server.log"; die "server exited"; }
    sleep 0.1
done

# ------------------------------------------------------------------ guest
APPEND="console=ttyS0 loglevel=5 panic=-1 ringnfs.scenario=$SCENARIO ringnfs.steptimeout=$STEP_TIMEOUT"
[ -n "$OPTS" ] && APPEND+=" ringnfs.opts=$OPTS"
[ -n "$NFSDEBUG" ] && APPEND+=" ringnfs.nfsdebug=$NFSDEBUG"
[ ${#SERVER_ARGS[@]} -gt 0 ] && log "server options: ${SERVER_ARGS[*]}"
NET="user,id=n0,restrict=on,net=10.0.2.0/24,host=10.0.2.2,ipv6=off"
NET+=",guestfwd=tcp:10.0.2.100:2049-cmd:socat STDIO TCP:127.0.0.1:$PORT"
NET+=",guestfwd=tcp:10.0.2.101:2049-cmd:socat STDIO TCP:127.0.0.2:$PORT"

log "booting $KVER (TCG), scenario $SCENARIO${OPTS:+, options $OPTS}"
T0=$(date +%s.%N)
set +e
timeout -s KILL "$TIMEOUT" qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -no-reboot \
    -display none -monitor none -serial "file:$RUN/console.log" \
    -kernel "$KDIR/vmlinux" -initrd "$IMG" -append "$APPEND" \
    -netdev "$NET" -device virtio-net-pci,netdev=n0 >"$RUN/qemu.log" 2>&1
QRC=$?
set -e
T1=$(date +%s.%N)
BOOT_S=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }')
cleanup
PIDS=()
trap - EXIT

# ------------------------------------------------------------------ report
tr -d '\r' <"$RUN/console.log" >"$RUN/console.txt"
if [ $CAPTURE = 1 ] && [ -s "$RUN/nfs.pcap" ]; then
    # One line per RPC message: frame, xid, call/reply, minor version or status, ops.
    tshark -r "$RUN/nfs.pcap" -T fields -E separator=' ' -e frame.number -e frame.time_relative \
        -e tcp.stream >"$RUN/frames.txt" 2>>"$RUN/tshark.log" || true
    tshark -r "$RUN/nfs.pcap" -d "tcp.port==$PORT,rpc" -Y rpc -O rpc,nfs 2>>"$RUN/tshark.log" |
        awk -v map="$RUN/frames.txt" -f "$HERE/nfsops.awk" >"$RUN/nfs-ops.txt" || true
    rm -f "$RUN/frames.txt"
    log "decoded NFS ops: $RUN/nfs-ops.txt; full decode: tshark -r $RUN/nfs.pcap -V -d tcp.port==$PORT,rpc"
fi

echo
echo "==== ringnfs kernel smoke: kernel $KVER, scenario $SCENARIO${OPTS:+, options $OPTS}"
echo "==== server: $BIN_INFO"
echo "==== qemu exit $QRC, wall time ${BOOT_S}s (boot to poweroff)"
grep -E '^(GUEST|INFO|NFSMOUNT)' "$RUN/console.txt" | sed 's/^/  /' || true
if [ -s "$RUN/nfs-ops.txt" ]; then
    echo "  NFS replies not NFS4_OK, or that tshark could not decode (count, status, ops):"
    awk '$5 == "reply" && (($6 != "NFS4_OK" && $6 != "-") || /MALFORMED/) {$1 = $2 = $3 = $4 = $5 = ""; print}' "$RUN/nfs-ops.txt" |
        sort | uniq -c | sort -rn | sed 's/^/   /'
    echo "  RPC calls by minor version: $(awk '$5 == "call" {print $6}' "$RUN/nfs-ops.txt" | sort | uniq -c | tr -s ' ' | tr '\n' ' ')"
fi
if grep -qE ' (WARN|ERROR) ' "$RUN/server.log"; then
    echo "  server warnings/errors:"
    grep -E ' (WARN|ERROR) ' "$RUN/server.log" | head -20 | sed 's/^/    /'
fi
pass=0 failn=0
while read -r _ name res rc rest; do
    if [ "$res" = OK ]; then
        echo "PASS $name $rest"; pass=$((pass + 1))
    else
        echo "FAIL $name rc=$rc $rest"; failn=$((failn + 1))
        awk -v n="$name" '/^  \| /{buf = buf $0 "\n"; next} /^STEP /{if ($2 == n) printf "%s", buf; buf = ""; next} {buf = ""}' \
            "$RUN/console.txt" | tail -20 | sed 's/^/      /'
    fi
done < <(grep '^STEP ' "$RUN/console.txt" || true)
if ! grep -q '^SCENARIO DONE' "$RUN/console.txt"; then
    echo "FAIL scenario_incomplete (no 'SCENARIO DONE' marker; qemu rc $QRC)"
    failn=$((failn + 1))
fi
echo "$pass passed, $failn failed"
echo "  TCP connections seen by the server: $(grep -c 'connection accepted' "$RUN/server.log" || true)"
echo "logs: $RUN/{console.txt,server.log,nfs.pcap,nfs-ops.txt}"
[ $failn = 0 ]
