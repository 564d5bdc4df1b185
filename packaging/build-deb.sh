#!/usr/bin/env bash
# Build the Debian package of ringnfs from built binaries, with dpkg-deb:
#   packaging/build-deb.sh [--bin DIR] [--out DIR]
# DIR holds ringnfs and ringnfs-bench (default target/release: `cargo build --release`
# first); the .deb goes to --out (default target/debian) and its path is printed.
# Installs: /usr/bin/ringnfs, /usr/bin/ringnfs-bench, the systemd unit, the default config
# /etc/ringnfs/ringnfs.toml (a conffile), man pages (generated from the command lines),
# bash/zsh/fish completions, and the copyright file. The postinst creates the export
# directory /srv/ringnfs; the service is enabled but not started (edit the config
# first, then `systemctl start ringnfs`).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=$repo/target/release
out=$repo/target/debian
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-deb.sh: unknown argument $1 (--bin DIR, --out DIR)" >&2; exit 2 ;;
    esac
done
for b in ringnfs ringnfs-bench; do
    [ -x "$bin/$b" ] || { echo "build-deb.sh: no $bin/$b (cargo build --release first)" >&2; exit 2; }
done
command -v dpkg-deb >/dev/null || { echo "build-deb.sh: dpkg-deb is missing (apt-get install dpkg)" >&2; exit 2; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/Cargo.toml" | head -1)
[ -n "$version" ] || { echo "build-deb.sh: no version in Cargo.toml" >&2; exit 2; }
arch=$(dpkg --print-architecture)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

install -Dm755 "$bin/ringnfs" "$root/usr/bin/ringnfs"
install -Dm755 "$bin/ringnfs-bench" "$root/usr/bin/ringnfs-bench"
install -Dm644 "$repo/packaging/ringnfs.service" "$root/lib/systemd/system/ringnfs.service"
install -Dm644 "$repo/packaging/ringnfs.toml" "$root/etc/ringnfs/ringnfs.toml"
man=$root/usr/share/man/man1
"$bin/ringnfs" manpages "$man"
"$bin/ringnfs-bench" manpages "$man"
gzip -9n "$man"/*.1
install -d "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
    "$root/usr/share/fish/vendor_completions.d"
"$bin/ringnfs" completions bash >"$root/usr/share/bash-completion/completions/ringnfs"
"$bin/ringnfs" completions zsh >"$root/usr/share/zsh/vendor-completions/_ringnfs"
"$bin/ringnfs" completions fish >"$root/usr/share/fish/vendor_completions.d/ringnfs.fish"
install -Dm644 "$repo/packaging/copyright" "$root/usr/share/doc/ringnfs/copyright"

install -d "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<CONTROL
Package: ringnfs
Version: $version
Architecture: $arch
Maintainer: ringnfs developers <ringnfs@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: libc6 (>= 2.36)
Section: net
Priority: optional
Description: NFSv4.1/4.2 server on io_uring with session trunking
 ringnfs serves a directory over NFSv4.1 and 4.2 with a thread-per-core io_uring
 transport, RFC 8881 session trunking, delegations, a control plane (Prometheus
 metrics, REST API, ringnfs ctl) and a load generator (ringnfs bench).
CONTROL
echo /etc/ringnfs/ringnfs.toml >"$root/DEBIAN/conffiles"
install -m755 "$repo/packaging/postinst" "$root/DEBIAN/postinst"
install -m755 "$repo/packaging/prerm" "$root/DEBIAN/prerm"
install -m755 "$repo/packaging/postrm" "$root/DEBIAN/postrm"

mkdir -p "$out"
deb=$out/ringnfs_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
