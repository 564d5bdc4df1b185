#!/usr/bin/env bash
# ringnfs kernel-client harness: Debian Linux kernels booted under qemu (TCG, no KVM,
# no root network tricks) mount a ringnfs running on this host with the kernel's own
# NFS client. Every scenario checks both sides: the guest's steps (exit codes,
# checksums) and the server's binding state, which this script reads from the control
# plane when the guest asks for it over a second serial port (see README.md).
#
#   tests/kernel/harness.sh [--kernel 6.1|6.12|all] [--scenario all|NAME[,NAME...]]
#       [--bin PATH | --no-build] [--keep] [--server ADDR:PORT [--server2 ADDR:PORT]]
#       [--capture] [--no-install] [--port N] [--control-port N] [--opts MOUNT_OPTIONS]
#       [--nfs-debug HEX] [--timeout SECONDS] [--step-timeout SECONDS] [--server-arg ARG]...
#
# Scenarios: basic nconnect trunk reconnect rebind limit drain restart v42 deleg exports tls
# krb5 failover;
# tlsprobe and tlsproxy (diagnostics, not in "all": the guest's RPC-with-TLS side against
# tests/kernel/tls_standin.py, alone or relaying to the server without TLS).
# Exit status: 0 when every step of every scenario passed on every kernel, 1 when one
# failed, 2 on a usage or setup error.
set -euo pipefail
# The whole script is one { ... } block: bash parses it before running it, so editing
# this file while a run is going does not change (or break) that run.
{
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${RINGNFS_KERNEL_CACHE:-$REPO/target/kernel}
ALL_SCENARIOS="basic nconnect trunk reconnect rebind limit drain restart v42 deleg exports tls krb5 failover"
# Scenarios that need this harness's own server (its control plane, restarts).
OWN_SERVER_SCENARIOS="rebind limit drain restart exports tls krb5 failover"
# Run only when named: tlsprobe checks the guest's RPC-with-TLS side (kernel, tlshd, CA)
# against a stand-in that only answers the STARTTLS probe and does the TLS handshake;
# tlsproxy mounts through that stand-in relaying to the server (a TLS-terminating proxy),
# for the guest's whole path with real NFS traffic while the server has no TLS.
DIAG_SCENARIOS="tlsprobe tlsproxy"
# Scenarios that need the kernel's RPC-with-TLS client and tlshd in the guest.
TLS_SCENARIOS="tls tlsprobe tlsproxy"
# Scenarios that need the kernel's RPCSEC_GSS client, rpc.gssd in the guest and a KDC.
KRB5_SCENARIOS="krb5"

KERNELS=6.1
SCENARIOS=all
OPTS=
PORT=
CPORT=
BIN=
BENCH=
BUILD=1
INSTALL=1
CAPTURE=0
NFSDEBUG=
TIMEOUT=1800
STEP_TIMEOUT=240
KEEP=0
EXT1=
EXT2=
SERVER_ARGS=()
ARGS=("$@")

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
    --kernel) KERNELS=$2; shift 2 ;;
    --scenario) SCENARIOS=$2; shift 2 ;;
    --opts) OPTS=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --control-port) CPORT=$2; shift 2 ;;
    --bin) BIN=$2; BUILD=0; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --no-install) INSTALL=0; shift ;;
    --capture) CAPTURE=1; shift ;;
    --no-capture) CAPTURE=0; shift ;;
    --nfs-debug) NFSDEBUG=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --step-timeout) STEP_TIMEOUT=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --server) EXT1=$2; shift 2 ;;
    --server2) EXT2=$2; shift 2 ;;
    --server-arg) SERVER_ARGS+=("$2"); shift 2 ;;
    --server-arg=*) SERVER_ARGS+=("${1#--server-arg=}"); shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

log() { echo "[harness $(date +%H:%M:%S)] $*"; }
die() { echo "[harness] ERROR: $*" >&2; exit 2; }

# ------------------------------------------------------------------ scenario list
if [ "$SCENARIOS" = all ]; then
    SCENARIOS=$ALL_SCENARIOS
    if [ -n "$EXT1" ]; then
        for s in $OWN_SERVER_SCENARIOS; do SCENARIOS=${SCENARIOS/$s/}; done
        [ -n "$EXT2" ] || SCENARIOS=${SCENARIOS/trunk/}
    fi
fi
SCENARIOS=$(echo "$SCENARIOS" | tr ',' ' ' | xargs)
for s in $SCENARIOS; do
    case " $ALL_SCENARIOS $DIAG_SCENARIOS none " in *" $s "*) ;; *) die "unknown scenario '$s' (have: $ALL_SCENARIOS, $DIAG_SCENARIOS, none)" ;; esac
    if [ -n "$EXT1" ] && [[ " $OWN_SERVER_SCENARIOS " == *" $s "* ]]; then
        die "scenario $s needs the harness's own server (control plane, restart); not with --server"
    fi
done
[ -n "$SCENARIOS" ] || die "no scenario to run"
has_scenario() { [[ " $SCENARIOS " == *" $1 "* ]]; }
if has_scenario tlsprobe && has_scenario tlsproxy; then
    die "tlsprobe and tlsproxy need the stand-in in two modes: one per run"
fi
want_tls() { local s; for s in $TLS_SCENARIOS; do has_scenario "$s" && return 0; done; return 1; }
want_krb5() { local s; for s in $KRB5_SCENARIOS; do has_scenario "$s" && return 0; done; return 1; }
# Scenarios this kernel or server cannot run: "NAME REASON" lines, reported as SKIP.
SKIPPED=
skip_scenario() { # NAME REASON
    has_scenario "$1" || return 0
    SKIPPED+="$1 $2"$'\n'
    SCENARIOS=$(echo " $SCENARIOS " | sed "s/ $1 / /" | xargs)
}
report_skipped() {
    [ -z "$SKIPPED" ] || printf '%s' "$SKIPPED" | while read -r sc why; do
        echo "RESULT $sc kernel=$KERNEL SKIP: $why"
    done
}
# Everything asked for was skipped: nothing to boot (or start) at all.
exit_if_nothing_left() {
    [ -z "$SCENARIOS" ] || return 0
    echo
    echo "==== kernel $KERNEL (${KVER:-?}): nothing to run"
    report_skipped
    exit 0
}

# ------------------------------------------------------------------ kernel matrix
[ "$KERNELS" = all ] && KERNELS=6.1,6.12
KERNELS=$(echo "$KERNELS" | tr ',' ' ' | xargs)
if [ "$(echo "$KERNELS" | wc -w)" -gt 1 ]; then
    # One run per kernel, in sequence (this script again), then one summary.
    [ $KEEP = 0 ] || die "--keep needs a single --kernel"
    if [ $BUILD = 1 ] && [ -z "$EXT1" ]; then
        log "cargo build --release"
        (cd "$REPO" && cargo build --release 2>&1 | tail -3) || die "cargo build failed"
        ARGS+=(--bin "$REPO/target/release/ringnfs")
    fi
    rc=0 out=$(mktemp)
    T0=$(date +%s)
    for k in $KERNELS; do
        if "$0" "${ARGS[@]}" --kernel "$k" 2>&1 | tee -a "$out"; then :; else rc=1; fi
    done
    echo
    echo "==== matrix summary ($(($(date +%s) - T0)) s in all)"
    grep -E '^(RESULT|==== kernel)' "$out" | sed 's/^==== /  /' || true
    rm -f "$out"
    exit $rc
fi
KERNEL=$KERNELS

# ------------------------------------------------------------------ host tools
PKGS=(qemu-system-x86 busybox-static socat kmod cpio xz-utils zstd gcc libc6-dev curl jq)
[ $CAPTURE = 1 ] && PKGS+=(tcpdump tshark)
# tls: a throwaway CA and server certificate per run; tlsprobe: the stand-in (python3 ssl).
want_tls && PKGS+=(openssl)
{ has_scenario tlsprobe || has_scenario tlsproxy; } && PKGS+=(python3)
# failover: a one-member etcd per run (the cluster's shared state), Debian's etcd 3.4.
has_scenario failover && PKGS+=(etcd-server)
# krb5: a throwaway realm and KDC per run (MIT krb5kdc, kdb5_util, kadmin.local); the
# guest's rpc.gssd is fetched (fetch_gssd, below). Without them (and --no-install) the
# scenario is skipped, not the run.
KRB5_PKGS=(krb5-kdc krb5-admin-server krb5-user)
if want_krb5; then
    kmissing=()
    for p in "${KRB5_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || kmissing+=("$p"); done
    if [ ${#kmissing[@]} -gt 0 ] && [ $INSTALL = 0 ]; then
        for s in $KRB5_SCENARIOS; do skip_scenario "$s" "no KDC tools on this host (missing Debian packages: ${kmissing[*]})"; done
    else
        PKGS+=("${KRB5_PKGS[@]}")
    fi
fi
mkdir -p "$CACHE"
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    [ $INSTALL = 1 ] || die "missing Debian packages: ${missing[*]} (apt-get install them, or run without --no-install)"
    log "installing ${missing[*]}"
    [ -e "$CACHE/.apt-updated" ] || { apt-get update -qq && touch "$CACHE/.apt-updated"; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ------------------------------------------------------------------ kernel
case "$KERNEL" in
6.1) META=linux-image-amd64 ;;
6.12) META=linux-image-6.12-amd64 ;;
*) die "--kernel must be 6.1, 6.12 or all" ;;
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
        DEB=$(ls "$CACHE/debs/${PKG}_"*.deb 2>/dev/null | head -1 || true)
        [ -n "$DEB" ] || die "apt-get download $PKG failed"
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
    [ "$(head -c 4 "$KDIR/vmlinux.tmp" | od -An -c | tr -d ' ')" = '177ELF' ] || die "extracted vmlinux is not ELF"
    echo "$KVER" >"$KDIR/kver"
    mv "$KDIR/vmlinux.tmp" "$KDIR/vmlinux"
fi
KVER=$(cat "$KDIR/kver")
log "kernel $KERNEL = $KVER"

# RPC-with-TLS (RFC 9289) in the kernel's NFS client: the handshake upcall to tlshd
# (net/handshake, CONFIG_NET_HANDSHAKE) and kernel TLS (CONFIG_TLS) came with Linux 6.5;
# Debian's 6.1 has neither, its 6.12 has both (handshake built in, tls a module).
KCONFIG=$KDIR/root/boot/config-$KVER
TLS_KERNEL=0
if grep -q '^CONFIG_NET_HANDSHAKE=y' "$KCONFIG" 2>/dev/null && grep -qE '^CONFIG_TLS=(y|m)' "$KCONFIG"; then
    TLS_KERNEL=1
else
    for s in $TLS_SCENARIOS; do
        skip_scenario "$s" "Linux $KVER has no RPC-with-TLS client (no CONFIG_NET_HANDSHAKE in config-$KVER: the NFS client's xprtsec= and the tlshd upcall came in Linux 6.5)"
    done
fi
# RPCSEC_GSS with Kerberos in the NFS client: auth_rpcgss and rpcsec_gss_krb5 (modules
# in both of Debian's kernels).
KRB5_KERNEL=0
if grep -qE '^CONFIG_RPCSEC_GSS_KRB5=(y|m)' "$KCONFIG" 2>/dev/null; then
    KRB5_KERNEL=1
else
    for s in $KRB5_SCENARIOS; do
        skip_scenario "$s" "Linux $KVER has no RPCSEC_GSS Kerberos client (no CONFIG_RPCSEC_GSS_KRB5 in config-$KVER)"
    done
fi
exit_if_nothing_left

# ------------------------------------------------------------------ tlshd (ktls-utils)
# The kernel asks tlshd, a user-space daemon, to do the TLS handshake on its socket.
# Debian 12 has no ktls-utils; Debian 13 (trixie) has 1.0.0. Its package and the shared
# libraries tlshd links (trixie's builds: tlshd needs trixie's glibc, so the whole closure
# comes from trixie) are fetched with apt-get download through a private apt
# configuration under $CACHE/apt-trixie (the host's own apt sources stay as they are;
# the archive is the mirror this host uses for its own release) and unpacked into
# $CACHE/tlshd/root, from which the initramfs takes tlshd and what `ld.so --list` names.
TLSHD_ROOT=$CACHE/tlshd/root
fetch_tlshd() {
    local a=$CACHE/apt-trixie codename mirror pkgs o
    [ -x "$TLSHD_ROOT/usr/sbin/tlshd" ] && [ -s "$CACHE/tlshd/version" ] && return 0
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    mirror=${RINGNFS_DEBIAN_MIRROR:-$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Created-By: Packages' 2>/dev/null |
        awk -v r="$codename" '$2 == r && $3 == "main" {print $1; exit}')}
    [ -n "$mirror" ] || { echo "no Debian mirror for $codename main in this host's apt sources (set RINGNFS_DEBIAN_MIRROR)"; return 1; }
    mkdir -p "$a/etc" "$a/lists/partial" "$a/cache/archives/partial" "$CACHE/debs-trixie"
    : >"$a/status"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" >"$a/etc/sources.list"
    o=(-o "Dir::Etc::SourceList=$a/etc/sources.list" -o Dir::Etc::SourceParts=/nonexistent
        -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache" -o "Dir::State::Status=$a/status"
        -o APT::Architecture=amd64 -o APT::Architectures::=amd64)
    log "tlshd: fetching ktls-utils and its libraries from trixie ($mirror)"
    apt-get "${o[@]}" -qq update || { echo "apt-get update of the private trixie sources failed"; return 1; }
    # Depends closure, no recommends; package names only (not virtual "<...>" ones).
    pkgs=$(apt-cache "${o[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
        --no-breaks --no-replaces --no-enhances ktls-utils | grep -E '^[a-z0-9]' | sort -u) || return 1
    echo "$pkgs" | grep -qx ktls-utils || { echo "trixie has no ktls-utils"; return 1; }
    # shellcheck disable=SC2086
    (cd "$CACHE/debs-trixie" && apt-get "${o[@]}" -qq download $pkgs 2>&1 | grep -v 'Download is performed unsandboxed' || true)
    rm -rf "$TLSHD_ROOT" && mkdir -p "$TLSHD_ROOT"
    local p d
    for p in $pkgs; do
        d=$(ls "$CACHE/debs-trixie/${p}_"*.deb 2>/dev/null | tail -1)
        [ -n "$d" ] || { echo "apt-get download $p failed"; return 1; }
        dpkg-deb -x "$d" "$TLSHD_ROOT"
    done
    [ -x "$TLSHD_ROOT/usr/sbin/tlshd" ] || { echo "no usr/sbin/tlshd in ktls-utils"; return 1; }
    basename "$(ls "$CACHE/debs-trixie/ktls-utils_"*.deb | tail -1)" .deb >"$CACHE/tlshd/version"
}
# tlshd_closure: tlshd's shared libraries (and the loader), resolved inside TLSHD_ROOT.
tlshd_closure() {
    local lib=$TLSHD_ROOT/usr/lib/x86_64-linux-gnu
    "$lib/ld-linux-x86-64.so.2" --library-path "$lib" --list "$TLSHD_ROOT/usr/sbin/tlshd" |
        awk '$2 == "=>" && $3 ~ /^\// {print $3}'
}
if [ $TLS_KERNEL = 1 ] && want_tls; then
    fetch_tlshd || die "tlshd for the guest: see above"
fi

# ------------------------------------------------------------------ rpc.gssd (nfs-common)
# krb5: the kernel asks rpc.gssd for its RPCSEC_GSS contexts. nfs-common of this host's
# own Debian release and the library packages it needs (the Depends closure followed
# through lib* packages only: no perl, python or init scripts), fetched with apt-get
# download from this host's apt sources (nothing is installed) and unpacked into
# $CACHE/gssd/root, from which the initramfs takes rpc.gssd, the loader and what
# `ld.so --list` names.
GSSD_ROOT=$CACHE/gssd/root
fetch_gssd() {
    local todo seen p d deps
    [ -x "$GSSD_ROOT/usr/sbin/rpc.gssd" ] && [ -s "$CACHE/gssd/version" ] && return 0
    log "rpc.gssd: fetching nfs-common and its libraries ($(. /etc/os-release && echo "${VERSION_CODENAME:-this release}"))"
    [ -e "$CACHE/.apt-updated" ] || { apt-get update -qq && touch "$CACHE/.apt-updated"; }
    todo=nfs-common seen=" "
    while [ -n "$todo" ]; do
        # shellcheck disable=SC2086
        deps=$(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
            --no-enhances $todo 2>/dev/null | awk '$1 ~ /Depends:$/ && $2 ~ /^lib/ {print $2}' | sort -u)
        for p in $todo; do seen+="$p "; done
        todo=
        for d in $deps; do case "$seen $todo " in *" $d "*) ;; *) todo+=" $d" ;; esac; done
        todo=$(echo "$todo" | xargs)
    done
    mkdir -p "$CACHE/debs-gssd"
    # shellcheck disable=SC2086
    (cd "$CACHE/debs-gssd" && apt-get -qq download $seen 2>&1 | grep -v 'Download is performed unsandboxed' || true)
    rm -rf "$GSSD_ROOT" && mkdir -p "$GSSD_ROOT"
    for p in $seen; do
        d=$(ls "$CACHE/debs-gssd/${p}_"*.deb 2>/dev/null | tail -1)
        [ -n "$d" ] || { echo "apt-get download $p failed"; return 1; }
        dpkg-deb -x "$d" "$GSSD_ROOT"
    done
    [ -x "$GSSD_ROOT/usr/sbin/rpc.gssd" ] || { echo "no usr/sbin/rpc.gssd in nfs-common"; return 1; }
    basename "$(ls "$CACHE/debs-gssd/nfs-common_"*.deb | tail -1)" .deb >"$CACHE/gssd/version"
}
# gssd_closure: rpc.gssd's shared libraries and the loader, resolved inside GSSD_ROOT.
gssd_closure() {
    local path=$GSSD_ROOT/lib/x86_64-linux-gnu:$GSSD_ROOT/usr/lib/x86_64-linux-gnu ld
    ld=$(ls "$GSSD_ROOT"/{usr/,}lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 2>/dev/null | head -1)
    [ -n "$ld" ] || return 1
    "$ld" --library-path "$path" --list "$GSSD_ROOT/usr/sbin/rpc.gssd" | awk '$2 == "=>" && $3 ~ /^\// {print $3}'
    echo "$ld"
}
if [ $KRB5_KERNEL = 1 ] && want_krb5; then
    fetch_gssd || die "rpc.gssd for the guest: see above"
fi

# ------------------------------------------------------------------ initramfs
IMG=$KDIR/initramfs.cpio.gz
INPUTS=("$HERE/nfsmount.c" "$HERE/locktest.c" "$HERE/nfs42.c" "$HERE/guest/init" "$HERE/guest/scenario.sh")
rebuild=0
[ -s "$IMG" ] || rebuild=1
for f in "${INPUTS[@]}"; do [ "$f" -nt "$IMG" ] && rebuild=1; done
# tlshd goes in when the kernel can use it and it has been fetched (for a TLS scenario,
# now or before); an image made without it is made again when one is wanted.
TLS_IMG=0
if [ $TLS_KERNEL = 1 ] && [ -x "$TLSHD_ROOT/usr/sbin/tlshd" ]; then
    TLS_IMG=1
    [ -x "$KDIR/initramfs/usr/sbin/tlshd" ] || rebuild=1
fi
# Kernel TLS (tls.ko) and the AEAD ciphers tlshd may negotiate (its gnutls priority
# string allows AES-GCM, AES-CCM and ChaCha20-Poly1305, what kTLS can take over): all
# modules in Debian's 6.12. The kernel would ask modprobe for them (crypto-gcm(aes),
# tcp-ulp-tls), which this busybox guest cannot answer, so /init loads them up front.
# Generic ghash: the emulated CPU has no PCLMUL for ghash-clmulni-intel.
TLS_MODULES="tls gcm ghash-generic ccm chacha20poly1305 chacha_generic poly1305_generic"
# rpc.gssd (krb5): with its shared libraries and loader in a directory of its own
# (/usr/lib/gssd: tlshd's trixie libraries may sit in /lib/x86_64-linux-gnu), run
# through that loader by a wrapper script. The kernel side: auth_rpcgss, rpcsec_gss_krb5
# and the ciphers it asks the crypto API for by name (cts(cbc(aes)); sha512 for the
# aes-sha2 enctypes where it is a module), listed in /modules.krb5 and loaded by the
# krb5 scenario itself (the other scenarios run without the GSS modules, as before).
KRB5_MODULES="auth_rpcgss rpcsec_gss_krb5 cts sha512_generic"
KRB5_IMG=0
if [ $KRB5_KERNEL = 1 ] && [ -x "$GSSD_ROOT/usr/sbin/rpc.gssd" ]; then
    KRB5_IMG=1
    [ -x "$KDIR/initramfs/usr/sbin/rpc.gssd.bin" ] || rebuild=1
fi
if [ $rebuild = 1 ]; then
    log "building initramfs"
    R=$KDIR/initramfs
    rm -rf "$R" && mkdir -p "$R"/{bin,sbin,proc,sys,dev,tmp,mnt,lib/modules,etc}
    cp /bin/busybox "$R/bin/busybox"
    for a in $(/bin/busybox --list); do
        [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"
    done
    gcc -static -O2 -Wall -o "$R/bin/nfsmount" "$HERE/nfsmount.c"
    gcc -static -O2 -Wall -o "$R/bin/locktest" "$HERE/locktest.c"
    gcc -static -O2 -Wall -o "$R/bin/nfs42" "$HERE/nfs42.c"
    : >"$R/modules.load"
    # Dependency closure, in load order, from the kernel's own modules.dep.
    mods="virtio_pci virtio_net nfsv4"
    [ $TLS_IMG = 0 ] || mods+=" $TLS_MODULES"
    load_list() { # FILE MODULE...: the dependency closure, minus what /modules.load has
        local f=$1 m
        shift
        for m in "$@"; do
            modprobe -d "$KDIR/root" -S "$KVER" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}'
        done | awk -v have="$R/modules.load" 'BEGIN {while ((getline l < have) > 0) {n = split(l, a, "/"); h[a[n]] = 1}}
            {n = split($0, a, "/"); b = a[n]; sub(/\.(xz|zst)$/, "", b)} !seen[$0]++ && !(b in h)' |
            while read -r ko; do
                base=$(basename "$ko")
                case "$base" in
                *.ko.xz) xz -dc "$ko" >"$R/lib/modules/${base%.xz}"; base=${base%.xz} ;;
                *.ko.zst) zstd -qdc "$ko" >"$R/lib/modules/${base%.zst}"; base=${base%.zst} ;;
                *) cp "$ko" "$R/lib/modules/$base" ;;
                esac
                echo "/lib/modules/$base" >>"$f"
            done
    }
    # shellcheck disable=SC2086
    load_list "$R/modules.load" $mods
    log "modules: $(xargs -n1 basename <"$R/modules.load" | sed 's/\.ko$//' | tr '\n' ' ')"
    : >"$R/modules.krb5"
    if [ $KRB5_IMG = 1 ]; then
        # shellcheck disable=SC2086
        load_list "$R/modules.krb5" $KRB5_MODULES
        log "modules for krb5 (loaded by the scenario): $(xargs -n1 basename <"$R/modules.krb5" | sed 's/\.ko$//' | tr '\n' ' ')"
    fi
    if [ $TLS_IMG = 1 ]; then
        # tlshd at its packaged path, its libraries where the trixie loader looks by
        # default (no ld.so.cache in the guest), the loader at the ELF interpreter path.
        mkdir -p "$R/usr/sbin" "$R/lib/x86_64-linux-gnu" "$R/lib64" "$R/etc/tlshd"
        cp "$TLSHD_ROOT/usr/sbin/tlshd" "$R/usr/sbin/tlshd"
        libs=$(tlshd_closure) && [ -n "$libs" ] || die "cannot list tlshd's libraries (ld.so --list)"
        for l in $libs; do cp -L "$l" "$R/lib/x86_64-linux-gnu/"; done
        ln -sf /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$R/lib64/ld-linux-x86-64.so.2"
        cp "$CACHE/tlshd/version" "$R/etc/tlshd/package"
        log "tlshd: $(cat "$CACHE/tlshd/version") with $(echo "$libs" | wc -w) libraries ($(du -shL "$R/lib/x86_64-linux-gnu" | cut -f1))"
    fi
    if [ $KRB5_IMG = 1 ]; then
        mkdir -p "$R/usr/sbin" "$R/usr/lib/gssd"
        cp "$GSSD_ROOT/usr/sbin/rpc.gssd" "$R/usr/sbin/rpc.gssd.bin"
        libs=$(gssd_closure) && [ -n "$libs" ] || die "cannot list rpc.gssd's libraries (ld.so --list)"
        for l in $libs; do cp -L "$l" "$R/usr/lib/gssd/"; done
        printf '#!/bin/sh\nexec /usr/lib/gssd/ld-linux-x86-64.so.2 --library-path /usr/lib/gssd /usr/sbin/rpc.gssd.bin "$@"\n' >"$R/usr/sbin/rpc.gssd"
        chmod 755 "$R/usr/sbin/rpc.gssd"
        cp "$CACHE/gssd/version" "$R/usr/lib/gssd/package"
        log "rpc.gssd: $(cat "$R/usr/lib/gssd/package") with $(echo "$libs" | wc -w) libraries ($(du -shL "$R/usr/lib/gssd" | cut -f1))"
    fi
    install -m 755 "$HERE/guest/init" "$R/init"
    install -m 755 "$HERE/guest/scenario.sh" "$R/scenario.sh"
    (cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) >"$IMG.tmp"
    mv "$IMG.tmp" "$IMG"
fi

# ------------------------------------------------------------------ run directory
RUN=$CACHE/runs/$(date +%Y%m%d-%H%M%S)-$KERNEL-$$
mkdir -p "$RUN/export" "$RUN/state" "$RUN/host" "$RUN/metrics" "$RUN/samples" "$RUN/var" "$RUN/report.d"
chmod 1777 "$RUN/export"
ln -sfn "$RUN" "$CACHE/runs/latest"
# Keep the last 12 runs.
ls -d "$CACHE"/runs/2*/ 2>/dev/null | head -n -12 | xargs -r rm -rf
log "run directory $RUN"

PIDS=()
SERVER_PID=
QEMU_PID=
TLS_ARGS=() # --tls-cert/--tls-key while the tls scenario runs (h_tls_server)
KRB5_ARGS=() # --krb5-keytab while the krb5 scenario runs (h_krb5_server)
SRV_ENV=()   # KRB5_CONFIG and KRB5RCACHEDIR for the server then
CLUSTER_ARGS=() # --cluster ... --node-id 1 while the failover scenario runs (h_cluster_up)
NODE2_PID=      # failover: the cluster's second node
FO_SAMPLER=     # failover: the sampler of node 2's metrics after the move
TLS_REPORT=
cleanup() {
    local p
    for p in "${PIDS[@]}" $SERVER_PID $NODE2_PID $FO_SAMPLER $QEMU_PID; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}" $SERVER_PID $NODE2_PID $FO_SAMPLER $QEMU_PID; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# ------------------------------------------------------------------ server
port_used() { # PORT: any TCP socket on this port (listening or not), v4 or v6
    local h
    h=$(printf ':%04X' "$1")
    awk -v h="$h" 'FNR > 1 && (substr($2, length($2) - 4) == h) {f = 1} END {exit !f}' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 30000))
        port_used "$p" || port_used $((p + 1)) || { echo "$p"; return; }
    done
    die "no free TCP port found"
}
nfs_up() { (exec 3<>"/dev/tcp/$1/${2:-$PORT}") 2>/dev/null; }
CURL=(curl -sS -m 10)
# The server whose control plane the checks read: the harness's own, or (failover, once
# the guest's address moved to it) the cluster's node 2, named by var/view ("CPORT
# STATE_DIR"; a file, so that the background samplers follow it too).
view() { # cport|state
    local v
    v=$(cat "$RUN/var/view" 2>/dev/null) || v="$CPORT $RUN/state"
    case "$1" in cport) echo "${v%% *}" ;; state) echo "${v#* }" ;; esac
}
api() { "${CURL[@]}" -f "http://127.0.0.1:$(view cport)/api/v1/$1"; }
api_change() { # METHOD PATH [JSON]
    "${CURL[@]}" --fail-with-body -X "$1" -H "Authorization: Bearer $(cat "$(view state)/control-token")" \
        -H 'Content-Type: application/json' ${3:+--data "$3"} -w ' (HTTP %{http_code})' \
        "http://127.0.0.1:$(view cport)/api/v1/$2"
}
snap() { "${CURL[@]}" -f "http://127.0.0.1:$(view cport)/metrics" | grep '^ringnfs_' >"$1"; }

start_server() {
    echo "=== $(date '+%F %T') starting ringnfs (pid follows)" >>"$RUN/server.log"
    env RUST_LOG="${RUST_LOG:-debug}" "${SRV_ENV[@]}" "$BIN" serve --listen "127.0.0.1:$PORT" --listen "127.0.0.2:$PORT" \
        --control "127.0.0.1:$CPORT" --export "$RUN/export" --state-dir "$RUN/state" --threads 2 \
        "${SERVER_ARGS[@]}" "${TLS_ARGS[@]}" "${KRB5_ARGS[@]}" "${CLUSTER_ARGS[@]}" >>"$RUN/server.log" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 300); do
        if nfs_up 127.0.0.1 && nfs_up 127.0.0.2 && "${CURL[@]}" -f -o /dev/null "http://127.0.0.1:$CPORT/metrics" 2>/dev/null; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || { wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; return 1; }
        sleep 0.1
    done
    return 1
}

if [ -n "$EXT1" ]; then
    FWD1=$EXT1 FWD2=${EXT2:-$EXT1}
    BIN_INFO="external NFS server $EXT1${EXT2:+ and $EXT2} (server-side checks skipped)"
    log "$BIN_INFO"
else
    if [ -z "$BIN" ]; then
        BIN=$REPO/target/release/ringnfs
        if [ $BUILD = 1 ]; then
            log "cargo build --release"
            if ! (cd "$REPO" && cargo build --release 2>&1 | tail -3); then
                [ -x "$BIN" ] || die "build failed and no previous binary"
                log "build failed: using the previous $BIN"
            fi
        fi
    fi
    [ -x "$BIN" ] || die "no server binary $BIN"
    # (The help read whole first: grep -q would stop reading at the match, and with
    # pipefail the writer's SIGPIPE would make a server that has the option look
    # as if it had not.)
    if has_scenario tls && [[ "$("$BIN" serve --help 2>/dev/null || true)" != *--tls-cert* ]]; then
        skip_scenario tls "the server has no --tls-cert option (this build has no RPC-with-TLS)"
        exit_if_nothing_left
    fi
    if want_krb5 && [[ "$("$BIN" serve --help 2>/dev/null || true)" != *--krb5-keytab* ]]; then
        for s in $KRB5_SCENARIOS; do skip_scenario "$s" "the server has no --krb5-keytab option (this build has no RPCSEC_GSS)"; done
        exit_if_nothing_left
    fi
    # The host's second NFS client (deleg scenario): the bench binary beside the server.
    BENCH=$(dirname "$BIN")/ringnfs-bench
    [ -x "$BENCH" ] || die "no $BENCH (the host's NFS client): cargo build --release"
    # Run private copies: a rebuild during the run must not change what is tested.
    cp -p "$BENCH" "$RUN/ringnfs-bench"
    BENCH=$RUN/ringnfs-bench
    cp -p "$BIN" "$RUN/ringnfs"
    HEAD=$(git -C "$REPO" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    BIN_INFO="$BIN (repository HEAD $HEAD), built $(date -r "$BIN" '+%F %T'), sha256 $(sha256sum "$BIN" | cut -c1-12)"
    BIN=$RUN/ringnfs
    echo "$BIN_INFO" >"$RUN/binary.txt"
    fixed_ports=0
    [ -n "$PORT" ] && fixed_ports=1
    for attempt in 1 2 3 4 5; do
        [ $fixed_ports = 1 ] || { PORT=$(free_port); CPORT=; }
        [ -n "$CPORT" ] || CPORT=$(free_port)
        start_server && break
        [ $fixed_ports = 0 ] && [ $attempt -lt 5 ] || { tail -20 "$RUN/server.log"; die "the server did not start"; }
        log "server did not start on port $PORT (control $CPORT); trying other ports"
    done
    FWD1=127.0.0.1:$PORT FWD2=127.0.0.2:$PORT
    log "ringnfs pid $SERVER_PID on 127.0.0.1:$PORT and 127.0.0.2:$PORT, control plane 127.0.0.1:$CPORT, log $RUN/server.log"
    [ ${#SERVER_ARGS[@]} -gt 0 ] && log "server options: ${SERVER_ARGS[*]}"

    # Sampler: which connections each session has, once a second, into
    # samples/<scenario> (for the report's "connections seen per session").
    (
        while :; do
            c=$(cat "$RUN/var/cur" 2>/dev/null || true)
            if [ -n "$c" ]; then
                api sessions 2>/dev/null | jq -r '.[] | .id as $s | .connections[] | "\($s) \(.id)"' \
                    >>"$RUN/samples/$c" 2>/dev/null || true
            fi
            sleep 1
        done
    ) &
    PIDS+=($!)
fi
echo "$PORT" >"$RUN/port"

# ------------------------------------------------------------------ TLS material
# A throwaway CA and a server certificate per run (EC P-256, valid 2 days), for the
# addresses the guest mounts: the kernel gives tlshd the mount's server name, here an
# address, which gnutls checks against the certificate's IP address SANs. The CA goes
# into the guest (tlshd's x509.truststore) in a small cpio archive appended to the
# cached initramfs: the kernel unpacks concatenated archives one after the other.
make_tls_certs() { # DIR
    local d=$1
    mkdir -p "$d/guest/etc/tlshd" || return 1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout "$d/ca.key" -out "$d/ca.pem" -subj "/CN=ringnfs kernel harness CA ${RUN##*/}" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign || return 1
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=10.0.2.100" || return 1
    printf '%s\n' "subjectAltName=IP:10.0.2.100,IP:10.0.2.101,IP:10.0.2.102,DNS:ringnfs-server" \
        "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" >"$d/server.ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -days 2 -extfile "$d/server.ext" -out "$d/server.pem" || return 1
    openssl verify -CAfile "$d/ca.pem" "$d/server.pem" >/dev/null || return 1
    install -m 644 "$d/ca.pem" "$d/guest/etc/tlshd/ca.pem"
}
INITRD=$IMG
if want_tls; then
    make_tls_certs "$RUN/tls" >"$RUN/tls.log" 2>&1 || { cat "$RUN/tls.log"; die "openssl: cannot make the run's certificates"; }
    (cd "$RUN/tls/guest" && find . | cpio -o -H newc --quiet | gzip -1) >"$RUN/tls/guest.cpio.gz"
    cat "$IMG" "$RUN/tls/guest.cpio.gz" >"$RUN/initrd.cpio.gz"
    INITRD=$RUN/initrd.cpio.gz
    log "TLS: CA $RUN/tls/ca.pem, server certificate $RUN/tls/server.pem (IP SANs 10.0.2.100-102)"
fi
# ------------------------------------------------------------------ Kerberos realm
# krb5: a throwaway realm RINGNFS.TEST per run, its KDC (krb5kdc -n) on 127.0.0.1 at a
# free port, which the guest reaches as 10.0.2.103:88 over TCP (a guestfwd like the NFS
# ones). Principals: the server's nfs/ringnfs-server.ringnfs.test (the name rpc.gssd
# finds for 10.0.2.100 in the guest's /etc/hosts: with an address as the mount's server
# name it asks getnameinfo, there is no DNS) and nfs/10.0.2.100, in the server's keytab;
# the guest's machine principal host/ringnfs-guest.ringnfs.test in the guest's
# /etc/krb5.keytab (root's mounts use the machine credential); 1000@RINGNFS.TEST, whose
# tickets user 1000 gets in the guest (a credentials cache made here once the KDC runs).
# The guest's krb5.conf, keytab, hosts file and that cache go into a small cpio appended
# to the initrd, as TLS's CA does.
REALM=RINGNFS.TEST
KDC_GUEST=10.0.2.103
make_realm() { # DIR PORT
    local d=$1 kport=$2
    mkdir -p "$d/rcache" "$d/guest/etc" || return 1
    printf '%s\n' '[libdefaults]' "    default_realm = $REALM" '    dns_lookup_kdc = false' \
        '    dns_lookup_realm = false' '    dns_canonicalize_hostname = false' '    rdns = false' \
        '    udp_preference_limit = 1' '    permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96' \
        '' '[realms]' "    $REALM = {" "        kdc = 127.0.0.1:$kport" '    }' '' \
        '[domain_realm]' "    .ringnfs.test = $REALM" "    ringnfs.test = $REALM" >"$d/krb5.conf"
    sed "s/kdc = 127.0.0.1:$kport/kdc = $KDC_GUEST:88/" "$d/krb5.conf" >"$d/guest/etc/krb5.conf"
    printf '%s\n' '[kdcdefaults]' "    kdc_listen = 127.0.0.1:$kport" "    kdc_tcp_listen = 127.0.0.1:$kport" '' \
        '[realms]' "    $REALM = {" "        database_name = $d/principal" "        key_stash_file = $d/stash" \
        '        max_life = 1h' '        max_renewable_life = 0' \
        '        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal' '    }' '' \
        '[logging]' "    kdc = FILE:$d/kdc.log" >"$d/kdc.conf"
    KRB5_CONFIG=$d/krb5.conf KRB5_KDC_PROFILE=$d/kdc.conf \
        kdb5_util create -s -r "$REALM" -P "ringnfs-harness-master-key" </dev/null || return 1
    KRB5_CONFIG=$d/krb5.conf KRB5_KDC_PROFILE=$d/kdc.conf kadmin.local -r "$REALM" <<EOT || return 1
addprinc -randkey nfs/ringnfs-server.ringnfs.test@$REALM
addprinc -randkey nfs/10.0.2.100@$REALM
addprinc -randkey host/ringnfs-guest.ringnfs.test@$REALM
addprinc -randkey 1000@$REALM
ktadd -k $d/server.keytab nfs/ringnfs-server.ringnfs.test@$REALM
ktadd -k $d/server.keytab nfs/10.0.2.100@$REALM
ktadd -k $d/guest/etc/krb5.keytab host/ringnfs-guest.ringnfs.test@$REALM
ktadd -k $d/user1000.keytab 1000@$REALM
EOT
    [ -s "$d/server.keytab" ] && [ -s "$d/guest/etc/krb5.keytab" ] || { echo "kadmin.local made no keytab"; return 1; }
    printf '%s\n' '127.0.0.1 localhost' '10.0.2.100 ringnfs-server.ringnfs.test ringnfs-server' \
        '10.0.2.101 ringnfs-server2.ringnfs.test ringnfs-server2' "$KDC_GUEST kdc.ringnfs.test kdc" \
        '10.0.2.15 ringnfs-guest.ringnfs.test ringnfs-guest' >"$d/guest/etc/hosts"
    printf 'hosts: files\n' >"$d/guest/etc/nsswitch.conf"
    chmod 600 "$d/server.keytab"
}
KRB5_NET=0
if want_krb5 && [ $KRB5_KERNEL = 1 ]; then
    KPORT=$(free_port)
    mkdir -p "$RUN/krb5"
    make_realm "$RUN/krb5" "$KPORT" >"$RUN/krb5/setup.log" 2>&1 || { cat "$RUN/krb5/setup.log"; die "cannot make the run's Kerberos realm"; }
    # krb5kdc -n (no fork): up when it answers on TCP and still runs; another process may
    # take the port (TCP or UDP) between free_port and its bind: then another port.
    for attempt in 1 2 3 4 5; do
        KRB5_CONFIG=$RUN/krb5/krb5.conf KRB5_KDC_PROFILE=$RUN/krb5/kdc.conf krb5kdc -n -r "$REALM" </dev/null >>"$RUN/krb5/krb5kdc.out" 2>&1 &
        KDC_PID=$!
        PIDS+=($KDC_PID)
        for _ in $(seq 50); do
            kill -0 $KDC_PID 2>/dev/null || break
            (exec 3<>"/dev/tcp/127.0.0.1/$KPORT") 2>/dev/null && break
            sleep 0.1
        done
        kill -0 $KDC_PID 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$KPORT") 2>/dev/null && break
        kill $KDC_PID 2>/dev/null || true
        [ $attempt -lt 5 ] || { cat "$RUN/krb5/krb5kdc.out" "$RUN/krb5/kdc.log" 2>/dev/null; die "krb5kdc did not start"; }
        old=$KPORT KPORT=$(free_port)
        log "krb5kdc did not start on port $old; trying $KPORT"
        sed -i "s/127.0.0.1:$old/127.0.0.1:$KPORT/" "$RUN/krb5/krb5.conf" "$RUN/krb5/kdc.conf"
    done
    # The guest's user 1000 has tickets already: a credentials cache made here (the
    # guest has no kinit), owned by uid 1000 as rpc.gssd wants, in /var/krb5cc (gssd
    # -d /tmp:/var/krb5cc; the guest's /tmp is a tmpfs over the initramfs's).
    mkdir -p "$RUN/krb5/guest/var/krb5cc" && chmod 1777 "$RUN/krb5/guest/var/krb5cc"
    KRB5_CONFIG=$RUN/krb5/krb5.conf kinit -k -t "$RUN/krb5/user1000.keytab" -c "FILE:$RUN/krb5/guest/var/krb5cc/krb5cc_1000" \
        "1000@$REALM" >>"$RUN/krb5/setup.log" 2>&1 || { cat "$RUN/krb5/setup.log"; die "kinit 1000@$REALM failed"; }
    chown 1000:1000 "$RUN/krb5/guest/var/krb5cc/krb5cc_1000" && chmod 600 "$RUN/krb5/guest/var/krb5cc/krb5cc_1000"
    (cd "$RUN/krb5/guest" && find . | cpio -o -H newc --quiet | gzip -1) >"$RUN/krb5/guest.cpio.gz"
    [ "$INITRD" != "$IMG" ] || { cp "$IMG" "$RUN/initrd.cpio.gz"; INITRD=$RUN/initrd.cpio.gz; }
    cat "$RUN/krb5/guest.cpio.gz" >>"$INITRD"
    KRB5_NET=1
    log "Kerberos: realm $REALM, KDC on 127.0.0.1:$KPORT (the guest's $KDC_GUEST:88), log $RUN/krb5/kdc.log"
fi

# ------------------------------------------------------------------ etcd (failover)
# failover: the cluster's shared state, a one-member etcd on free loopback ports (client
# EPORT, peer EPORT+1: free_port checks both), its data under RUN/etcd, stopped with the
# run. Up when /health says so; another process may take a port first: then others.
ETCD_URL=
if has_scenario failover && [ -z "$EXT1" ]; then
    mkdir -p "$RUN/etcd"
    for attempt in 1 2 3 4 5; do
        EPORT=$(free_port)
        rm -rf "$RUN/etcd/data"
        etcd --name harness --data-dir "$RUN/etcd/data" \
            --listen-client-urls "http://127.0.0.1:$EPORT" --advertise-client-urls "http://127.0.0.1:$EPORT" \
            --listen-peer-urls "http://127.0.0.1:$((EPORT + 1))" \
            --initial-advertise-peer-urls "http://127.0.0.1:$((EPORT + 1))" \
            --initial-cluster "harness=http://127.0.0.1:$((EPORT + 1))" --initial-cluster-state new \
            </dev/null >>"$RUN/etcd/etcd.log" 2>&1 &
        ETCD_PID=$!
        PIDS+=($ETCD_PID)
        for _ in $(seq 100); do
            kill -0 $ETCD_PID 2>/dev/null || break
            "${CURL[@]}" -m 2 "http://127.0.0.1:$EPORT/health" 2>/dev/null | grep -q '"health":"true"' && break
            sleep 0.1
        done
        if kill -0 $ETCD_PID 2>/dev/null && "${CURL[@]}" -m 2 "http://127.0.0.1:$EPORT/health" 2>/dev/null | grep -q '"health":"true"'; then
            ETCD_URL=http://127.0.0.1:$EPORT
            break
        fi
        kill $ETCD_PID 2>/dev/null || true
        [ $attempt -lt 5 ] || { tail -20 "$RUN/etcd/etcd.log"; die "etcd did not start"; }
        log "etcd did not start on port $EPORT; trying other ports"
    done
    log "etcd $(etcd --version | awk '/^etcd Version/ {print $3}') pid $ETCD_PID on $ETCD_URL, data $RUN/etcd/data, log $RUN/etcd/etcd.log"
fi

STANDIN=0
if has_scenario tlsprobe || has_scenario tlsproxy; then
    # The stand-in behind 10.0.2.102:2049 (see tests/kernel/tls_standin.py); for
    # tlsproxy it relays to the server the guest's 10.0.2.100 reaches.
    STANDIN=1
    SPORT=$(free_port)
    sargs=()
    has_scenario tlsproxy && sargs=(--forward "$FWD1")
    python3 "$HERE/tls_standin.py" --listen "127.0.0.1:$SPORT" --cert "$RUN/tls/server.pem" \
        --key "$RUN/tls/server.key" --log "$RUN/standin.log" --lifetime "$TIMEOUT" "${sargs[@]}" 2>>"$RUN/standin.log" &
    PIDS+=($!)
    for _ in $(seq 50); do grep -q listening "$RUN/standin.log" 2>/dev/null && break; sleep 0.1; done
    grep -q listening "$RUN/standin.log" 2>/dev/null || { cat "$RUN/standin.log"; die "the TLS stand-in did not start"; }
    log "TLS stand-in on 127.0.0.1:$SPORT (the guest's 10.0.2.102:2049), log $RUN/standin.log"
fi

if [ $CAPTURE = 1 ]; then
    [ -z "$EXT1" ] || die "--capture works with the harness's own server only"
    tcpdump -i lo -s 0 -U -w "$RUN/nfs.pcap" "tcp port $PORT" 2>"$RUN/tcpdump.log" &
    PIDS+=($!)
fi

# ------------------------------------------------------------------ host side of the scenarios
# The guest asks with "REQ <id> <what> [args]" on its ttyS1; h_<what> runs here and
# its output goes back as "OUT <id> <line>" lines; its last line is the summary in
# "REP <id> <rc> <summary>". Handlers run in this shell (a restart changes
# SERVER_PID), so they return on errors explicitly (errexit does not apply).

# Metrics deltas survive a server restart: acc holds what earlier server instances
# counted since the scenario began, base the current instance's counters at the start.
mdiff() { # BASE NOW -> "key delta" lines
    awk 'FILENAME == ARGV[1] {b[$1] = $2; next} {print $1, $2 - ($1 in b ? b[$1] : 0)}' "$1" "$2"
}
msum() { awk '{s[$1] += $2} END {for (k in s) print k, s[k]}' "$@"; }
delta_now() { # -> file with "key delta since begin"
    snap "$RUN/metrics/now" || return 1
    mdiff "$RUN/metrics/base" "$RUN/metrics/now" >"$RUN/metrics/d.cur"
    msum "$RUN/metrics/acc" "$RUN/metrics/d.cur" >"$RUN/metrics/delta"
}
metric_key() { # binds[.dir] unbinds[.reason] refusals[.cause] ops.OP -> awk regex on the key
    local fam lab
    case "${1%%.*}" in
    binds) fam=ringnfs_connection_binds_total lab=direction ;;
    unbinds) fam=ringnfs_connection_unbinds_total lab=reason ;;
    refusals) fam=ringnfs_bind_refusals_total lab=cause ;;
    ops) fam=ringnfs_compound_ops_total lab=op ;;
    delegs) fam=ringnfs_delegations_granted_total lab=type ;;
    tls) fam=ringnfs_tls_handshakes_total lab=result ;;
    gss) fam=ringnfs_gss_context_inits_total lab=result ;;
    recalled | returned | revoked) echo "^ringnfs_delegations_$1_total\$"; return ;;
    *) return 1 ;;
    esac
    if [ "${1#*.}" = "$1" ]; then echo "^$fam\\{"; else echo "^$fam\\{$lab=\"${1#*.}\"\\}$"; fi
}
delta_of() { # NAME -> number (sum over labels when NAME has no label)
    local re
    re=$(metric_key "$1") || return 1
    awk -v re="$re" '$1 ~ re {s += $2} END {print s + 0}' "$RUN/metrics/delta"
}
family_delta() { # NAME -> "+N (label n, ...)"
    local re
    re=$(metric_key "$1")
    awk -v re="$re" '$1 ~ re && $2 != 0 {t += $2; l = $1; sub(/^[^"]*"/, "", l); sub(/".*$/, "", l); p = p (p == "" ? "" : ", ") l " " $2}
        END {printf "+%d%s", t, (p == "" ? "" : " (" p ")")}' "$RUN/metrics/delta"
}

describe_sessions() { # JSON -> one line per session and per connection
    jq -r '.[] | "session \(.id): \(.summary.total) bound (fore \(.summary.fore), back \(.summary.back), both \(.summary.both))",
        (.connections[] | "  conn \(.id) \(.direction) peer \(.peer) local \(.local) requests \(.requests)\(if .xprtsec then " xprtsec " + .xprtsec else "" end)\(if .draining then " draining" else "" end)")' <<<"$1"
}
record_sample() { # JSON: add to this scenario's samples
    local c
    c=$(cat "$RUN/var/cur" 2>/dev/null || true)
    [ -z "$c" ] || jq -r '.[] | .id as $s | .connections[] | "\($s) \(.id)"' <<<"$1" >>"$RUN/samples/$c" 2>/dev/null || true
}
ext_skip() { [ -n "$EXT1" ] && { echo "skipped: external server (no control plane)"; return 0; }; return 1; }

h_begin() {
    # The TLS handshake counts go into the report of the scenarios that make them.
    case " $TLS_SCENARIOS " in *" $1 "*) TLS_REPORT=1 ;; *) TLS_REPORT= ;; esac
    case " $KRB5_SCENARIOS " in *" $1 "*) GSS_REPORT=1 ;; *) GSS_REPORT= ;; esac
    echo "$1" >"$RUN/var/cur"
    date +%s.%N >"$RUN/var/t_begin"
    rm -f "$RUN/var/killed" "$RUN/var/drained" "$RUN/var/oldclient" "$RUN/var/failover.report" "$RUN"/var/fo.*
    ext_skip && return 0
    # A cluster left up by a failover scenario that did not finish: taken down first.
    if [ -n "$NODE2_PID" ] || [ ${#CLUSTER_ARGS[@]} -gt 0 ]; then
        echo "a cluster is still up: taking it down first"
        h_cluster_down || return 1
    fi
    snap "$RUN/metrics/base" || { echo "control plane: /metrics failed"; return 1; }
    : >"$RUN/metrics/acc"
    stat -c %s "$RUN/server.log" >"$RUN/var/logoff"
    echo "scenario $1 begins: server $SERVER_PID, metrics snapshot taken"
}

h_end() {
    local sc=$1 t secs seen
    t=$(cat "$RUN/var/t_begin")
    secs=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
    rm -f "$RUN/var/cur"
    if [ -n "$EXT1" ]; then
        echo "time=${secs}s (external server: no server-side counts)" >"$RUN/report.d/$sc"
        echo "scenario $sc ends"
        return 0
    fi
    local rc=0 f k
    for f in "$RUN"/var/restore.*; do
        [ -e "$f" ] || continue
        k=${f##*/restore.}
        echo "restoring $k=$(cat "$f"): $(api_change PATCH settings "{\"$k\": $(cat "$f")}" | tr -d '\n')" || rc=1
        rm -f "$f"
    done
    delta_now || { echo "control plane: /metrics failed"; return 1; }
    cp "$RUN/metrics/delta" "$RUN/metrics/$sc.delta"
    seen=$(sort -u "$RUN/samples/$sc" 2>/dev/null | awk '{n[$1]++} END {for (s in n) printf "%s%s:%d", (c++ ? " " : ""), substr(s, length(s) - 7), n[s]}')
    local fo=
    [ ! -s "$RUN/var/failover.report" ] || fo=" $(cat "$RUN/var/failover.report")"
    echo "time=${secs}s sessions=$(sort -u "$RUN/samples/$sc" 2>/dev/null | awk '{print $1}' | sort -u | wc -l) conns/session=[${seen}] binds=$(family_delta binds) unbinds=$(family_delta unbinds) refusals=$(family_delta refusals)${TLS_REPORT:+ tls_handshakes=$(family_delta tls)}${GSS_REPORT:+ gss_context_inits=$(family_delta gss)}$fo" >"$RUN/report.d/$sc"
    echo "scenario $sc: $(cat "$RUN/report.d/$sc")"
    return $rc
}

# check WHAT [ARGS] [wait=SECONDS]: c_WHAT, retried every 0.5 s for up to SECONDS when
# the state takes a while to settle (a timeout, not a timing assertion).
h_check() {
    ext_skip && return 0
    local what=$1 wait=0 a args=() end
    shift
    for a in "$@"; do case "$a" in wait=*) wait=${a#wait=} ;; *) args+=("$a") ;; esac; done
    declare -F "c_$what" >/dev/null || { echo "unknown check $what"; return 2; }
    end=$(($(date +%s) + wait))
    while :; do
        if "c_$what" "${args[@]}" >"$RUN/host/poll.out" 2>&1; then
            cat "$RUN/host/poll.out"
            return 0
        fi
        if [ "$(date +%s)" -ge $end ]; then
            [ "$wait" = 0 ] || echo "(still not so after waiting ${wait} s)"
            cat "$RUN/host/poll.out"
            return 1
        fi
        sleep 0.5
    done
}

# c_session KEY=VALUE...: exactly one session, whose summary/clients/addresses match.
#   clients=N total=N mintotal=N fore=N back=N both=N locals=N (distinct server addresses)
#   xprtsec=none|tls|mtls (the transport security of every bound connection)
c_session() {
    local s n kv k v got id
    s=$(api sessions) || { echo "control plane: GET /api/v1/sessions failed"; return 1; }
    record_sample "$s"
    describe_sessions "$s"
    n=$(jq length <<<"$s")
    [ "$n" = 1 ] || { echo "$n sessions, want 1"; return 1; }
    for kv in "$@"; do
        k=${kv%%=*} v=${kv#*=}
        case "$k" in
        clients) got=$(api clients | jq length) ;;
        total | fore | back | both) got=$(jq ".[0].summary.$k" <<<"$s") ;;
        mintotal) got=$(jq ".[0].summary.total" <<<"$s") ;;
        locals) got=$(jq '[.[0].connections[].local | sub(":[0-9]+$"; "")] | unique | length' <<<"$s") ;;
        xprtsec) got=$(jq -r '[.[0].connections[].xprtsec // "(not shown)"] | unique | join(",")' <<<"$s") ;;
        *) echo "unknown key $k"; return 2 ;;
        esac
        if [ "$k" = mintotal ]; then
            [ "$got" -ge "$v" ] || { echo "total $got, want at least $v"; return 1; }
        else
            [ "$got" = "$v" ] || { echo "$k $got, want $v"; return 1; }
        fi
    done
    id=$(jq -r '.[0].id' <<<"$s")
    echo "one session ..${id:24}: $(jq -r '.[0].summary | "\(.total) bound (fore \(.fore), back \(.back), both \(.both))"' <<<"$s") via $(jq -r '[.[0].connections[].local] | unique | join(" and ")' <<<"$s"); as expected ($*)"
}

# c_idle: no session and no client left (the client unmounted).
c_idle() {
    local s c
    s=$(api sessions) || return 1
    c=$(api clients) || return 1
    describe_sessions "$s"
    [ "$(jq length <<<"$s")" = 0 ] && [ "$(jq length <<<"$c")" = 0 ] ||
        { echo "$(jq length <<<"$s") sessions and $(jq length <<<"$c") clients left, want none"; return 1; }
    echo "no sessions, no clients"
}

# c_delta NAME OP N: the counter NAME moved by OP N since the scenario began
#   NAME: binds[.fore|back|both] unbinds[.reason] refusals[.cause] ops.OPNAME
#   delegs[.read|write] recalled returned revoked (delegations) tls[.ok|...] (TLS
#   handshakes by result); OP: eq ge le
c_delta() {
    local d
    delta_now || { echo "control plane: /metrics failed"; return 1; }
    d=$(delta_of "$1") || { echo "unknown counter $1"; return 2; }
    if [ "$d" "-$2" "$3" ]; then
        echo "$1 moved by $d since the scenario began ($2 $3: as expected)"
    else
        echo "$1 moved by $d since the scenario began, want $2 $3"
        return 1
    fi
}

# c_locks: the guest's byte-range locks reached the server (LOCK moved), or the guest
# held write delegations, under which Linux keeps locks to itself (RFC 8881 §10.4.4 lets
# a delegation's holder lock locally; they are sent when the delegation is recalled).
c_locks() {
    local l w
    delta_now || { echo "control plane: /metrics failed"; return 1; }
    l=$(delta_of ops.LOCK) w=$(delta_of delegs.write)
    if [ "$l" -ge 1 ]; then
        echo "ops.LOCK moved by $l since the scenario began (ge 1: as expected)"
    elif [ "$w" -ge 1 ]; then
        echo "no LOCK reached the server, and $w write delegations were granted: the client locked locally, as it may"
    else
        echo "ops.LOCK moved by 0 and no write delegation was granted, want LOCK ge 1"
        return 1
    fi
}

# c_gone VAR: the connection saved in var/VAR (killed, drained) is neither bound nor open.
c_gone() {
    local id s c
    id=$(cat "$RUN/var/$1" 2>/dev/null) || { echo "no $1 connection recorded"; return 1; }
    s=$(api sessions) || return 1
    c=$(api connections) || return 1
    record_sample "$s"
    if jq -e --argjson id "$id" 'any(.[].connections[]; .id == $id)' <<<"$s" >/dev/null; then
        echo "connection $id ($1) is still bound"; return 1
    fi
    if jq -e --argjson id "$id" 'any(.[]; .id == $id)' <<<"$c" >/dev/null; then
        echo "connection $id ($1) is still open"; return 1
    fi
    echo "connection $id ($1) is unbound and closed"
}

# c_open OP N: open connections (bound or not) compared with N.
c_open() {
    local c n
    c=$(api connections) || return 1
    n=$(jq length <<<"$c")
    jq -r '.[] | "  conn \(.id) peer \(.peer) local \(.local) sessions \(.sessions | length) requests \(.requests)"' <<<"$c"
    [ "$n" "-$1" "$2" ] || { echo "$n open connections, want $1 $2"; return 1; }
    echo "$n open connections ($1 $2: as expected), $(jq '[.[] | select(.sessions | length == 0)] | length' <<<"$c") of them bound to no session"
}

# c_bcts [transports=N]: the client sent BIND_CONN_TO_SESSION since the scenario began,
# FORE_OR_BOTH on one transport and FORE on the others (N connections in all); every
# one granted what it asked for.
c_bcts() {
    local off lines n nb nf bad
    off=$(cat "$RUN/var/logoff")
    lines=$(tail -c +$((off + 1)) "$RUN/server.log" | grep 'BIND_CONN_TO_SESSION' | tr -d '"' |
        sed -E 's/.*conn=([0-9]+).*requested=([A-Z_]+).*granted=([a-z-]+).*status=([0-9]+).*/\1 \2 \3 \4/' || true)
    [ -n "$lines" ] || { echo "no BIND_CONN_TO_SESSION in the server log since the scenario began"; return 1; }
    echo "$lines" | awk '{print "  conn " $1 ": asked " $2 ", granted " $3 ", status " $4}'
    n=$(echo "$lines" | awk '{print $1}' | sort -u | wc -l)
    nb=$(echo "$lines" | awk '$2 == "FORE_OR_BOTH" {print $1}' | sort -u | wc -l)
    nf=$(echo "$lines" | awk '$2 == "FORE" {print $1}' | sort -u | wc -l)
    bad=$(echo "$lines" | awk '!(($2 == "FORE_OR_BOTH" && $3 == "both") || ($2 == "FORE" && $3 == "fore")) || $4 != 0' | wc -l)
    [ "$bad" = 0 ] || { echo "$bad BIND_CONN_TO_SESSION not granted as asked"; return 1; }
    [ "$nb" = 1 ] || { echo "$nb connections asked FORE_OR_BOTH, want 1"; return 1; }
    [ -z "${1:-}" ] || [ "$n" = "${1#transports=}" ] || { echo "BIND_CONN_TO_SESSION on $n connections, want ${1#transports=}"; return 1; }
    echo "BIND_CONN_TO_SESSION on $n connections: FORE_OR_BOTH on 1, FORE on $nf; all granted as asked"
}

# Client ids are u64 (jq would round them to doubles): take them from the raw JSON.
client_ids() { api clients | grep -o '"id":[0-9]*' | cut -d: -f2 | tr '\n' ' ' | xargs; }

# c_newclient: after a restart, one client that is not the one from before, one session.
c_newclient() {
    local old c
    old=$(cat "$RUN/var/oldclient" 2>/dev/null || echo none)
    c=$(api clients) || return 1
    [ "$(jq length <<<"$c")" = 1 ] || { echo "$(jq length <<<"$c") clients, want 1"; return 1; }
    [ "$(client_ids)" != "$old" ] || { echo "still the client id from before the restart ($old)"; return 1; }
    c_session mintotal=1 || return 1
    echo "new client $(client_ids) (was $old): recovered"
}

# pick_conn DIR: a connection of the only session with direction DIR (fore, both, any)
pick_conn() {
    local s
    s=$(api sessions) || { echo "control plane: GET sessions failed"; return 1; }
    record_sample "$s"
    jq -r --arg d "$1" '[.[].connections[] | select($d == "any" or .direction == $d)] | first | select(. != null) | "\(.id) \(.peer) \(.direction)"' <<<"$s"
}

# socat_of PORT: the pid of the socat (qemu guestfwd) whose server-side TCP socket
# has local port PORT (socket inode from /proc/net/tcp, then /proc/PID/fd).
socat_of() {
    local hex srv inode d pid
    hex=$(printf ':%04X' "$1")
    srv=$(printf ':%04X' "$PORT")
    inode=$(awk -v h="$hex" -v r="$srv" 'substr($2, length($2) - 4) == h && substr($3, length($3) - 4) == r {print $10; exit}' /proc/net/tcp)
    [ -n "$inode" ] || return 1
    for d in /proc/[0-9]*; do
        [ "$(cat "$d/comm" 2>/dev/null)" = socat ] || continue
        pid=${d#/proc/}
        if ls -l "$d/fd" 2>/dev/null | grep -q "socket:\[$inode\]"; then echo "$pid"; return 0; fi
    done
    return 1
}

# kill_conn DIR: kill the forwarding socat of one connection (a network drop for it).
h_kill_conn() {
    local c id peer dir pid
    if [ -n "$EXT1" ]; then
        # No server view: kill the newest forwarder to the first address.
        for d in /proc/[0-9]*; do
            [ "$(cat "$d/comm" 2>/dev/null)" = socat ] && tr '\0' ' ' <"$d/cmdline" | grep -q "TCP:$FWD1" && pid=${d#/proc/}
        done
        [ -n "${pid:-}" ] || { echo "no forwarder to $FWD1 found"; return 1; }
        kill "$pid" && echo "killed forwarder pid $pid"
        return
    fi
    c=$(pick_conn "$1") || return 1
    [ -n "$c" ] || { echo "no $1 connection bound"; return 1; }
    read -r id peer dir <<<"$c"
    pid=$(socat_of "${peer##*:}") || {
        echo "sockets with port ${peer##*:}: $(awk -v h="$(printf ':%04X' "${peer##*:}")" 'index($0, h)' /proc/net/tcp | tr -s ' ' | cut -c1-80)"
        for d in /proc/[0-9]*; do [ "$(cat "$d/comm" 2>/dev/null)" = socat ] && echo "socat ${d#/proc/}: $(ls -l "$d/fd" | grep -o 'socket:.*' | tr '\n' ' ')"; done
        echo "no forwarding process found for connection $id (peer $peer)"
        return 1
    }
    kill "$pid" || return 1
    echo "$id" >"$RUN/var/killed"
    echo "killed socat pid $pid: connection $id ($dir, peer $peer) dropped"
}

# drain_conn DIR: drain one connection through the control plane.
h_drain_conn() {
    ext_skip && return 0
    local c id peer dir r
    c=$(pick_conn "$1") || return 1
    [ -n "$c" ] || { echo "no $1 connection bound"; return 1; }
    read -r id peer dir <<<"$c"
    r=$(api_change POST "connections/$id/drain") || { echo "drain failed: $r"; return 1; }
    echo "$id" >"$RUN/var/drained"
    echo "POST /api/v1/connections/$id/drain ($dir, peer $peer): $r"
}

# set KEY VALUE: change a live setting (restored when the scenario ends).
h_set() {
    ext_skip && return 0
    local old r
    old=$(api settings | jq ".$1") || return 1
    [ -e "$RUN/var/restore.$1" ] || echo "$old" >"$RUN/var/restore.$1"
    r=$(api_change PATCH settings "{\"$1\": $2}") || { echo "PATCH settings failed: $r"; return 1; }
    echo "$1: $old -> $2 $r"
}

# put PATH DATA: write DATA to PATH (from the export's root) as a second NFS client,
# the in-repo one (`ringnfs bench file`, beside the server binary); NFS4ERR_DELAY while
# a guest's delegation is recalled is retried, and the time it took is printed.
h_put() {
    ext_skip && return 0
    "$BENCH" file --server "127.0.0.1:$PORT" put "$1" "$2"
}

# stat PATH SIZE: GETATTR of PATH as that second client (no OPEN); its size must be
# SIZE (under a guest's write delegation, what the guest answers to CB_GETATTR).
h_stat() {
    ext_skip && return 0
    local out
    out=$("$BENCH" file --server "127.0.0.1:$PORT" stat "$1") || { echo "$out"; return 1; }
    echo "$out"
    case "$out" in *": size $2 "*) echo "size $2: as expected" ;; *) echo "want size $2"; return 1 ;; esac
}

# get PATH WANT: read PATH as that second client; it must hold WANT.
h_get() {
    ext_skip && return 0
    local got
    got=$("$BENCH" file --server "127.0.0.1:$PORT" get "$1" 2>"$RUN/host/get.err") ||
        { cat "$RUN/host/get.err"; return 1; }
    cat "$RUN/host/get.err"
    [ "$got" = "$2" ] || { echo "$1 holds \"$got\", want \"$2\""; return 1; }
    echo "$1 holds \"$got\": as expected"
}

# exports_two: serve two exports through the control plane, as an admin would: the
# export at "/" moves to /main (same directory), and /ro (another directory, with a file
# in it) is added read-only; the pseudo root shows both. exports_restore undoes it.
h_exports_two() {
    ext_skip && return 0
    local id r
    mkdir -p "$RUN/export-ro" && echo "read-only data" >"$RUN/export-ro/hello"
    id=$(api exports | jq '.[0].id') || return 1
    r=$(api_change PUT "exports/$id" "{\"pseudo\": \"/main\", \"path\": \"$RUN/export\"}") ||
        { echo "PUT exports/$id failed: $r"; return 1; }
    echo "PUT exports/$id: $r"
    r=$(api_change POST exports "{\"pseudo\": \"/ro\", \"path\": \"$RUN/export-ro\", \"read_only\": true}") ||
        { echo "POST exports failed: $r"; return 1; }
    echo "POST exports: $r"
    api exports | jq -c '[.[] | {id, pseudo: .export.pseudo}]'
}

h_exports_restore() {
    ext_skip && return 0
    local ro main r
    ro=$(api exports | jq '.[] | select(.export.pseudo == "/ro") | .id')
    main=$(api exports | jq '.[] | select(.export.pseudo == "/main") | .id')
    [ -z "$ro" ] || r=$(api_change DELETE "exports/$ro") || { echo "DELETE exports/$ro failed: $r"; return 1; }
    [ -z "$main" ] || r=$(api_change PUT "exports/$main" "{\"pseudo\": \"/\", \"path\": \"$RUN/export\"}") ||
        { echo "PUT exports/$main failed: $r"; return 1; }
    api exports | jq -c '[.[] | {id, pseudo: .export.pseudo}]'
}

# restart: stop the server (SIGTERM, SIGKILL after 30 s) and start it again with the
# same state directory, ports and options.
h_restart() {
    ext_skip && return 0
    local old t0 i
    old=$SERVER_PID t0=$(date +%s.%N)
    client_ids >"$RUN/var/oldclient"
    snap "$RUN/metrics/pre" && mdiff "$RUN/metrics/base" "$RUN/metrics/pre" >>"$RUN/metrics/acc"
    : >"$RUN/metrics/base"
    kill -TERM "$old" 2>/dev/null
    for i in $(seq 300); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$old" 2>/dev/null; then echo "server $old ignored SIGTERM for 30 s: SIGKILL"; kill -KILL "$old"; fi
    wait "$old" 2>/dev/null
    echo "server $old stopped (exit status $?)"
    start_server || { echo "the server did not start again"; tail -5 "$RUN/server.log"; return 1; }
    echo "server restarted: pid $old -> $SERVER_PID in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s, same state directory"
}

# tls_server on|off: restart the server (as restart does: same state directory, ports
# and options) with the run's certificate and key (on), or without them (off).
h_tls_server() {
    ext_skip && return 0
    case "$1" in
    on) TLS_ARGS=(--tls-cert "$RUN/tls/server.pem" --tls-key "$RUN/tls/server.key") ;;
    off) TLS_ARGS=() ;;
    *) echo "usage: tls_server on|off"; return 2 ;;
    esac
    if [ -n "$SERVER_PID" ]; then
        h_restart || return 1
    else
        start_server || { echo "the server did not start"; tail -5 "$RUN/server.log"; return 1; }
        echo "server started: pid $SERVER_PID"
    fi
    echo "server pid $SERVER_PID runs with ${TLS_ARGS[*]:-no TLS options}"
}

# tls_export tls|default: the export at "/" admits RPC-with-TLS only (its xprtsec, a
# list of none, tls, mtls as in knfsd's exports(5), is ["tls"]) or every transport (no
# xprtsec: the default). The export as the server lists it afterwards must show it, or
# the requirement is not in force and this fails.
h_tls_export() {
    ext_skip && return 0
    case "$1" in
    tls) root_export_option xprtsec '["tls"]' ;;
    default) root_export_option xprtsec '' ;;
    *) echo "usage: tls_export tls|default"; return 2 ;;
    esac
}

# root_export_option KEY JSON: the export at "/" gets option KEY = JSON (empty: the
# option left out, i.e. its default) through the control plane; the export as the server
# lists it afterwards must show it, or the option is not in force.
root_export_option() {
    local key=$1 value=$2 id r got want field=
    if [ -n "$value" ]; then
        field=", \"$key\": $value"
        want=$(jq -rn --argjson v "$value" '$v | join(",")')
    else
        want='(default)'
    fi
    id=$(api exports | jq '[.[] | select(.export.pseudo == "/")] | first | .id // empty') || return 1
    [ -n "$id" ] || { echo "no export at /"; return 1; }
    r=$(api_change PUT "exports/$id" "{\"pseudo\": \"/\", \"path\": \"$RUN/export\"$field}") ||
        { echo "PUT exports/$id failed: $r"; return 1; }
    echo "PUT exports/$id ($key $want): $r"
    got=$(api exports | jq -r --argjson id "$id" --arg k "$key" '.[] | select(.id == $id) | .export[$k] // ["(default)"] | join(",")')
    [ "$got" = "$want" ] || { echo "the export shows $key $got, want $want: not in force"; return 1; }
    echo "export $id at / now has $key $got"
}

# krb5_server on|off: restart the server (as restart does) with the run's keytab and
# KRB5_CONFIG (on), or without them (off).
h_krb5_server() {
    ext_skip && return 0
    case "$1" in
    on) KRB5_ARGS=(--krb5-keytab "$RUN/krb5/server.keytab" --krb5-realm "$REALM")
        SRV_ENV=(KRB5_CONFIG="$RUN/krb5/krb5.conf" KRB5RCACHEDIR="$RUN/krb5/rcache") ;;
    off) KRB5_ARGS=() SRV_ENV=() ;;
    *) echo "usage: krb5_server on|off"; return 2 ;;
    esac
    h_restart || return 1
    echo "server pid $SERVER_PID runs with ${KRB5_ARGS[*]:-no Kerberos options}"
}

# krb5_export krb5|default: the export at "/" admits Kerberos only (sec ["krb5", "krb5i",
# "krb5p"]) or its default; the export as listed afterwards must show it.
h_krb5_export() {
    ext_skip && return 0
    case "$1" in
    krb5) root_export_option sec '["krb5", "krb5i", "krb5p"]' ;;
    default) root_export_option sec '' ;;
    *) echo "usage: krb5_export krb5|default"; return 2 ;;
    esac
}

# owner PATH UID: the file PATH (from the export's root) is owned by UID on the host.
h_owner() {
    ext_skip && return 0
    local got
    got=$(stat -c %u "$RUN/export/$1") || { echo "cannot stat $RUN/export/$1"; return 1; }
    [ "$got" = "$2" ] || { echo "$1 on the host is owned by uid $got, want $2"; return 1; }
    echo "$1 on the host is owned by uid $got: as expected"
}

# c_gss: the server holds RPCSEC_GSS contexts, or established some since the scenario began.
c_gss() {
    local held made
    delta_now || { echo "control plane: /metrics failed"; return 1; }
    held=$(awk '$1 == "ringnfs_gss_contexts" {print $2}' "$RUN/metrics/now")
    made=$(delta_of gss.ok)
    echo "ringnfs_gss_contexts ${held:-absent}, gss_context_inits{ok} +$made since the scenario began"
    [ "${held:-0}" -gt 0 ] || [ "$made" -gt 0 ] || { echo "no RPCSEC_GSS context on the server"; return 1; }
}

# md5 PATH WANT: the file PATH (from the export's root) as the host sees it in the export
# directory has md5 WANT.
h_md5() {
    ext_skip && return 0
    local got
    got=$(md5sum <"$RUN/export/$1" | cut -d' ' -f1) || { echo "cannot read $RUN/export/$1"; return 1; }
    [ "$got" = "$2" ] || { echo "$1 on the host: md5 $got, the guest's $2"; return 1; }
    echo "$1 on the host: $(stat -c %s "$RUN/export/$1") bytes, md5 $got, the same as the guest's"
}

# ------------------------------------------------------------------ failover (a cluster of two)
# The harness's server becomes node 1 of a cluster on the run's etcd, node 2 runs beside
# it over the same export directory; the guest's 10.0.2.100 goes to node 1. Half-way
# through the guest's copy node 1 crashes (SIGKILL); once node 2 has begun the
# cluster-wide grace period the address moves to node 2, where the client reclaims.
FO_TTL=3    # --node-ttl: node 1's lease, i.e. how long its death takes to be seen
FO_GRACE=90 # --grace: the deadline of the grace period (it ends sooner, once reclaims are done)
PORT2= CPORT2=
node2_snap() { "${CURL[@]}" -m 5 -f "http://127.0.0.1:$CPORT2/metrics" 2>/dev/null | grep '^ringnfs_'; }
mval() { awk -v k="$1" '$1 == k {v = $2} END {print v + 0}'; } # KEY <metrics -> value (0 when absent)
secs_between() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }

start_node2() {
    local i
    echo "=== $(date '+%F %T') starting ringnfs node 2 (pid follows)" >>"$RUN/server2.log"
    env RUST_LOG="${RUST_LOG:-debug}" "$BIN" serve --listen "127.0.0.1:$PORT2" --control "127.0.0.1:$CPORT2" \
        --export "$RUN/export" --state-dir "$RUN/state2" --threads 2 "${SERVER_ARGS[@]}" \
        --cluster "etcd=$ETCD_URL" --node-id 2 --node-ttl $FO_TTL --grace $FO_GRACE >>"$RUN/server2.log" 2>&1 &
    NODE2_PID=$!
    echo "$NODE2_PID" >>"$RUN/server2.log"
    for i in $(seq 300); do
        if nfs_up 127.0.0.1 "$PORT2" && "${CURL[@]}" -f -o /dev/null "http://127.0.0.1:$CPORT2/metrics" 2>/dev/null; then
            return 0
        fi
        kill -0 "$NODE2_PID" 2>/dev/null || { wait "$NODE2_PID" 2>/dev/null; NODE2_PID=; return 1; }
        sleep 0.1
    done
    return 1
}

# cluster_up: the server restarted (as restart does: same ports, export and state
# directory) as node 1 of a cluster on the run's etcd, node 2 started beside it (its own
# listen and control ports on 127.0.0.1, state directory RUN/state2, the same export);
# up when node 1's GET /api/v1/cluster lists both.
h_cluster_up() {
    ext_skip && return 0
    [ -n "$ETCD_URL" ] || { echo "no etcd in this run"; return 1; }
    local i n attempt
    CLUSTER_ARGS=(--cluster "etcd=$ETCD_URL" --node-id 1 --node-ttl $FO_TTL --grace $FO_GRACE)
    h_restart || return 1
    mkdir -p "$RUN/state2"
    for attempt in 1 2 3; do
        PORT2=$(free_port) CPORT2=$(free_port)
        start_node2 && break
        [ $attempt -lt 3 ] || { echo "node 2 did not start"; tail -5 "$RUN/server2.log"; return 1; }
        echo "node 2 did not start on port $PORT2 (control $CPORT2); trying other ports"
    done
    echo "node 2: pid $NODE2_PID on 127.0.0.1:$PORT2, control plane 127.0.0.1:$CPORT2, state $RUN/state2, log $RUN/server2.log"
    for i in $(seq 300); do
        n=$(api cluster 2>/dev/null | jq '.nodes | length' 2>/dev/null || echo 0)
        [ "$n" = 2 ] && break
        sleep 0.1
    done
    api cluster | jq -c '{cluster, node_id, granting, in_grace, grace_epoch, nodes}'
    [ "$n" = 2 ] || { echo "node 1 sees $n nodes after 30 s, want 2"; return 1; }
    echo "cluster of 2 on $ETCD_URL: node 1 pid $SERVER_PID (127.0.0.1:$PORT, the guest's 10.0.2.100), node 2 pid $NODE2_PID (127.0.0.1:$PORT2); --node-ttl $FO_TTL --grace $FO_GRACE"
}

# failover: node 1 crashes (SIGKILL, no clean leave); node 2 sees its lease expire and
# begins grace; then the guest's address moves to node 2 (fo_move). A sampler of node
# 2's metrics (every 100 ms) then notes the first READ/WRITE/COMMIT node 2 serves and the
# end of grace, for failover_report (fo_sample). The guest's copy waits for the answer,
# so no I/O of its own is pending while the failure is detected; with
# RINGNFS_FAILOVER_INFLIGHT=1 in the harness's environment the answer comes right after
# the kill and detection, move and sampling go on in the background while the guest
# writes on (its WRITEs then meet the dead node 1 until the move: the client's reconnect
# backoff shows).
h_failover() {
    ext_skip && return 0
    [ -n "$NODE2_PID" ] && [ -n "$SERVER_PID" ] || { echo "no cluster (cluster_up first)"; return 1; }
    local old=$SERVER_PID t_kill
    # Node 1's counters so far count for the scenario (they die with it).
    snap "$RUN/metrics/pre" && mdiff "$RUN/metrics/base" "$RUN/metrics/pre" >>"$RUN/metrics/acc"
    rm -f "$RUN"/var/fo.*
    t_kill=$(date +%s.%N)
    kill -KILL "$old"
    wait "$old" 2>/dev/null
    SERVER_PID=
    echo "$t_kill" >"$RUN/var/fo.kill"
    echo "node 1 (pid $old) killed with SIGKILL"
    if [ "${RINGNFS_FAILOVER_INFLIGHT:-0}" = 1 ]; then
        echo inflight >"$RUN/var/fo.mode"
        (fo_move >"$RUN/host/failover-move.out" 2>&1 && fo_sample) &
        FO_SAMPLER=$!
        echo "RINGNFS_FAILOVER_INFLIGHT=1: detection and the move go on in the background (host/failover-move.out) while the guest writes on"
        return 0
    fi
    fo_move || return 1
    fo_sample &
    FO_SAMPLER=$!
}

fo_move() {
    local g=0 i t_kill t_grace t_moved
    t_kill=$(cat "$RUN/var/fo.kill")
    # Detection: node 2 begins the cluster-wide grace period once node 1's lease (TTL
    # --node-ttl) expired in etcd.
    for i in $(seq 600); do
        g=$(node2_snap | mval ringnfs_cluster_in_grace)
        [ "$g" = 1 ] && break
        sleep 0.1
    done
    if [ "$g" != 1 ]; then
        # The client is moved all the same (a failed scenario, but no hung guest).
        echo "127.0.0.1:$PORT2" >"$RUN/var/fwd1"
        echo "$CPORT2 $RUN/state2" >"$RUN/var/view"
        : >"$RUN/metrics/base"
        node2_snap | grep cluster_
        echo "node 2 did not begin grace within 60 s of the kill (the address moved to it all the same)"
        return 1
    fi
    t_grace=$(date +%s.%N)
    echo "$t_grace" >"$RUN/var/fo.grace"
    # Only now does the address move, as keepalived or pacemaker moves a floating address
    # after they detected the failure. Moved before node 2 began grace, the client's
    # reclaims (OPEN CLAIM_PREVIOUS, LOCK reclaim) would reach a node that does not yet
    # know node 1 is dead: NFS4ERR_NO_GRACE, and the client's opens and locks are lost.
    echo "127.0.0.1:$PORT2" >"$RUN/var/fwd1"
    t_moved=$(date +%s.%N)
    echo "$t_moved" >"$RUN/var/fo.moved"
    # The checks read node 2 from now on; all its counters count (it began with the cluster).
    echo "$CPORT2 $RUN/state2" >"$RUN/var/view"
    : >"$RUN/metrics/base"
    echo "node 2 in grace $(secs_between "$t_kill" "$t_grace") s after the kill (epoch $(node2_snap | mval ringnfs_cluster_grace_epoch), pending reclaims $(node2_snap | mval ringnfs_cluster_pending_reclaims))"
    echo "the guest's 10.0.2.100 now goes to node 2 (127.0.0.1:$PORT2), $(secs_between "$t_kill" "$t_moved") s after the kill"
}

fo_sample() { # (run in the background)
    local end m now io
    end=$(($(date +%s) + 300))
    while [ "$(date +%s)" -lt $end ]; do
        m=$(node2_snap) || { sleep 0.1; continue; }
        now=$(date +%s.%N)
        if [ ! -e "$RUN/var/fo.first_io" ]; then
            io=$(awk '$1 ~ /^ringnfs_compound_ops_total\{op="(READ|WRITE|COMMIT)"\}$/ {s += $2} END {print s + 0}' <<<"$m")
            [ "$io" -gt 0 ] && echo "$now" >"$RUN/var/fo.first_io"
        fi
        if [ ! -e "$RUN/var/fo.grace_end" ] && [ "$(mval ringnfs_cluster_in_grace <<<"$m")" = 0 ]; then
            echo "$now" >"$RUN/var/fo.grace_end"
        fi
        [ -e "$RUN/var/fo.first_io" ] && [ -e "$RUN/var/fo.grace_end" ] && break
        sleep 0.1
    done
}

# failover_report: the failover's timings (from the kill) and node 2's reclaims, once
# the sampler saw node 2 serve I/O and end grace (waits up to 120 s for it).
h_failover_report() {
    ext_skip && return 0
    local i k detect moved first grace m rec kind tried conn
    [ -e "$RUN/var/fo.kill" ] || { echo "no failover happened"; return 1; }
    for i in $(seq 240); do
        [ -e "$RUN/var/fo.first_io" ] && [ -e "$RUN/var/fo.grace_end" ] && break
        sleep 0.5
    done
    [ ! -s "$RUN/host/failover-move.out" ] || cat "$RUN/host/failover-move.out"
    [ -e "$RUN/var/fo.moved" ] || { echo "the address did not move"; return 1; }
    k=$(cat "$RUN/var/fo.kill")
    detect=$(secs_between "$k" "$(cat "$RUN/var/fo.grace")")s
    moved=$(secs_between "$k" "$(cat "$RUN/var/fo.moved")")s
    first=none grace=unended
    [ -e "$RUN/var/fo.first_io" ] && first=$(secs_between "$k" "$(cat "$RUN/var/fo.first_io")")s
    [ -e "$RUN/var/fo.grace_end" ] && grace=$(secs_between "$(cat "$RUN/var/fo.grace")" "$(cat "$RUN/var/fo.grace_end")")s
    # The guest's new connections to 10.0.2.100 after the kill (fwd1.log): those that
    # went to the dead node 1 (refused there), and the first one to node 2.
    tried=$(awk -v k="$k" -v to="$FWD1" '$1 > k && $2 == to' "$RUN/fwd1.log" 2>/dev/null | wc -l)
    conn=$(awk -v k="$k" -v to="127.0.0.1:$PORT2" '$1 > k && $2 == to {print $1; exit}' "$RUN/fwd1.log" 2>/dev/null)
    [ -n "$conn" ] && conn=$(secs_between "$k" "$conn")s || conn=none
    m=$(node2_snap) || { echo "node 2's /metrics failed"; return 1; }
    echo "$m" >"$RUN/metrics/node2.failover" # node 2's own counters (op errors by status: the recovery's path)
    rec=
    for kind in open delegation lock; do
        rec+="${rec:+,}$kind:$(mval "ringnfs_reclaims_total{kind=\"$kind\"}" <<<"$m")"
    done
    echo "kill -> grace begun on node 2 (detection) $detect; -> address moved $moved; -> the guest's first connection to node 2 $conn ($tried new connections to the dead node 1 before); -> first READ/WRITE/COMMIT served by node 2 $first; grace (begun -> ended) $grace; reclaims on node 2 $rec"
    echo "failover: detect=$detect moved=$moved reconnect=$conn first_io=$first grace=$grace reclaims=$rec dead_node_conns=$tried$([ -e "$RUN/var/fo.mode" ] && echo " mode=$(cat "$RUN/var/fo.mode")")" >"$RUN/var/failover.report"
    cat "$RUN/var/failover.report"
    [ "$first" != none ] && [ "$grace" != unended ] || { echo "the sampler did not see both node 2's first I/O and the end of grace"; return 1; }
}

# c_reclaims: node 2 admitted reclaims of at least one open and one lock.
c_reclaims() {
    local m o l
    m=$(node2_snap) || { echo "node 2's /metrics failed"; return 1; }
    grep '^ringnfs_reclaims_total' <<<"$m"
    o=$(mval 'ringnfs_reclaims_total{kind="open"}' <<<"$m")
    l=$(mval 'ringnfs_reclaims_total{kind="lock"}' <<<"$m")
    [ "$o" -ge 1 ] && [ "$l" -ge 1 ] || { echo "node 2 counted $o open and $l lock reclaims, want at least 1 of each"; return 1; }
    echo "node 2 counted $o open and $l lock reclaims: as expected"
}

# c_grace: node 2 began a grace period and ended it, and is out of grace.
c_grace() {
    local m s e g
    m=$(node2_snap) || { echo "node 2's /metrics failed"; return 1; }
    grep -E '^ringnfs_cluster_(in_grace|grace_epoch|nodes|pending_reclaims|graces_)' <<<"$m"
    s=$(mval ringnfs_cluster_graces_started_total <<<"$m")
    e=$(mval ringnfs_cluster_graces_ended_total <<<"$m")
    g=$(mval ringnfs_cluster_in_grace <<<"$m")
    [ "$s" -ge 1 ] && [ "$e" -ge 1 ] && [ "$g" = 0 ] ||
        { echo "node 2: graces started $s, ended $e, in grace $g; want a grace begun and ended"; return 1; }
    echo "node 2 began $s and ended $e grace periods, and is out of grace"
}

# cluster_down: node 2 stopped, the server restarted without the cluster options on its
# own ports (same state directory), the guest's 10.0.2.100 back on it. Also when the
# scenario failed half-way (and at the next scenario's begin, if it was left up).
h_cluster_down() {
    ext_skip && return 0
    local i
    if [ -n "$FO_SAMPLER" ]; then kill "$FO_SAMPLER" 2>/dev/null; wait "$FO_SAMPLER" 2>/dev/null; FO_SAMPLER=; fi
    if [ -n "$NODE2_PID" ]; then
        # Node 2's counters count for the scenario when the checks were reading it.
        if [ "$(view cport)" = "$CPORT2" ] && snap "$RUN/metrics/pre"; then
            mdiff "$RUN/metrics/base" "$RUN/metrics/pre" >>"$RUN/metrics/acc"
            : >"$RUN/metrics/base"
        fi
        kill -TERM "$NODE2_PID" 2>/dev/null
        for i in $(seq 300); do kill -0 "$NODE2_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$NODE2_PID" 2>/dev/null; then echo "node 2 ignored SIGTERM for 30 s: SIGKILL"; kill -KILL "$NODE2_PID"; fi
        wait "$NODE2_PID" 2>/dev/null
        echo "node 2 (pid $NODE2_PID) stopped (exit status $?)"
        NODE2_PID=
    fi
    echo "$FWD1" >"$RUN/var/fwd1"
    rm -f "$RUN/var/view"
    CLUSTER_ARGS=()
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        h_restart || return 1
    else
        SERVER_PID=
        start_server || { echo "the server did not start again"; tail -5 "$RUN/server.log"; return 1; }
        : >"$RUN/metrics/base" # a new process: its counters begin at 0
        echo "server started again: pid $SERVER_PID"
    fi
    echo "the guest's 10.0.2.100 goes to $FWD1 again; server pid $SERVER_PID without cluster options"
}

# c_standin: the TLS stand-in (tlsprobe, tlsproxy) answered an AUTH_TLS probe, completed
# a TLS handshake and read an RPC record sent inside TLS by the guest's kernel.
c_standin() {
    local n
    [ -s "$RUN/standin.log" ] || { echo "no stand-in log"; return 1; }
    tail -n 30 "$RUN/standin.log"
    n=$(grep -c ': handshake ok ' "$RUN/standin.log" || true)
    [ "$n" -ge 1 ] || { echo "no completed TLS handshake in the stand-in's log"; return 1; }
    grep -q ': tls-record ' "$RUN/standin.log" || { echo "TLS handshake completed, but no RPC record came inside TLS"; return 1; }
    echo "the stand-in completed $n TLS handshake(s) and read RPC inside TLS; $(grep ': handshake ok ' "$RUN/standin.log" | tail -1 | sed 's/.*handshake ok //')"
}

handle_line() {
    local id what rc out summary
    # shellcheck disable=SC2086
    set -f && set -- $1 && set +f
    [ "${1:-}" = REQ ] && [ $# -ge 3 ] || { echo "guest> $*" >>"$RUN/host.log"; return 0; }
    id=$2 what=$3
    shift 3
    out=$RUN/host/$id.out
    echo "[$(date +%T)] REQ $id $what $*" >>"$RUN/host.log"
    if declare -F "h_$what" >/dev/null; then
        if "h_$what" "$@" >"$out" 2>&1 </dev/null; then rc=0; else rc=$?; fi
    else
        echo "unknown request $what" >"$out"; rc=2
    fi
    summary=$(tail -n 1 "$out" | tr -d '\r')
    sed 's/^/    /' "$out" >>"$RUN/host.log"
    echo "[$(date +%T)] REP $id $rc $summary" >>"$RUN/host.log"
    {
        head -n -1 "$out" | head -n 40 | tr -d '\r' | while IFS= read -r l; do printf 'OUT %s %s\n' "$id" "$l"; done
        printf 'REP %s %s %s\n' "$id" "$rc" "${summary:-done}"
    } >&"$HIN"
}

# ------------------------------------------------------------------ guest
APPEND="console=ttyS0 loglevel=5 panic=-1 ringnfs.scenario=$(echo "$SCENARIOS" | tr ' ' ',') ringnfs.steptimeout=$STEP_TIMEOUT ringnfs.hostchan=1"
[ -n "$OPTS" ] && APPEND+=" ringnfs.opts=$OPTS"
[ -n "$NFSDEBUG" ] && APPEND+=" ringnfs.nfsdebug=$NFSDEBUG"
[ $KEEP = 1 ] && APPEND+=" ringnfs.keep=1"
# The guest's 10.0.2.100 is movable (failover): each NEW guest connection to it runs
# this wrapper, which execs the socat to whatever var/fwd1 names then ($FWD1 unless the
# failover scenario moved it). Connections already made stay where they are. After the
# exec the process is the socat (comm "socat", cmdline "socat STDIO TCP:ADDR"), as
# socat_of and kill_conn look for it. Each connection is noted in fwd1.log (time, where
# it went), from which failover_report tells when the guest connected again.
echo "$FWD1" >"$RUN/var/fwd1"
printf '#!/bin/sh\nto=$(cat %s)\necho "$(date +%%s.%%N) $to" >>%s\nexec socat STDIO "TCP:$to"\n' \
    "$RUN/var/fwd1" "$RUN/fwd1.log" >"$RUN/fwd1.sh"
chmod 755 "$RUN/fwd1.sh"
NET="user,id=n0,restrict=on,net=10.0.2.0/24,host=10.0.2.2,ipv6=off"
NET+=",guestfwd=tcp:10.0.2.100:2049-cmd:$RUN/fwd1.sh"
NET+=",guestfwd=tcp:10.0.2.101:2049-cmd:socat STDIO TCP:$FWD2"
[ $STANDIN = 0 ] || NET+=",guestfwd=tcp:10.0.2.102:2049-cmd:socat STDIO TCP:127.0.0.1:$SPORT"
[ $KRB5_NET = 0 ] || NET+=",guestfwd=tcp:$KDC_GUEST:88-cmd:socat STDIO TCP:127.0.0.1:$KPORT"
mkfifo "$RUN/hostc.in" "$RUN/hostc.out"
exec {HIN}<>"$RUN/hostc.in" {HOUT}<>"$RUN/hostc.out"
QEMU=(qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -no-reboot
    -display none -monitor none -serial "file:$RUN/console.log"
    -chardev "pipe,id=hostc,path=$RUN/hostc" -serial chardev:hostc)
[ $KEEP = 1 ] && QEMU+=(-serial "unix:$RUN/shell.sock,server=on,wait=off")
QEMU+=(-kernel "$KDIR/vmlinux" -initrd "$INITRD" -append "$APPEND" -netdev "$NET" -device virtio-net-pci,netdev=n0)

log "booting $KVER (TCG), scenarios: $SCENARIOS${OPTS:+, options $OPTS}"
T0=$(date +%s.%N)
if [ $KEEP = 1 ]; then
    "${QEMU[@]}" >"$RUN/qemu.log" 2>&1 &
else
    timeout -s KILL "$TIMEOUT" "${QEMU[@]}" >"$RUN/qemu.log" 2>&1 &
fi
QEMU_PID=$!
if [ $KEEP = 1 ]; then
    log "--keep: after the scenarios the guest keeps running with a root shell:"
    log "    socat -,raw,echo=0 UNIX-CONNECT:$RUN/shell.sock"
    log "  console log $RUN/console.log; ${EXT1:+server $EXT1}${EXT1:-server log $RUN/server.log, control plane: $BIN ctl --addr 127.0.0.1:$CPORT --state-dir $RUN/state sessions}"
    log "  in the guest: nfsmount 10.0.2.100:/ /mnt 10.0.2.100 10.0.2.15 nconnect=4; /bin/sh /scenario.sh main drain; poweroff -f ends the run"
fi
buf=
while kill -0 "$QEMU_PID" 2>/dev/null; do
    chunk=
    if IFS= read -r -t 1 -u "$HOUT" chunk; then
        handle_line "${buf}${chunk%$'\r'}"
        buf=
    else
        buf+=$chunk # a partial line when the timeout hit
    fi
done
set +e
wait "$QEMU_PID"
QRC=$?
set -e
QEMU_PID=
T1=$(date +%s.%N)
WALL=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }')
exec {HIN}>&- {HOUT}<&-
cleanup
[ "$INITRD" = "$IMG" ] || rm -f "$INITRD" # a copy of the cached image with the run's CA or krb5 files
PIDS=() SERVER_PID=
trap - EXIT

# ------------------------------------------------------------------ report
tr -d '\r' <"$RUN/console.log" >"$RUN/console.txt"
if [ $CAPTURE = 1 ] && [ -s "$RUN/nfs.pcap" ]; then
    log "decoding the capture (tshark)"
    # One line per RPC message: frame, xid, call/reply, minor version or status, ops.
    tshark -r "$RUN/nfs.pcap" -T fields -E separator=' ' -e frame.number -e frame.time_relative \
        -e tcp.stream >"$RUN/frames.txt" 2>>"$RUN/tshark.log" || true
    tshark -r "$RUN/nfs.pcap" -d "tcp.port==$PORT,rpc" -Y rpc -O rpc,nfs 2>>"$RUN/tshark.log" |
        awk -v map="$RUN/frames.txt" -f "$HERE/nfsops.awk" >"$RUN/nfs-ops.txt" || true
    rm -f "$RUN/frames.txt"
    log "decoded NFS ops: $RUN/nfs-ops.txt; full decode: tshark -r $RUN/nfs.pcap -V -d tcp.port==$PORT,rpc"
fi

echo
echo "==== kernel $KERNEL ($KVER), scenarios: $SCENARIOS${OPTS:+, options $OPTS}${SKIPPED:+, skipped: $(printf '%s' "$SKIPPED" | awk '{print $1}' | xargs)}"
echo "==== server: $BIN_INFO"
echo "==== qemu exit $QRC, wall time ${WALL}s (boot to poweroff)"
grep -E '^(GUEST|INFO|NFSMOUNT)' "$RUN/console.txt" | sed 's/^/  /' || true
if [ -s "$RUN/nfs-ops.txt" ]; then
    echo "  NFS replies not NFS4_OK, or that tshark could not decode (count, status, ops):"
    awk '$5 == "reply" && (($6 != "NFS4_OK" && $6 != "-") || /MALFORMED/) {$1 = $2 = $3 = $4 = $5 = ""; print}' "$RUN/nfs-ops.txt" |
        sort | uniq -c | sort -rn | sed 's/^/   /'
fi
if [ -z "$EXT1" ] && grep -qE ' (WARN|ERROR) ' "$RUN/server.log"; then
    echo "  server warnings/errors:"
    grep -E ' (WARN|ERROR) ' "$RUN/server.log" | head -20 | sed 's/^/    /'
fi

# Steps by scenario: "PART <name> BEGIN" ... "STEP ..." ... "PART <name> END (<s> s)".
awk '
    /^PART [a-z0-9]+ BEGIN/ {part = $2; order[++np] = part; next}
    /^PART [a-z0-9]+ END/ {done[$2] = 1; next}
    /^  \| / {buf = buf $0 "\n"; next}
    /^STEP / {
        p = (part == "" ? "-" : part)
        if ($3 == "OK") { ok[p]++; print "PASS " p " " $2 " " $5 " " $6 }
        else { bad[p]++; print "FAIL " p " " $2 " rc=" $4 " " $5 " " $6; printf "%s", tailof(buf) }
        buf = ""; next
    }
    {buf = ""}
    function tailof(b,    n, a, i, s) { n = split(b, a, "\n"); s = ""; for (i = (n > 25 ? n - 25 : 1); i < n; i++) s = s "      " a[i] "\n"; return s }
    END {
        for (i = 1; i <= np; i++) { p = order[i]; printf "PARTSUM %s %d %d %d\n", p, ok[p] + 0, bad[p] + 0, (p in done) }
    }' "$RUN/console.txt" >"$RUN/steps.txt"
grep -v '^PARTSUM' "$RUN/steps.txt" || true
echo
failn=0
for sc in $SCENARIOS; do
    [ "$sc" = none ] && continue
    read -r _ _ okn badn complete < <(grep "^PARTSUM $sc " "$RUN/steps.txt" || echo "PARTSUM $sc 0 0 0")
    res=PASS
    [ "$badn" = 0 ] && [ "$complete" = 1 ] && [ "$okn" -gt 0 ] || res=FAIL
    [ $res = PASS ] || failn=$((failn + 1))
    extra=
    [ "$complete" = 1 ] || extra=" (did not finish)"
    echo "RESULT $sc kernel=$KERNEL $res steps=$okn/$((okn + badn))$extra $(cat "$RUN/report.d/$sc" 2>/dev/null || echo '(no server report)')"
done
report_skipped
if ! grep -q '^SCENARIO DONE' "$RUN/console.txt"; then
    echo "RESULT guest kernel=$KERNEL FAIL: no 'SCENARIO DONE' marker (qemu exit $QRC after ${WALL}s; timeout ${TIMEOUT}s)"
    failn=$((failn + 1))
fi
if [ $failn -gt 0 ]; then
    echo
    echo "---- guest console (last 60 lines of $RUN/console.txt)"
    tail -n 60 "$RUN/console.txt" | sed 's/^/  /'
    if [ -z "$EXT1" ]; then
        echo "---- server log (last 40 lines of $RUN/server.log)"
        tail -n 40 "$RUN/server.log" | sed 's/^/  /'
    fi
    echo "---- host side (last 30 lines of $RUN/host.log)"
    tail -n 30 "$RUN/host.log" 2>/dev/null | sed 's/^/  /'
fi
LOGS=console.txt,host.log
[ -n "$EXT1" ] || LOGS+=,server.log
[ ! -e "$RUN/server2.log" ] || LOGS+=,server2.log
[ $CAPTURE = 0 ] || LOGS+=,nfs-ops.txt,nfs.pcap
echo "logs: $RUN/{$LOGS}"
[ $failn = 0 ] || exit 1
exit 0
}
