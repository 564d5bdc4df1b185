#!/bin/sh
# Guest side of the ringnfs kernel harness (busybox sh, run as root).
#
#   scenario.sh main SCENARIOS [EXTRA_MOUNT_OPTIONS]   SCENARIOS: comma-separated, from
#                 basic nconnect trunk reconnect rebind limit drain restart v42 deleg exports tls
#                 krb5 failover (or all), tlsprobe tlsproxy (diagnostics: RPC-with-TLS against the
#                 host's stand-in, alone or relaying to the server)
#   scenario.sh run FUNCTION [ARGS]                    (internal: one step)
#
# Every step prints "STEP <name> OK 0" or "STEP <name> FAIL <rc>" on the
# console; its own output follows "  | ". A step that hangs is killed after
# STEP_TIMEOUT seconds (rc 137). Each scenario is framed by "PART <name> BEGIN" and
# "PART <name> END". Steps named srv_* are the server's side, checked by the host
# (hostcall: a request on the second serial port, answered by tests/kernel/harness.sh).
export PATH=/bin:/sbin
SERVER=10.0.2.100
CLIENT=10.0.2.15
STEP_TIMEOUT=${STEP_TIMEOUT:-180}
TOUCH_DATE='2020-01-02 03:04:05'
TOUCH_EPOCH=1577934245 # the same instant in UTC (the guest has no TZ)
HOST_TIMEOUT=${HOST_TIMEOUT:-300}
BIG_MB=64  # basic: write and read back
COPY_MB=32 # reconnect, drain: the copy a connection breaks in
MANY=500   # basic: directory entries (READDIR over several calls)

up() { cut -d' ' -f1 /proc/uptime; }

# elapsed START: seconds since START (an uptime value), 2 decimals
elapsed() { awk -v a="$1" -v b="$(up)" 'BEGIN { printf "%.2f", b - a }'; }

fail() { echo "check failed: $*"; exit 1; }

# hostcall WHAT...: ask the host (tests/kernel/harness.sh) to check or do something.
# Request "REQ <id> WHAT..." on ttyS1; the host answers with "OUT <id> <text>" lines
# (printed) and one "REP <id> <rc> <summary>"; returns rc. Without a host channel
# (e.g. a guest booted by hand) every call is skipped.
hostcall() {
    [ -e /tmp/hostchan ] || { echo "no host channel: '$*' skipped"; return 0; }
    id=$(($(cat /tmp/hostseq 2>/dev/null || echo 0) + 1))
    echo $id >/tmp/hostseq
    echo "REQ $id $*" >/dev/ttyS1
    while :; do
        l=
        if ! IFS= read -r -t "$HOST_TIMEOUT" l </dev/ttyS1; then
            echo "the host did not answer '$*' within $HOST_TIMEOUT s"
            return 124
        fi
        case "$l" in
        "OUT $id "*) echo "host| ${l#OUT $id }" ;;
        "REP $id "*)
            r=${l#REP $id }
            echo "host: $* -> ${r#* }"
            return "${r%% *}"
            ;;
        *) echo "(host channel: ignored '$l')" ;;
        esac
    done
}

# copy_with HOSTACTION SRC DST: copy SRC to DST (dd conv=fsync) through a FIFO, and
# ask the host for HOSTACTION after the first half went in: the copy is certainly in
# progress when the host acts (dd cannot finish before the second half is fed).
copy_with() {
    rm -f /tmp/fifo && mkfifo /tmp/fifo || exit $?
    half=$(($(stat -c %s "$2") / 1048576 / 2))
    (dd if=/tmp/fifo of="$3" bs=1M conv=fsync 2>/tmp/dd.err; echo $? >/tmp/dd.rc) &
    ddpid=$!
    t=$(up)
    {
        dd if="$2" bs=1M count=$half 2>/dev/null
        # Let the client push part of it to the server before the host acts.
        sync "$3" 2>/dev/null || true
        echo "copy: ${half} MiB in after $(elapsed "$t") s; asking the host: $1" >&2
        hostcall $1 >&2; echo $? >/tmp/host.rc
        dd if="$2" bs=1M skip=$half 2>/dev/null
    } >/tmp/fifo
    wait $ddpid
    echo "copy finished after $(elapsed "$t") s, dd rc $(cat /tmp/dd.rc) $(tail -1 /tmp/dd.err)"
    [ "$(cat /tmp/host.rc)" = 0 ] || fail "host action '$1' failed"
    [ "$(cat /tmp/dd.rc)" = 0 ] || fail "the copy failed: $(cat /tmp/dd.err)"
}

# same_md5 LOCAL NFS: drop caches, compare checksums
same_md5() {
    echo 3 >/proc/sys/vm/drop_caches
    t=$(up)
    a=$(md5sum <"$1") || exit $?
    b=$(md5sum <"$2") || exit $?
    echo "md5 local $a, over NFS $b (read in $(elapsed "$t") s)"
    [ "$a" = "$b" ] || fail "$2 differs from $1"
}

mountstats_of_mnt() {
    awk '/^device /{p = ($5 == "/mnt")} p' /proc/self/mountstats
}

show_mount() {
    echo "/proc/mounts: $(grep ' /mnt ' /proc/mounts)"
    if [ -r /proc/fs/nfsfs/servers ]; then
        echo "nfsfs/servers:"; cat /proc/fs/nfsfs/servers
        echo "nfsfs/volumes:"; cat /proc/fs/nfsfs/volumes
    fi
    echo "mountstats header:"
    mountstats_of_mnt | grep -E '^device|opts:|caps:|nfsv4:|sec:|xprt:'
}

# ---------------------------------------------------------------- basic
b_mount() { nfsmount "$SERVER:/" /mnt "$SERVER" "$CLIENT" "$OPTS"; }
b_info() { show_mount; grep -q ' /mnt nfs4 ' /proc/mounts || fail "no nfs4 mount on /mnt"; }
b_ls_root() { ls -la /mnt; }
b_mkdir() { mkdir /mnt/d && [ -d /mnt/d ] || fail "/mnt/d is not a directory"; ls -ld /mnt/d; }
b_write() {
    dd if=/dev/urandom of=/tmp/f bs=1M count=$BIG_MB 2>/dev/null || fail "local urandom copy"
    t=$(up)
    dd if=/tmp/f of=/mnt/d/f bs=1M conv=fsync || exit $?
    echo "wrote $BIG_MB MiB in $(elapsed "$t") s"
    ls -l /mnt/d/f
}
b_read() {
    echo 3 >/proc/sys/vm/drop_caches
    t=$(up)
    a=$(md5sum </tmp/f) || exit $?
    b=$(md5sum </mnt/d/f) || exit $?
    echo "read $BIG_MB MiB in $(elapsed "$t") s; local $a nfs $b"
    [ "$a" = "$b" ] || fail "md5 differs"
    [ "$(stat -c %s /mnt/d/f)" = $((BIG_MB * 1048576)) ] || fail "size $(stat -c %s /mnt/d/f)"
}
b_ls_l() { ls -l /mnt/d; }
b_mv() {
    mv /mnt/d/f /mnt/d/g || exit $?
    [ -e /mnt/d/g ] || fail "g missing after mv"
    [ ! -e /mnt/d/f ] || fail "f still there after mv"
    ls -l /mnt/d
}
b_hardlink() {
    ln /mnt/d/g /mnt/d/h || exit $?
    n=$(stat -c %h /mnt/d/g); echo "nlink(g)=$n nlink(h)=$(stat -c %h /mnt/d/h)"
    [ "$n" = 2 ] || fail "link count $n, want 2"
    [ "$(stat -c %i /mnt/d/g)" = "$(stat -c %i /mnt/d/h)" ] || fail "g and h differ in inode"
}
b_symlink() {
    ln -s g /mnt/d/s || exit $?
    r=$(readlink /mnt/d/s); echo "readlink=$r"
    [ "$r" = g ] || fail "readlink gave '$r'"
    [ "$(md5sum </mnt/d/s)" = "$(md5sum </tmp/f)" ] || fail "reading through the symlink"
    ls -l /mnt/d
}
b_chmod() {
    chmod 600 /mnt/d/g || exit $?
    a=$(stat -c %a /mnt/d/g); echo "mode=$a"
    [ "$a" = 600 ] || fail "mode $a, want 600"
}
b_touch() {
    touch -d "$TOUCH_DATE" /mnt/d/g || exit $?
    y=$(stat -c %Y /mnt/d/g); echo "mtime=$y"
    [ "$y" = "$TOUCH_EPOCH" ] || fail "mtime $y, want $TOUCH_EPOCH"
}
b_remount() {
    umount /mnt || exit $?
    nfsmount "$SERVER:/" /mnt "$SERVER" "$CLIENT" "$OPTS" || exit $?
    ls -l /mnt/d
    [ "$(md5sum </mnt/d/g)" = "$(md5sum </tmp/f)" ] || fail "content after remount"
    [ "$(stat -c %a /mnt/d/g)" = 600 ] || fail "mode after remount $(stat -c %a /mnt/d/g)"
    [ "$(stat -c %Y /mnt/d/g)" = "$TOUCH_EPOCH" ] || fail "mtime after remount $(stat -c %Y /mnt/d/g)"
    [ "$(stat -c %h /mnt/d/g)" = 2 ] || fail "nlink after remount"
    [ "$(readlink /mnt/d/s)" = g ] || fail "symlink after remount"
}
b_append_truncate() {
    f=/mnt/d/t
    printf 'hello\n' >$f && printf 'world\n' >>$f || exit $?
    [ "$(cat $f)" = "$(printf 'hello\nworld')" ] || fail "append: $(cat $f)"
    truncate -s 3 $f || exit $?
    [ "$(cat $f)" = hel ] || fail "truncate to 3: '$(cat $f)'"
    truncate -s 1000000 $f || exit $?
    [ "$(stat -c %s $f)" = 1000000 ] || fail "extend: size $(stat -c %s $f)"
    echo 3 >/proc/sys/vm/drop_caches
    [ "$(tail -c 5 $f | od -An -tx1 | tr -d ' ')" = 0000000000 ] || fail "extended tail is not zeros"
    printf 'XY' | dd of=$f bs=1 seek=10 conv=notrunc 2>/dev/null || exit $?
    echo 3 >/proc/sys/vm/drop_caches
    [ "$(dd if=$f bs=1 skip=10 count=2 2>/dev/null)" = XY ] || fail "overwrite in the middle"
    [ "$(stat -c %s $f)" = 1000000 ] || fail "size after overwrite $(stat -c %s $f)"
}
b_many_files() {
    mkdir /mnt/d/many || exit $?
    i=0; while [ $i -lt $MANY ]; do : >/mnt/d/many/file-with-a-longish-name-$i || exit $?; i=$((i + 1)); done
    echo 3 >/proc/sys/vm/drop_caches
    n=$(ls /mnt/d/many | wc -l); echo "entries listed: $n"
    [ "$n" = $MANY ] || fail "ls listed $n of $MANY"
    d=$(ls /mnt/d/many | sort | uniq -d | wc -l)
    [ "$d" = 0 ] || fail "$d duplicate names in the listing"
}
b_df() {
    df -k /mnt || exit $?
    t=$(df -k /mnt | awk 'NR == 2 {print $2}')
    [ -n "$t" ] && [ "$t" -gt 0 ] || fail "df shows total '$t'"
}
b_excl_create() {
    # noclobber: ">" opens with O_CREAT|O_EXCL (OPEN with EXCLUSIVE4_1 createmode).
    (set -C; : >/mnt/d/x) || fail "exclusive create of a new file"
    if (set -C; : >/mnt/d/x) 2>/dev/null; then fail "exclusive create of an existing file succeeded"; fi
    ls -l /mnt/d/x
    # The server may keep the create verifier in atime/mtime; it must then say
    # so in OPEN's attrset (RFC 8881 18.16.4) so that the client resets them
    # with a SETATTR. Either way the new file must end up with current times.
    now=$(date +%s)
    for t in X Y; do
        v=$(stat -c %$t /mnt/d/x); echo "%$t=$v now=$now"
        [ $((v - now)) -lt 600 ] && [ $((now - v)) -lt 600 ] || bad="$bad %$t=$v"
    done
    rm /mnt/d/x
    [ -z "$bad" ] || fail "new file's times are not current (now=$now):$bad"
}
b_user_1000() {
    # An ordinary user (not squashed) in the mode-1777 export root: files get
    # uid 1000; it may not chmod or read the squashed root's mode-600 file
    # (owned by the anonymous uid); the squashed root may not remove the
    # user's file from the sticky directory.
    su u1000 -s /bin/sh -c 'echo hi >/mnt/u && chmod 640 /mnt/u' || fail "user 1000 creating a file"
    o=$(stat -c '%u:%g %a' /mnt/u); echo "owner/mode of u: $o"
    [ "$o" = "1000:1000 640" ] || fail "owner/mode '$o', want '1000:1000 640'"
    [ "$(su u1000 -s /bin/sh -c 'cat /mnt/u')" = hi ] || fail "user 1000 reading its file"
    if su u1000 -s /bin/sh -c 'chmod 644 /mnt/d/g' 2>/tmp/err; then fail "user 1000 chmod-ed another user's file"; fi
    echo "chmod of another user's file refused: $(cat /tmp/err)"
    if su u1000 -s /bin/sh -c 'cat /mnt/d/g >/dev/null' 2>/tmp/err; then fail "user 1000 read a mode-600 file of another user"; fi
    echo "read of another user's mode-600 file refused: $(cat /tmp/err)"
    if rm -f /mnt/u 2>/tmp/err && [ ! -e /mnt/u ]; then fail "squashed root removed user 1000's file from the sticky root"; fi
    echo "squashed root removing it from the sticky directory refused: $(cat /tmp/err)"
    su u1000 -s /bin/sh -c 'rm /mnt/u' || fail "user 1000 removing its own file"
}
b_flock() { locktest /mnt/d/lockfile || exit $?; rm /mnt/d/lockfile; }
b_rm() { rm -r /mnt/d || exit $?; [ ! -e /mnt/d ] || fail "/mnt/d still there"; ls -la /mnt; }
b_stats() { mountstats_of_mnt; }
b_umount() { umount /mnt || exit $?; ! grep -q ' /mnt ' /proc/mounts || fail "still mounted"; }

# ---------------------------------------------------------------- nconnect
N=4
n_mount() { nfsmount "$SERVER:/" /mnt "$SERVER" "$CLIENT" "nconnect=$N${OPTS:+,$OPTS}"; }
n_info() {
    show_mount
    grep ' /mnt nfs4 ' /proc/mounts | grep -q "nconnect=$N" || fail "nconnect=$N not in /proc/mounts"
}
n_mkdir() { mkdir /mnt/n; }
n_parallel_write() {
    i=1; while [ $i -le $N ]; do
        dd if=/dev/urandom of=/tmp/p$i bs=1M count=4 2>/dev/null; i=$((i + 1))
    done
    t=$(up)
    i=1; while [ $i -le $N ]; do
        (dd if=/tmp/p$i of=/mnt/n/p$i bs=1M conv=fsync 2>/tmp/e$i; echo $? >/tmp/rc$i) &
        i=$((i + 1))
    done
    wait
    echo "wrote $N x 4 MiB in parallel in $(elapsed "$t") s"
    bad=0; i=1; while [ $i -le $N ]; do
        [ "$(cat /tmp/rc$i)" = 0 ] || { echo "writer $i rc=$(cat /tmp/rc$i): $(cat /tmp/e$i)"; bad=1; }
        i=$((i + 1))
    done
    ls -l /mnt/n
    [ $bad = 0 ] || fail "a writer failed"
}
n_parallel_read() {
    echo 3 >/proc/sys/vm/drop_caches
    t=$(up)
    i=1; while [ $i -le $N ]; do (md5sum </mnt/n/p$i >/tmp/m$i) & i=$((i + 1)); done
    wait
    echo "read $N x 4 MiB in parallel in $(elapsed "$t") s"
    bad=0; i=1; while [ $i -le $N ]; do
        [ "$(cat /tmp/m$i)" = "$(md5sum </tmp/p$i)" ] || { echo "file p$i differs"; bad=1; }
        i=$((i + 1))
    done
    [ $bad = 0 ] || fail "content differs"
}
n_xprts() {
    mountstats_of_mnt | grep 'xprt:'
    c=$(mountstats_of_mnt | grep -c 'xprt:')
    echo "transports: $c"
    for f in /sys/kernel/sunrpc/xprt-switches/*/xprt-*/dstaddr; do
        [ -r "$f" ] && echo "$f: $(cat "$f")"
    done
    [ "$c" = $N ] || fail "$c transports, want $N"
}
n_rm() { rm -r /mnt/n; }
n_stats() { mountstats_of_mnt; }
n_umount() { b_umount; }

# ---------------------------------------------------------------- trunk
# Second server address 10.0.2.101 (127.0.0.2 on the host): same server_owner,
# so with max_connect=2 the client adds it to the session (session trunking).
SERVER2=10.0.2.101
t_mount1() { nfsmount "$SERVER:/" /mnt "$SERVER" "$CLIENT" "max_connect=2${OPTS:+,$OPTS}"; }
t_mount2() { mkdir -p /mnt2; nfsmount "$SERVER2:/" /mnt2 "$SERVER2" "$CLIENT" "max_connect=2${OPTS:+,$OPTS}"; }
t_info() {
    grep -E ' /mnt2? ' /proc/mounts
    [ -r /proc/fs/nfsfs/servers ] && cat /proc/fs/nfsfs/servers
    for f in /sys/kernel/sunrpc/xprt-switches/*/xprt-*/dstaddr; do
        [ -r "$f" ] && echo "$f: $(cat "$f")"
    done
    # Trunked: both addresses are transports of one switch.
    for sw in /sys/kernel/sunrpc/xprt-switches/*; do
        a=$(cat "$sw"/xprt-*/dstaddr 2>/dev/null | sort -u | tr '\n' ' ')
        echo "$(basename "$sw"): $a"
        case "$a" in *"$SERVER "*"$SERVER2 "*) echo "session trunked in $(basename "$sw")"; exit 0 ;; esac
    done
    fail "no xprt switch holds both $SERVER and $SERVER2"
}
t_io() {
    dd if=/dev/urandom of=/tmp/tr bs=1M count=2 2>/dev/null
    dd if=/tmp/tr of=/mnt/tr bs=1M conv=fsync 2>/dev/null || exit $?
    echo 3 >/proc/sys/vm/drop_caches
    [ "$(md5sum </mnt2/tr)" = "$(md5sum </tmp/tr)" ] || fail "file written via $SERVER reads differently via $SERVER2"
    rm /mnt2/tr || exit $?
    [ ! -e /mnt/tr ] || { sleep 1; ls -l /mnt/tr; }
}
t_stats() { awk '/^device /{p = ($5 == "/mnt" || $5 == "/mnt2")} p' /proc/self/mountstats | grep -E '^device|opts:|xprt:'; }
t_umount() { umount /mnt2; r2=$?; umount /mnt; r1=$?; [ $r1 = 0 ] && [ $r2 = 0 ]; }


# ---------------------------------------------------------------- shared by 4-8
# mount_nc N [EXTRA]: mount with nconnect=N
mount_nc() { nfsmount "$SERVER:/" /mnt "$SERVER" "$CLIENT" "nconnect=$1${2:+,$2}${OPTS:+,$OPTS}"; }
# warm_up N: N parallel 1 MiB writes, so that every transport carries traffic
warm_up() {
    mkdir -p /mnt/w || exit $?
    dd if=/dev/urandom of=/tmp/w bs=1M count=1 2>/dev/null
    i=1; while [ $i -le "$1" ]; do
        (dd if=/tmp/w of=/mnt/w/w$i bs=1M conv=fsync 2>/dev/null; echo $? >/tmp/wrc$i) &
        i=$((i + 1))
    done
    wait
    i=1; while [ $i -le "$1" ]; do [ "$(cat /tmp/wrc$i)" = 0 ] || fail "writer $i"; i=$((i + 1)); done
    rm -r /mnt/w
}
big_source() { dd if=/dev/urandom of=/tmp/big bs=1M count="$1" 2>/dev/null && ls -l /tmp/big; }
end_clean() { umount /mnt 2>/dev/null; rm -f /tmp/big /tmp/w /tmp/p* /tmp/f /tmp/fifo; true; }

# ---------------------------------------------------------------- reconnect
rc_copy() { mkdir -p /mnt/rc && copy_with "kill_conn fore" /tmp/big /mnt/rc/big; }
rc_md5() { same_md5 /tmp/big /mnt/rc/big; }
rc_rm() { rm -r /mnt/rc; }

# ---------------------------------------------------------------- rebind
bc_io() {
    mkdir -p /mnt/bc || exit $?
    t=$(up)
    dd if=/tmp/big of=/mnt/bc/big bs=1M conv=fsync 2>/dev/null || fail "write after the back channel was dropped"
    echo "wrote $(($(stat -c %s /tmp/big) / 1048576)) MiB in $(elapsed "$t") s"
    same_md5 /tmp/big /mnt/bc/big
    rm -r /mnt/bc
}

# ---------------------------------------------------------------- drain
dr_copy() { mkdir -p /mnt/dr && copy_with "drain_conn fore" /tmp/big /mnt/dr/big; }
dr_md5() { same_md5 /tmp/big /mnt/dr/big; }
dr_rm() { rm -r /mnt/dr; }

# ---------------------------------------------------------------- restart
rs_prepare() {
    mkdir /mnt/r || exit $?
    dd if=/tmp/big of=/mnt/r/f bs=1M conv=fsync 2>/dev/null || exit $?
    echo hello >/mnt/r/g || exit $?
    ls -l /mnt/r
}
rs_restart() {
    cd /mnt/r || exit $?
    exec 3</mnt/r/f 4>>/mnt/r/log || fail "opening f and log"
    echo before >&4 || fail "write before the restart"
    cat g >/dev/null
    hostcall restart || fail "the host could not restart the server"
    # Reads now go to the new server instance with the handles of the old one.
    echo 3 >/proc/sys/vm/drop_caches
    t=$(up)
    a=$(md5sum <&3) || fail "reading the file opened before the restart"
    echo "read through the descriptor opened before the restart in $(elapsed "$t") s"
    [ "$a" = "$(md5sum </tmp/big)" ] || fail "content read through the old descriptor differs"
    echo after >&4 || fail "write through the descriptor opened before the restart"
    exec 4>&- 3<&-
    [ "$(cat /mnt/r/log)" = "$(printf 'before\nafter')" ] || fail "log holds '$(cat /mnt/r/log)'"
    l=$(ls) || fail "listing the current directory (old handle)"
    echo "ls in the old cwd: $(echo $l)"
    [ "$(echo $l)" = "f g log" ] || fail "listing '$l'"
    [ "$(cat g)" = hello ] || fail "reading g by its cached name"
    echo new >n && [ "$(cat n)" = new ] || fail "creating a file after the restart"
    cd /
}
rs_rm() { rm -r /mnt/r; }

# ---------------------------------------------------------------- driver
step() {
    name=$1; shift
    t=$(up)
    timeout -s KILL "$STEP_TIMEOUT" /bin/sh /scenario.sh run "$@" >/tmp/step.out 2>&1
    rc=$?
    sed 's/^/  | /' /tmp/step.out
    if [ $rc = 0 ]; then r=OK; else r=FAIL; fi
    echo "STEP $name $r $rc ($(elapsed "$t") s)"
    return $rc
}
# hstep NAME WHAT...: a step whose work is a host call (the server's side)
hstep() { n=$1; shift; step "$n" hostcall "$@"; }

part_begin() {
    PART=$1 PART_T=$(up)
    echo "PART $1 BEGIN"
    hstep srv_begin begin "$1"
}
part_end() {
    hstep srv_idle check idle
    hstep srv_end end "$PART"
    end_clean
    echo "PART $PART END ($(elapsed "$PART_T") s)"
}

part_basic() {
    part_begin basic
    echo "INFO part basic (opts: ${OPTS:-none})"
    step mount b_mount || { part_end; return; }
    step mount_info b_info
    hstep srv_one_session check session clients=1 total=1 both=1 locals=1 wait=30
    step ls_root b_ls_root
    if step mkdir b_mkdir; then
        step write_64M b_write && step read_back_md5 b_read
        step ls_l b_ls_l
        step mv b_mv
        step hardlink_nlink b_hardlink
        step symlink_readlink b_symlink
        step chmod_600 b_chmod
        step touch_mtime b_touch
        step remount_persist b_remount
        step append_truncate b_append_truncate
        step readdir_$MANY b_many_files
        step df b_df
        step excl_create b_excl_create
        step user_1000 b_user_1000
        step flock_fcntl b_flock && hstep srv_locks check locks
        step rm_r b_rm
    fi
    step mountstats b_stats
    step umount b_umount
    part_end
}

part_nconnect() {
    part_begin nconnect
    echo "INFO part nconnect=$N (opts: ${OPTS:-none})"
    step nc_mount n_mount || { part_end; return; }
    step nc_mount_info n_info
    if step nc_mkdir n_mkdir; then
        step nc_parallel_write n_parallel_write && step nc_parallel_read n_parallel_read
        hstep srv_one_session_4 check session clients=1 total=$N both=1 fore=$((N - 1)) locals=1 wait=30
        step nc_rm n_rm
    fi
    step nc_xprts n_xprts
    step nc_mountstats n_stats
    step nc_umount n_umount
    part_end
}

part_trunk() {
    part_begin trunk
    echo "INFO part trunk: $SERVER and $SERVER2 with max_connect=2 (opts: ${OPTS:-none})"
    step tr_mount1 t_mount1 || { part_end; return; }
    if step tr_mount2 t_mount2; then
        step tr_trunked t_info
        step tr_io_across t_io
        hstep srv_one_session_2_addrs check session clients=1 mintotal=2 locals=2 wait=30
        step tr_mountstats t_stats
    fi
    step tr_umount t_umount
    part_end
}

part_reconnect() {
    part_begin reconnect
    echo "INFO part reconnect: nconnect=4, one connection's forwarder killed during a ${COPY_MB} MiB copy"
    step rc_mount mount_nc 4 || { part_end; return; }
    step rc_warm_up warm_up 4
    hstep srv_4_bound check session clients=1 total=4 both=1 wait=30
    step rc_source big_source $COPY_MB
    step rc_copy_kill rc_copy
    step rc_md5 rc_md5
    hstep srv_dead_unbound check gone killed wait=60
    hstep srv_unbind_disconnect check delta unbinds.disconnect ge 1
    hstep srv_4_bound_again check session clients=1 total=4 both=1 wait=60
    hstep srv_new_bind check delta binds ge 5
    step rc_rm rc_rm
    step rc_umount b_umount
    part_end
}

part_rebind() {
    part_begin rebind
    echo "INFO part rebind: nconnect=4, the server drops the back channel (drains the connection bound both ways)"
    step bc_mount mount_nc 4 || { part_end; return; }
    step bc_warm_up warm_up 4
    hstep srv_4_bound check session clients=1 total=4 both=1 fore=3 wait=30
    step bc_source big_source 16
    hstep srv_drop_back drain_conn both
    step bc_io_continues bc_io
    hstep srv_back_gone check gone drained wait=60
    hstep srv_rebound check session clients=1 total=4 both=1 fore=3 wait=60
    hstep srv_bind_conn_to_session check bcts transports=4
    step bc_umount b_umount
    part_end
}

part_limit() {
    part_begin limit
    echo "INFO part limit: max_connections_per_session=2, nconnect=4"
    hstep srv_set_limit set max_connections_per_session 2
    if step lm_mount mount_nc 4; then
        step lm_mkdir n_mkdir
        step lm_parallel_write n_parallel_write && step lm_parallel_read n_parallel_read
        hstep srv_2_bound check session clients=1 total=2 wait=30
        hstep srv_refusals check delta refusals.limit ge 1
        hstep srv_open_conns check open ge 3
        step lm_rm n_rm
        step lm_xprts n_xprts
        step lm_umount b_umount
    fi
    part_end
}

part_drain() {
    part_begin drain
    echo "INFO part drain: nconnect=4, one connection drained through the control plane during a ${COPY_MB} MiB copy"
    step dr_mount mount_nc 4 || { part_end; return; }
    step dr_warm_up warm_up 4
    hstep srv_4_bound check session clients=1 total=4 both=1 wait=30
    step dr_source big_source $COPY_MB
    step dr_copy_drain dr_copy
    step dr_md5 dr_md5
    hstep srv_drained_unbound check gone drained wait=60
    hstep srv_unbind_drain check delta unbinds.drain eq 1
    hstep srv_4_bound_again check session clients=1 total=4 wait=60
    step dr_rm dr_rm
    step dr_umount b_umount
    part_end
}

part_restart() {
    part_begin restart
    echo "INFO part restart: the server restarts (same state directory) while the client is idle"
    step rs_mount b_mount || { part_end; return; }
    step rs_source big_source 8
    step rs_prepare rs_prepare
    hstep srv_one_session check session clients=1 total=1 both=1 wait=30
    step rs_restart_recover rs_restart
    hstep srv_new_client check newclient wait=60
    step rs_rm rs_rm
    step rs_umount b_umount
    part_end
}

# ---------------------------------------------------------------- v42 (NFSv4.2 ops)
# The file /tmp/s is the model: the same steps done to it with plain writes, so the
# bytes read back over NFS (through READ_PLUS where the kernel uses it) compare by md5.
V=/mnt/v/s
v_vers() {
    grep ' /mnt ' /proc/mounts
    grep ' /mnt ' /proc/mounts | grep -q 'vers=4.2' || fail "not an NFSv4.2 mount"
}
v_mk() { mkdir -p /mnt/v && nfs42 mk /tmp/s && nfs42 mk $V && ls -ls $V; }
v_seek() {
    d0=$(nfs42 seek $V 0 data) && h0=$(nfs42 seek $V 0 hole) &&
        d1=$(nfs42 seek $V "$h0" data) && h1=$(nfs42 seek $V 1048576 hole) &&
        tail=$(nfs42 seek $V 1200000 data) && past=$(nfs42 seek $V 3000000 data) || exit $?
    echo "data@0=$d0 hole@0=$h0 data@$h0=$d1 hole@1M=$h1 data@1200000=$tail data@3000000=$past"
    [ "$d0" = 0 ] || fail "SEEK_DATA from 0: $d0"
    [ "$h0" -ge 8192 ] && [ "$h0" -lt 1048576 ] || fail "SEEK_HOLE from 0: $h0"
    [ "$d1" = 1048576 ] || fail "SEEK_DATA from the hole: $d1"
    [ "$h1" -ge 1052672 ] && [ "$h1" -le 2097152 ] || fail "SEEK_HOLE from 1 MiB: $h1"
    [ "$tail" = ENXIO ] || fail "SEEK_DATA in the trailing hole: $tail (want ENXIO)"
    [ "$past" = ENXIO ] || fail "SEEK_DATA past the end: $past (want ENXIO)"
}
v_same() { # the file over NFS, read cold, is the model
    echo 3 >/proc/sys/vm/drop_caches
    a=$(md5sum </tmp/s) && b=$(md5sum <$V) || exit $?
    echo "model $a nfs $b; $(nfs42 blocks $V)"
    [ "$a" = "$b" ] || fail "md5 differs"
    [ "$(stat -c %s $V)" = "$(stat -c %s /tmp/s)" ] || fail "size $(stat -c %s $V)"
}
v_read_plus_used() { # how many READ_PLUS calls the client made (0 where it uses READ)
    awk '$1 == "READ_PLUS:" {print $2; exit}' /proc/self/mountstats
}
v_falloc() {
    nfs42 falloc $V 2097152 1048576 || exit $?
    truncate -s 3145728 /tmp/s
    [ "$(stat -c %s $V)" = 3145728 ] || fail "size after fallocate: $(stat -c %s $V)"
    nfs42 blocks $V
}
v_punch() {
    before=$(nfs42 blocks $V | awk '{print $4}')
    nfs42 punch $V 0 4096 || exit $?
    dd if=/dev/zero of=/tmp/s bs=4096 count=1 conv=notrunc 2>/dev/null
    after=$(nfs42 blocks $V | awk '{print $4}')
    d=$(nfs42 seek $V 0 data)
    echo "blocks $before -> $after; SEEK_DATA from 0 after the punch: $d"
    [ "$after" -lt "$before" ] || fail "no space freed"
    [ "$d" = 4096 ] || fail "SEEK_DATA after the punch: $d (want 4096)"
}
v_xattr() {
    x=/mnt/v/s
    r1=$(nfs42 xset $x user.color blue create) && r2=$(nfs42 xset $x user.color red create) &&
        r3=$(nfs42 xset $x user.size big replace) && r4=$(nfs42 xset $x user.color green replace) &&
        nfs42 xset $x user.empty "" >/dev/null && g=$(nfs42 xget $x user.color) &&
        l=$(nfs42 xlist $x) && rm1=$(nfs42 xrm $x user.empty) && rm2=$(nfs42 xrm $x user.empty) &&
        after=$(nfs42 xget $x user.empty) || exit $?
    echo "create=$r1 create-again=$r2 replace-missing=$r3 replace=$r4 get=$g list=[$l] rm=$rm1 rm-again=$rm2 get-removed=$after"
    [ "$r1" = ok ] || fail "create: $r1"
    [ "$r2" = EEXIST ] || fail "create over an existing one: $r2"
    [ "$r3" = ENODATA ] || fail "replace of a missing one: $r3"
    [ "$r4" = ok ] && [ "$g" = green ] || fail "replace/get: $r4 $g"
    case " $l " in *" user.color "*) ;; *) fail "user.color not listed: $l" ;; esac
    case " $l " in *" user.empty "*) ;; *) fail "user.empty not listed: $l" ;; esac
    [ "$rm1" = ok ] && [ "$rm2" = ENODATA ] && [ "$after" = ENODATA ] || fail "remove"
}
v_copy_source() { # 64 MiB written, then the client's page cache dropped
    dd if=/dev/urandom of=/tmp/big bs=1M count=64 2>/dev/null &&
        dd if=/tmp/big of=/mnt/v/big bs=1M conv=fsync 2>/dev/null || exit $?
    echo 3 >/proc/sys/vm/drop_caches
}
v_copy() {
    t=$(up)
    r=$(nfs42 copy /mnt/v/big /mnt/v/big.copy) || exit $?
    echo "$r in $(elapsed "$t") s"
    [ "$r" = "copied 67108864" ] || fail "$r"
}
v_client_copy() { # the same copy done by the client (READ and WRITE), for comparison
    t=$(up)
    dd if=/mnt/v/big of=/mnt/v/big.dd bs=1M conv=fsync 2>/dev/null || exit $?
    echo "client-side copy of 64 MiB in $(elapsed "$t") s"
    rm /mnt/v/big.dd
}
v_copy_same() {
    echo 3 >/proc/sys/vm/drop_caches
    a=$(md5sum </tmp/big) && b=$(md5sum </mnt/v/big.copy) || exit $?
    echo "source $a copy $b"
    [ "$a" = "$b" ] || fail "md5 differs"
}
v_clone() { # FICLONE: the export lives on the host's file system (ext4 here: no reflinks)
    r=$(nfs42 clone /mnt/v/big /mnt/v/big.clone) || exit $?
    echo "FICLONE: $r"
    case "$r" in
    ok) [ "$(md5sum </mnt/v/big.clone)" = "$(md5sum </tmp/big)" ] || fail "clone content" ;;
    EOPNOTSUPP) ;;
    *) fail "FICLONE answered $r" ;;
    esac
}
v_rm() { rm -r /mnt/v; }

part_v42() {
    part_begin v42
    echo "INFO part v42: ALLOCATE, DEALLOCATE, SEEK, READ_PLUS, extended attributes (opts: ${OPTS:-none})"
    step v_mount b_mount || { part_end; return; }
    if step v_vers v_vers && step v_mk v_mk; then
        # First, while nothing was read: the copy must not move the data over the wire
        # (no READ at all, and no second 64 WRITEs).
        if step v_copy_source v_copy_source && step v_copy_file_range v_copy; then
            hstep srv_copy check delta ops.COPY ge 1
            hstep srv_copy_no_read check delta ops.READ le 0
            hstep srv_copy_no_rewrite check delta ops.WRITE le 100
            step v_copy_md5 v_copy_same
            step v_client_copy v_client_copy
            step v_ficlone v_clone && hstep srv_clone check delta ops.CLONE ge 1
        fi
        step v_seek v_seek && hstep srv_seek check delta ops.SEEK ge 6
        step v_read_back v_same
        rp=$(v_read_plus_used)
        echo "INFO READ_PLUS calls by the client: ${rp:-none}"
        if [ "${rp:-0}" -gt 0 ]; then
            hstep srv_read_plus check delta ops.READ_PLUS ge 1
        fi
        step v_fallocate v_falloc && hstep srv_allocate check delta ops.ALLOCATE ge 1
        step v_read_back_2 v_same
        step v_punch_hole v_punch && hstep srv_deallocate check delta ops.DEALLOCATE ge 1
        step v_read_back_3 v_same
        step v_xattrs v_xattr && hstep srv_xattr_ops check delta ops.SETXATTR ge 4
        step v_rm v_rm
    fi
    step v_umount b_umount
    part_end
}

# ---------------------------------------------------------------- deleg
# Delegations, turned on for this scenario through the control plane (the harness
# restores the setting at its end). 1,000 `cat` of one file: under a delegation the
# client opens it once or twice, not once per cat (the server's OPEN counter tells).
# Then a second client on the host writes the file: the guest's delegation is recalled
# and returned, and the guest reads what the host wrote. Then the guest holds a file
# open for writing under a write delegation with unwritten data in its cache: the host's
# GETATTR sees the guest's size (the server asks the guest with CB_GETATTR), and the
# host's read recalls the delegation, which makes the guest write its data back first.
d_prepare() { mkdir -p /mnt/dg && echo "delegated data" >/mnt/dg/f; }
d_expect() { # FILE WANT
    got=$(cat "$1") || fail "cat $1"
    [ "$got" = "$2" ] || fail "$1 holds \"$got\", want \"$2\""
    echo "$1 holds \"$got\": as expected"
}
d_hold() {
    # Written, not closed: the data stays in the client's cache under its delegation.
    (exec 3>/mnt/dg/w && printf guest-wrote-this >&3 && exec sleep 120) </dev/null >/dev/null 2>&1 &
    echo $! >/tmp/dg_hold
    sleep 1
    kill -0 "$(cat /tmp/dg_hold)" || fail "the writer is gone"
    echo "writer $(cat /tmp/dg_hold) holds /mnt/dg/w open"
}
d_release() { kill "$(cat /tmp/dg_hold)" 2>/dev/null; sleep 1; echo released; }
d_cats() {
    t=$(up)
    i=0
    while [ $i -lt 1000 ]; do
        cat /mnt/dg/f >/dev/null || exit $?
        i=$((i + 1))
    done
    echo "1000 cat in $(elapsed "$t") s"
}
d_rm() { rm -r /mnt/dg; }

# ---------------------------------------------------------------- exports
# The host serves two exports (/main read-write, /ro read-only) through the control
# plane. The guest mounts the pseudo root: each export is a file system of its own (the
# client mounts it on crossing: `stat -c %d` differs), /ro refuses a write with EROFS,
# /main takes one. The host puts the one export back at "/" at the end.
e_ls() {
    ls /mnt
    [ -d /mnt/main ] && [ -d /mnt/ro ] || fail "the pseudo root does not show main and ro"
}
e_devices() {
    r=$(stat -c %d /mnt) m=$(stat -c %d /mnt/main/.) o=$(stat -c %d /mnt/ro/.)
    echo "st_dev: / $r, /main $m, /ro $o"
    [ "$m" != "$o" ] && [ "$m" != "$r" ] && [ "$o" != "$r" ] || fail "the exports are not separate file systems"
    grep ' nfs4 ' /proc/mounts
}
e_read_ro() { [ "$(cat /mnt/ro/hello)" = "read-only data" ] || fail "/ro/hello: $(cat /mnt/ro/hello)"; echo "/ro/hello read"; }
e_write_ro() {
    if echo x 2>/tmp/ro.err >/mnt/ro/new; then fail "a write to /ro succeeded"; fi
    cat /tmp/ro.err
    grep -q "Read-only file system" /tmp/ro.err || fail "not EROFS: $(cat /tmp/ro.err)"
}
e_write_main() { echo "main data" >/mnt/main/written && [ "$(cat /mnt/main/written)" = "main data" ] || fail "write to /main"; rm /mnt/main/written; echo "/main written and read"; }
e_umount() { umount -R /mnt 2>/dev/null || umount /mnt/main /mnt/ro /mnt 2>/dev/null; ! grep -q ' /mnt' /proc/mounts || { grep ' /mnt' /proc/mounts; fail "still mounted"; }; }

part_exports() {
    part_begin exports
    echo "INFO part exports: two exports under the pseudo root (opts: ${OPTS:-none})"
    if hstep ex_two exports_two; then
        if step ex_mount b_mount; then
            step ex_ls e_ls && step ex_devices e_devices
            step ex_read_ro e_read_ro
            step ex_write_ro e_write_ro
            step ex_write_main e_write_main
            step ex_umount e_umount
        fi
        hstep ex_restore exports_restore
    fi
    part_end
}

part_deleg() {
    part_begin deleg
    echo "INFO part deleg: 1000 cat of one file (opts: ${OPTS:-none})"
    step dg_mount b_mount || { part_end; return; }
    hstep dg_on set delegations true
    if step dg_prepare d_prepare; then
        step dg_cats d_cats && hstep srv_opens check delta ops.OPEN le 10 &&
            hstep srv_granted check delta delegs ge 1
        hstep dg_host_write put /dg/f changed-by-the-host &&
            hstep srv_recalled check delta recalled ge 1 &&
            step dg_sees_host d_expect /mnt/dg/f changed-by-the-host
        if step dg_hold d_hold; then
            hstep dg_host_stat stat /dg/w 16
            hstep dg_host_read get /dg/w guest-wrote-this &&
                hstep srv_write_deleg check delta delegs.write ge 1
            step dg_release d_release
        fi
        step dg_rm d_rm
    fi
    step dg_umount b_umount
    part_end
}

# ---------------------------------------------------------------- tls (RPC-with-TLS)
# The kernel's NFS client with xprtsec=tls (Linux 6.5 and later): on each new connection
# it sends a NULL call with credential AUTH_TLS; the server's reply verifier "STARTTLS"
# says it does RPC-with-TLS (RFC 9289); the kernel then hands the socket to tlshd through
# the "handshake" generic netlink family (net/handshake), tlshd does the TLS 1.3 handshake
# with gnutls, checks the server's certificate against the run's CA (/etc/tlshd/ca.pem,
# which the host appends to the initrd) and the mount's server name (an address here:
# the certificate has it as an IP SAN), and hands the socket back with the session's
# keys in kernel TLS (tls.ko). The RPCs then go inside TLS.
TLS_MB=8
PROBE=10.0.2.102 # tlsprobe: the host's stand-in (tests/kernel/tls_standin.py)
tls_tlshd() {
    [ -x /usr/sbin/tlshd ] || fail "no /usr/sbin/tlshd in the guest image"
    [ -s /etc/tlshd/ca.pem ] || fail "no /etc/tlshd/ca.pem (the harness appends it to the run's initrd)"
    grep -q '^tls ' /proc/modules || fail "the tls module is not loaded"
    echo "tlshd from $(cat /etc/tlshd/package 2>/dev/null)"
    if pidof tlshd >/dev/null; then echo "tlshd already runs: pid $(pidof tlshd)"; return 0; fi
    # tlshd.conf(5) of ktls-utils 1.0.0: the client side's trust store for the
    # server's certificate; no client certificate (xprtsec=tls, not mtls).
    printf '%s\n' '[debug]' 'loglevel=2' 'tls=0' 'nl=0' '' \
        '[authenticate.client]' 'x509.truststore=/etc/tlshd/ca.pem' >/etc/tlshd.conf
    # -s: its messages on stderr too (there is no syslog in the guest).
    setsid /usr/sbin/tlshd -s -c /etc/tlshd.conf </dev/null >>/tmp/tlshd.log 2>&1 &
    sleep 1
    cat /tmp/tlshd.log
    pidof tlshd >/dev/null || fail "tlshd exited"
    ! grep -q 'handshake service is not available' /tmp/tlshd.log || fail "tlshd found no handshake netlink family"
    echo "tlshd runs: pid $(pidof tlshd)"
}
# tls_handshakes: tlshd logged a successful handshake
tls_handshakes() {
    grep -iE 'handshake|x509|cert|error|fail' /tmp/tlshd.log | tail -n 20
    n=$(grep -c 'Handshake with .* was successful' /tmp/tlshd.log)
    [ "$n" -ge 1 ] || fail "tlshd logged no successful handshake"
    echo "tlshd: $n successful handshake(s)"
}
tls_mount() {
    nfsmount "$1:/" /mnt "$1" "$CLIENT" "vers=4.2,xprtsec=tls" && return 0
    rc=$?
    echo "tlshd's last messages:"; tail -n 12 /tmp/tlshd.log
    exit $rc
}
tls_info() {
    show_mount
    grep ' /mnt ' /proc/mounts | grep -q 'xprtsec=tls' || fail "/proc/mounts does not show xprtsec=tls"
    tls_handshakes
}
tls_write() {
    dd if=/dev/urandom of=/tmp/tls bs=1M count=$TLS_MB 2>/dev/null || fail "local urandom copy"
    mkdir -p /mnt/tls || exit $?
    t=$(up)
    dd if=/tmp/tls of=/mnt/tls/f bs=1M conv=fsync 2>/dev/null || exit $?
    echo "wrote $TLS_MB MiB inside TLS in $(elapsed "$t") s"
}
tls_read() {
    same_md5 /tmp/tls /mnt/tls/f
    md5sum </tmp/tls | cut -d' ' -f1 >/tmp/tls.md5
}
tls_rm() { rm -r /mnt/tls; }
# mount_refused OPTIONS WHAT: a mount of "/" with OPTIONS (vers=4.2,...) is refused, or
# mounts but cannot be read (bounded: a mount that hangs counts as a failure). WHAT
# names the mount in messages.
mount_refused() {
    timeout -s KILL 60 nfsmount "$SERVER:/" /mnt "$SERVER" "$CLIENT" "$1"
    rc=$?
    if grep -q ' /mnt ' /proc/mounts; then
        ls /mnt >/dev/null 2>&1 && { umount /mnt; fail "$2 works"; }
        umount /mnt
        echo "mounted, but the export refused to be read: $2"
        return 0
    fi
    [ $rc != 137 ] || fail "$2 did not end within 60 s"
    echo "$2 refused (rc $rc): as expected"
}
# tls_plain_refused: without xprtsec the export that requires TLS is refused.
tls_plain_refused() { mount_refused vers=4.2 "a plain mount of an export that requires TLS"; }

part_tls() {
    part_begin tls
    echo "INFO part tls: vers=4.2,xprtsec=tls through tlshd; server with --tls-cert, export requiring TLS"
    required=1
    if hstep srv_tls_on tls_server on && step tls_tlshd tls_tlshd; then
        # The TLS mount and its I/O go on when the export could not be made to require
        # TLS (that step fails on its own); only the plain mount's refusal needs it.
        hstep srv_tls_export tls_export tls
        required=$?
        step tls_mount tls_mount $SERVER
        mounted=$?
        # The server's count, whether the mount worked or not (tls_handshakes in the
        # RESULT line shows the failed ones too).
        hstep srv_tls_handshakes check delta tls.ok ge 1
        if [ $mounted = 0 ]; then
            step tls_info tls_info
            hstep srv_tls_session check session clients=1 total=1 xprtsec=tls wait=30
            if step tls_write tls_write && step tls_read_md5 tls_read; then
                hstep srv_tls_md5 md5 tls/f "$(cat /tmp/tls.md5)"
            fi
            step tls_rm tls_rm
            step tls_umount b_umount
            [ $required != 0 ] || step tls_plain_refused tls_plain_refused
        fi
    fi
    # Whatever failed above: the export without the requirement, the server without TLS
    # (the restart also serves the command line's export again, over a saved one).
    [ $required != 0 ] || hstep srv_tls_export_default tls_export default
    hstep srv_tls_off tls_server off
    rm -f /tmp/tls /tmp/tls.md5
    part_end
}

# tlsprobe: the guest's side alone. The host's stand-in answers the AUTH_TLS probe,
# completes the TLS handshake and reads the first RPC inside TLS, then drops the
# connection: it speaks no NFS, so the mount cannot succeed and is killed after 60 s.
tp_mount() {
    timeout -s KILL 60 nfsmount "$PROBE:/" /mnt "$PROBE" "$CLIENT" "vers=4.2,xprtsec=tls"
    rc=$?
    ! grep -q ' /mnt ' /proc/mounts || { umount /mnt; fail "a mount of the stand-in succeeded"; }
    echo "the mount attempt ended with rc $rc$([ $rc = 137 ] && echo ' (killed after 60 s)'), as it must against the stand-in"
}

part_tlsprobe() {
    part_begin tlsprobe
    echo "INFO part tlsprobe: xprtsec=tls against the host's TLS stand-in at $PROBE (no NFS behind it)"
    if step tp_tlshd tls_tlshd; then
        step tp_mount_fails tp_mount
        step tp_tlshd_handshake tls_handshakes
        hstep srv_standin_handshake check standin wait=10
    fi
    part_end
}

# tlsproxy: the same through the stand-in relaying, decrypted, to the server (which has
# no TLS then): the guest's whole path with real NFS traffic inside TLS.
part_tlsproxy() {
    part_begin tlsproxy
    echo "INFO part tlsproxy: xprtsec=tls through the host's TLS-terminating stand-in at $PROBE"
    if step tx_tlshd tls_tlshd; then
        if step tx_mount tls_mount $PROBE; then
            step tx_info tls_info
            if step tx_write tls_write && step tx_read_md5 tls_read; then
                hstep srv_tx_md5 md5 tls/f "$(cat /tmp/tls.md5)"
            fi
            step tx_rm tls_rm
            step tx_umount b_umount
        fi
        hstep srv_standin_handshake check standin
    fi
    rm -f /tmp/tls /tmp/tls.md5
    part_end
}

# ---------------------------------------------------------------- krb5
# RPCSEC_GSS with Kerberos: the kernel asks rpc.gssd (through rpc_pipefs) for a context
# with nfs@<server>; gssd gets a ticket from the host's KDC (10.0.2.103:88, TCP) with
# the machine credential (host/ringnfs-guest.ringnfs.test in /etc/krb5.keytab, the files
# the harness appends to the initrd) and hands the context back to the kernel.
KRB5_MB=4
krb5_gssd() {
    [ -x /usr/sbin/rpc.gssd ] || fail "no /usr/sbin/rpc.gssd in the guest image"
    for f in /etc/krb5.conf /etc/krb5.keytab /etc/hosts; do [ -s $f ] || fail "no $f (the harness appends it to the run's initrd)"; done
    # The GSS modules (the harness lists them in /modules.krb5): loaded here, so that the
    # other scenarios run without them.
    while read -r m; do
        [ -n "$m" ] || continue
        grep -q "^$(basename "$m" .ko | tr - _) " /proc/modules || insmod "$m" || echo "insmod $m failed"
    done </modules.krb5
    for m in auth_rpcgss rpcsec_gss_krb5; do grep -q "^$m " /proc/modules || fail "the $m module is not loaded"; done
    echo "rpc.gssd from $(cat /usr/lib/gssd/package 2>/dev/null)"
    if [ -s /tmp/gssd.pid ] && kill -0 "$(cat /tmp/gssd.pid)" 2>/dev/null; then echo "rpc.gssd already runs: pid $(cat /tmp/gssd.pid)"; return 0; fi
    mkdir -p /var/lib/nfs/rpc_pipefs /run /var/tmp
    grep -q ' /var/lib/nfs/rpc_pipefs ' /proc/mounts || mount -t rpc_pipefs rpc_pipefs /var/lib/nfs/rpc_pipefs || fail "cannot mount rpc_pipefs"
    ls /var/lib/nfs/rpc_pipefs
    # -f: foreground (backgrounded here), -vvv -rrr: its and the RPCSEC_GSS messages on
    # stderr (no syslog in the guest).
    # -d: machine credentials go into the first directory, users' caches are looked for
    # in both (user 1000's, made on the host, is in /var/krb5cc).
    setsid /usr/sbin/rpc.gssd -f -vvv -rrr -p /var/lib/nfs/rpc_pipefs -k /etc/krb5.keytab -d /tmp:/var/krb5cc </dev/null >>/tmp/gssd.log 2>&1 &
    echo $! >/tmp/gssd.pid
    sleep 2
    cat /tmp/gssd.log
    kill -0 "$(cat /tmp/gssd.pid)" 2>/dev/null || fail "rpc.gssd exited"
    echo "rpc.gssd runs: pid $(cat /tmp/gssd.pid)"
}
krb5_mount() { # FLAVOR
    nfsmount "$SERVER:/" /mnt "$SERVER" "$CLIENT" "vers=4.2,sec=$1" && return 0
    rc=$?
    echo "rpc.gssd's last messages:"; tail -n 40 /tmp/gssd.log
    exit $rc
}
krb5_info() { # FLAVOR
    show_mount
    grep ' /mnt ' /proc/mounts | grep -q "sec=$1" || fail "/proc/mounts does not show sec=$1"
    grep -iE 'krb5|ticket|context|error|fail' /tmp/gssd.log | tail -n 10
}
krb5_write() { # FLAVOR
    dd if=/dev/urandom of=/tmp/k5 bs=1M count=$KRB5_MB 2>/dev/null || fail "local urandom copy"
    mkdir -p /mnt/k5 || exit $?
    t=$(up)
    dd if=/tmp/k5 of=/mnt/k5/$1 bs=1M conv=fsync 2>/dev/null || exit $?
    echo "wrote $KRB5_MB MiB with sec=$1 in $(elapsed "$t") s"
}
krb5_read() { # FLAVOR
    same_md5 /tmp/k5 /mnt/k5/$1
    md5sum </tmp/k5 | cut -d' ' -f1 >/tmp/k5.md5
}
krb5_rm() { rm -r /mnt/k5 && echo "removed /mnt/k5"; }
# krb5_user FLAVOR: user 1000 (tickets for 1000@RINGNFS.TEST in /var/krb5cc/krb5cc_1000)
# writes a file in the export's root (mode 1777; /mnt/k5 is the machine credential's,
# the anonymous user's) with its own credential; the server maps that principal to uid
# 1000, and the file is 1000's.
krb5_user() {
    ls -ln /var/krb5cc
    su u1000 -s /bin/sh -c "echo user data >/mnt/user-$1" || { tail -n 30 /tmp/gssd.log; fail "user 1000 writing with its Kerberos credential"; }
    o=$(stat -c %u /mnt/user-$1); echo "owner of user-$1 as the client sees it: uid $o"
    [ "$o" = 1000 ] || fail "owner uid $o, want 1000"
    [ "$(su u1000 -s /bin/sh -c "cat /mnt/user-$1")" = "user data" ] || fail "user 1000 reading its file back"
    grep -E "uid=1000|krb5cc_1000" /tmp/gssd.log | tail -n 3
}
krb5_user_rm() { su u1000 -s /bin/sh -c "rm /mnt/user-$1" && echo "user 1000 removed user-$1"; }
krb5_gssd_log() { tail -n 60 /tmp/gssd.log; }
# krb5_sys_refused: a sec=sys mount of the Kerberos-only export is refused.
krb5_sys_refused() { mount_refused vers=4.2,sec=sys "a sec=sys mount of a krb5-only export"; }

part_krb5() {
    part_begin krb5
    echo "INFO part krb5: vers=4.2 with sec=krb5p, krb5i, krb5 through rpc.gssd; server with --krb5-keytab, export requiring Kerberos"
    required=1
    if hstep srv_krb5_on krb5_server on && step krb5_gssd krb5_gssd; then
        hstep srv_krb5_export krb5_export krb5
        required=$?
        for fl in krb5p krb5i krb5; do
            if step krb5_mount_$fl krb5_mount $fl; then
                step krb5_info_$fl krb5_info $fl
                if step krb5_write_$fl krb5_write $fl && step krb5_read_md5_$fl krb5_read $fl; then
                    hstep srv_krb5_md5_$fl md5 k5/$fl "$(cat /tmp/k5.md5)"
                    # root's I/O used the machine credential (host/ringnfs-guest...), which
                    # the server runs as the anonymous user (--anon-uid, 65534 by default).
                    hstep srv_krb5_machine_owner_$fl owner k5/$fl 65534
                fi
                if step krb5_user_$fl krb5_user $fl; then
                    hstep srv_krb5_owner_$fl owner user-$fl 1000
                    step krb5_user_rm_$fl krb5_user_rm $fl
                fi
                hstep srv_krb5_gss_$fl check gss
                step krb5_rm_$fl krb5_rm
                step krb5_umount_$fl b_umount
            else
                step krb5_gssd_log krb5_gssd_log
                break
            fi
        done
        [ $required != 0 ] || step krb5_sys_refused krb5_sys_refused
    fi
    [ $required != 0 ] || hstep srv_krb5_export_default krb5_export default
    hstep srv_krb5_off krb5_server off
    # rpc.gssd stops: scenarios after this one run without it, as before it.
    [ ! -s /tmp/gssd.pid ] || kill "$(cat /tmp/gssd.pid)" 2>/dev/null
    rm -f /tmp/k5 /tmp/k5.md5 /tmp/gssd.pid
    part_end
}

# ---------------------------------------------------------------- failover
# A cluster of two ringnfs nodes over one export directory (the host's cluster_up): the
# guest mounts node 1 through 10.0.2.100, holds a byte-range lock (a locktest process)
# and an open file (a descriptor kept by a shell), and half-way through a copy the host
# crashes node 1 and, once node 2 has begun the cluster-wide grace period, moves
# 10.0.2.100 to node 2. The client reclaims its opens and its lock there; the copy ends
# with the right bytes, the lock is still held, the open file still reads.
FO_DIR=/mnt/fo
fo_mount() { nfsmount "$SERVER:/" /mnt "$SERVER" "$CLIENT" "vers=4.2${OPTS:+,$OPTS}"; }
fo_prepare() {
    mkdir -p $FO_DIR || exit $?
    dd if=/dev/urandom of=/tmp/keep bs=1M count=1 2>/dev/null && dd if=/tmp/keep of=$FO_DIR/keep bs=1M conv=fsync 2>/dev/null || exit $?
    big_source $COPY_MB
}
# fo_lock: a process takes a write lock on [0,10) of fo/lockfile and holds it until told.
fo_lock() {
    locktest hold $FO_DIR/lockfile </dev/null >/tmp/fo_lock.out 2>&1 &
    echo $! >/tmp/fo_locker
    i=0
    while [ $i -lt 300 ] && ! grep -q HOLDING /tmp/fo_lock.out; do sleep 0.1; i=$((i + 1)); done
    cat /tmp/fo_lock.out
    grep -q HOLDING /tmp/fo_lock.out || fail "the holder did not get its lock"
    echo "pid $(cat /tmp/fo_locker) holds the lock"
}
# fo_keep: a shell keeps fo/keep open on its descriptor 3; on SIGUSR1 it reads the file
# through that descriptor (md5 into /tmp/fo_keep.md5) and exits.
fo_keep() {
    rm -f /tmp/fo_keep.md5 /tmp/fo_keep.ready
    (
        exec 3<$FO_DIR/keep || exit 1
        trap 'md5sum <&3 | cut -d" " -f1 >/tmp/fo_keep.md5.tmp; mv /tmp/fo_keep.md5.tmp /tmp/fo_keep.md5; exit 0' USR1
        echo ready >/tmp/fo_keep.ready
        while :; do sleep 1; done
    ) </dev/null >/dev/null 2>&1 &
    echo $! >/tmp/fo_keeper
    i=0
    while [ $i -lt 100 ] && [ ! -e /tmp/fo_keep.ready ]; do sleep 0.1; i=$((i + 1)); done
    [ -e /tmp/fo_keep.ready ] || fail "the shell could not open $FO_DIR/keep"
    echo "pid $(cat /tmp/fo_keeper) keeps $FO_DIR/keep open on its descriptor 3"
}
fo_copy() { copy_with failover /tmp/big $FO_DIR/big; }
fo_md5() {
    same_md5 /tmp/big $FO_DIR/big
    md5sum </tmp/big | cut -d' ' -f1 >/tmp/fo.md5
}
fo_lock_held() {
    kill -0 "$(cat /tmp/fo_locker)" 2>/dev/null || { cat /tmp/fo_lock.out; fail "the holder is gone"; }
    locktest trylock $FO_DIR/lockfile busy
}
fo_lock_release() {
    kill -TERM "$(cat /tmp/fo_locker)" || fail "no holder to tell"
    i=0
    while [ $i -lt 300 ] && ! grep -q RELEASED /tmp/fo_lock.out; do sleep 0.1; i=$((i + 1)); done
    cat /tmp/fo_lock.out
    grep -q RELEASED /tmp/fo_lock.out || fail "the holder did not release its lock"
}
fo_lock_free() { locktest trylock $FO_DIR/lockfile free; }
fo_read_kept() {
    echo 3 >/proc/sys/vm/drop_caches
    kill -USR1 "$(cat /tmp/fo_keeper)" || fail "the shell keeping the file open is gone"
    i=0
    while [ $i -lt 600 ] && [ ! -e /tmp/fo_keep.md5 ]; do sleep 0.1; i=$((i + 1)); done
    [ -e /tmp/fo_keep.md5 ] || fail "no read through the kept descriptor within 60 s"
    a=$(md5sum </tmp/keep | cut -d' ' -f1)
    echo "read through the descriptor opened before the failover: md5 $(cat /tmp/fo_keep.md5), written $a"
    [ "$(cat /tmp/fo_keep.md5)" = "$a" ] || fail "the kept descriptor reads different bytes"
}
fo_cleanup() {
    for p in /tmp/fo_locker /tmp/fo_keeper; do
        [ -s $p ] && kill "$(cat $p)" 2>/dev/null
    done
    sleep 1
    rm -r $FO_DIR || exit $?
    rm -f /tmp/keep /tmp/fo_* /tmp/fo.md5
    echo "removed $FO_DIR"
}

part_failover() {
    part_begin failover
    echo "INFO part failover: a cluster of two nodes; node 1 crashes during a ${COPY_MB} MiB copy, 10.0.2.100 moves to node 2 once it is in grace (opts: ${OPTS:-none})"
    if hstep srv_cluster_up cluster_up; then
        if step fo_mount fo_mount; then
            if step fo_prepare fo_prepare && step fo_lock fo_lock && step fo_keep fo_keep; then
                hstep srv_locked check locks
                if step fo_copy_failover fo_copy; then
                    step fo_md5 fo_md5 && hstep srv_fo_md5 md5 fo/big "$(cat /tmp/fo.md5)"
                    step fo_lock_still_held fo_lock_held
                    step fo_lock_release fo_lock_release && step fo_lock_taken fo_lock_free
                    step fo_read_kept fo_read_kept
                    hstep srv_reclaims check reclaims
                    hstep srv_grace_ended check grace wait=120
                    hstep srv_failover_timings failover_report
                fi
            fi
            step fo_cleanup fo_cleanup
            step fo_umount b_umount
            hstep srv_node_idle check idle wait=30
        fi
    fi
    hstep srv_cluster_down cluster_down
    part_end
}

case "$1" in
run)
    shift
    "$@"
    ;;
main)
    export OPTS="$3"
    OPTS=$(echo "$OPTS" | tr ';' ',')
    list=$(echo "${2:-all}" | tr ',' ' ')
    [ "$list" = all ] && list="basic nconnect trunk reconnect rebind limit drain restart v42 deleg exports tls krb5 failover"
    for sc in $list; do
        case "$sc" in
        basic | nconnect | trunk | reconnect | rebind | limit | drain | restart | v42 | deleg | exports | tls | tlsprobe | tlsproxy | krb5 | failover) part_$sc ;;
        none) ;;
        *) echo "INFO unknown scenario $sc" ;;
        esac
    done
    echo "INFO kernel messages about nfs/rpc:"
    dmesg | grep -iE 'nfs|rpc|sunrpc|lockd' | sed 's/^/  dmesg| /'
    echo "SCENARIO DONE"
    ;;
esac
