#!/usr/bin/env bash
# The packaging test: build the .deb, unpack it into a temporary root, check
# its conffile, man pages and configuration, build one program against it
# with pkg-config only and one with find_package only, and run both (and the
# installed nucleusctl) against the installed nucleusd.
#   tests/packaging/package_test.sh [PKG_BUILD_DIR]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
pkg_build=${1:-$src/build-pkg}
work=$(mktemp -d)
daemon=""
cleanup() {
  [ -n "$daemon" ] && kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
step() { echo "::: $*"; }

step "build the .deb"
deb=$("$src/scripts/package" "$pkg_build" | tail -1)
echo "$deb"
root=$work/root
dpkg-deb -x "$deb" "$root"
dpkg-deb -e "$deb" "$work/control"

step "conffile"
grep -qx /etc/nucleus/nucleus.json "$work/control/conffiles"
for f in /usr/bin/nucleusd /usr/bin/nucleusctl /usr/bin/nucleus-supervisor /usr/bin/nucleus-batch \
         /usr/bin/nucleus-console /lib/systemd/system/nucleusd.service \
         /lib/systemd/system/nucleusd.socket /usr/include/nucleus/nucleus.h \
         /usr/include/nucleus/nucleus.hpp /usr/share/nucleus/nucleus.schema.json; do
  [ -e "$root$f" ] || { echo "missing in the package: $f"; exit 1; }
done
grep -q '^Type=notify' "$root/lib/systemd/system/nucleusd.service"
grep -q '^Delegate=yes' "$root/lib/systemd/system/nucleusd.service"
grep -q '^ExecStart=/usr/bin/nucleusd ' "$root/lib/systemd/system/nucleusd.service"
grep -q '^ListenSequentialPacket=/run/nucleus/nucleus.sock' "$root/lib/systemd/system/nucleusd.socket"

step "man pages"
for page in man8/nucleusd.8 man1/nucleusctl.1 man5/nucleus.json.5 man3/libnucleus.3; do
  MANWIDTH=80 man -l "$root/usr/share/man/$page.gz" 2>/dev/null | grep -q '^NAME' \
    || { echo "man cannot show $page"; exit 1; }
done

libdir=$(dirname "$(find "$root/usr/lib" -name nucleus.pc)")
export LD_LIBRARY_PATH=$(dirname "$libdir")

step "the installed configuration is valid"
"$root/usr/bin/nucleusd" --check-config "$root/etc/nucleus/nucleus.json"

step "a C program built with pkg-config only"
export PKG_CONFIG_PATH=$libdir PKG_CONFIG_SYSROOT_DIR=$root
cflags=$(pkg-config --cflags nucleus)
libs=$(pkg-config --libs nucleus)
echo "pkg-config: $cflags $libs"
cc -std=c11 -o "$work/hello-pc" "$src/tests/packaging/hello.c" $cflags $libs
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR

step "a C++ program built with find_package(nucleus) only"
cmake -S "$src/tests/packaging/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$root/usr" >/dev/null
cmake --build "$work/consumer" >/dev/null

step "both against the installed nucleusd"
mkdir -p "$work/rt"
"$root/usr/bin/nucleusd" --config "$root/etc/nucleus/nucleus.json" --runtime-dir "$work/rt" \
  </dev/null 2>"$work/nucleusd.log" &
daemon=$!
export NUCLEUS_SOCKET=$work/rt/nucleus.sock
# Wait for it to serve, with a deadline (nucleusctl fails until it does).
for _ in $(seq 200); do
  "$root/usr/bin/nucleusctl" status >/dev/null 2>&1 && break
  kill -0 "$daemon" || { cat "$work/nucleusd.log"; exit 1; }
  sleep 0.05
done
"$root/usr/bin/nucleusctl" status
"$work/hello-pc"
"$work/consumer/hello-cmake"
"$root/usr/bin/nucleusctl" devices
echo "packaging test: passed"
