#!/bin/sh
# An install into a temporary root, used from a fresh environment:
#
#   check_install.sh MESON BUILDDIR
#
# `meson install --destdir` puts the build's install set under a new
# directory; the installed enrich must then run with no LD_LIBRARY_PATH
# (its rpath is relative to itself, $ORIGIN/../<libdir>), load the
# installed libenrich rather than the build tree's, do a real demo, and the
# manual page must be installed next to it.
set -eu
meson=$1
build=$2
root=$(mktemp -d "${TMPDIR:-/tmp}/enrich-install.XXXXXX")
trap 'rm -rf "$root"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$meson" install -C "$build" --no-rebuild --destdir "$root/dest" --quiet >"$root/install.log" 2>&1 ||
    { cat "$root/install.log" >&2; fail "meson install"; }

bin=$(find "$root/dest" -path '*/bin/enrich' -type f)
[ -n "$bin" ] && [ -x "$bin" ] || fail "no bin/enrich under the install root"
prefix=${bin%/bin/enrich}
lib=$(find "$prefix" -name 'libenrich.so.*' -type f | head -n 1)
[ -n "$lib" ] || fail "no libenrich.so.* under $prefix"

# The run path is the relative one, and no build directory is left in it.
runpath=$(readelf -d "$bin" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p;s/.*(RPATH).*\[\(.*\)\]/\1/p')
case $runpath in
'$ORIGIN/../'*) ;;
*) fail "run path of the installed enrich is '$runpath', want \$ORIGIN/../<libdir>" ;;
esac
case $runpath in
*"$build"*) fail "run path names the build directory: $runpath" ;;
esac
[ "$(cd "$(dirname "$bin")/${runpath#\$ORIGIN/}" && pwd -P)" = "$(cd "$(dirname "$lib")" && pwd -P)" ] ||
    fail "run path $runpath does not lead to $(dirname "$lib")"

# A fresh environment: no LD_LIBRARY_PATH, no PATH entry for the build.
clean() { env -i HOME="$root" PATH=/usr/bin:/bin LC_ALL=C "$@"; }
out=$(clean "$bin" --version) || fail "installed enrich --version: $out"
echo "$out" | grep -q '^enrich [0-9]' || fail "unexpected --version output: $out"
# ldd follows the same search: the library found is the installed one.
clean ldd "$bin" | grep 'libenrich\.so' | grep -q "$prefix/" ||
    fail "installed enrich does not load the installed library: $(clean ldd "$bin" | grep libenrich)"

# A real run, from a directory of its own.
mkdir "$root/work"
(cd "$root/work" && clean "$bin" demo >"$root/demo.out" 2>"$root/demo.err") ||
    { cat "$root/demo.err" >&2; fail "installed enrich demo"; }
grep -q '"enrichmentStatus":"success"' "$root/demo.out" || fail "demo output lacks a success record"
# Its closing hint names the installed binary (not on PATH) and works.
hint=$(sed -n 's/^  \(.* get --store .*\)$/\1/p' "$root/demo.err")
case $hint in
"$bin get "*) ;;
*) fail "demo hint '$hint' does not name $bin" ;;
esac
(cd "$root/work" && clean sh -c "$hint") | grep -q '"productId":"PROD-001"' ||
    fail "the demo's hint '$hint' does not print the item"

# The manual page, as built.
man=$(find "$prefix" -path '*/man1/enrich.1' -type f)
[ -n "$man" ] || fail "no man1/enrich.1 under $prefix"
cmp -s "$man" "$build/tools/enrich.1" || fail "installed enrich.1 differs from the built one"
echo "ok: installed under $prefix, runs from a clean environment with run path $runpath"
