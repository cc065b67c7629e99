#!/usr/bin/env bash
# The generated pkg-config files work for a consumer.
#
#   check_pc.sh consumer BUILDDIR CC CONSUMER.c
#       Both files of BUILDDIR (meson-private/libenrich.pc, for installs, and
#       meson-uninstalled/libenrich-uninstalled.pc) pass `pkg-config
#       --validate`; CONSUMER.c compiles, links and runs with the flags of
#       the uninstalled one, plain and --static.
#   check_pc.sh fallback SRCDIR MESON CC CONSUMER.c
#       Configures SRCDIR afresh where pkg-config cannot see lmdb.pc, so
#       meson finds LMDB with cc.find_library(): the .pc must then say
#       -llmdb in Libs.private, not lmdb in Requires.private (which would
#       make every pkg-config query fail), validate, and build the consumer.
set -euo pipefail
pkgconf=${PKG_CONFIG:-pkg-config}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "check_pc: $*" >&2
    exit 1
}

# validate DIR NAME: pkg-config --validate on DIR/NAME.pc
validate() {
    PKG_CONFIG_PATH=$1 "$pkgconf" --validate "$2" || fail "$1/$2.pc does not validate"
    echo "ok: $2.pc validates"
}

# consumer PCDIR CC SRC LIBDIR: build and run SRC with the flags of
# libenrich-uninstalled.pc in PCDIR, plain and --static.
consumer() {
    local pcdir=$1 cc=$2 src=$3 libdir=$4 mode flags
    for mode in "" --static; do
        flags=$(PKG_CONFIG_PATH=$pcdir "$pkgconf" $mode --cflags --libs libenrich-uninstalled) ||
            fail "pkg-config $mode --cflags --libs libenrich-uninstalled failed in $pcdir"
        # shellcheck disable=SC2086  # the compiler command and the flags are words
        $cc -std=c11 -Wall -Werror -o "$tmp/consumer" "$src" $flags ||
            fail "the consumer does not build with: $flags"
        rm -f "$tmp/store.mdb"
        LD_LIBRARY_PATH=$libdir "$tmp/consumer" "$tmp/store.mdb" ||
            fail "the consumer built with '$flags' does not run"
        echo "ok: consumer built and ran with pkg-config ${mode:+$mode }--cflags --libs: $flags"
    done
}

mode=${1:-}
case $mode in
consumer)
    (($# == 4)) || fail "usage: $0 consumer BUILDDIR CC CONSUMER.c"
    build=$2 cc=$3 src=$4
    validate "$build/meson-private" libenrich
    validate "$build/meson-uninstalled" libenrich-uninstalled
    consumer "$build/meson-uninstalled" "$cc" "$src" "$build/lib"
    ;;
fallback)
    (($# == 5)) || fail "usage: $0 fallback SRCDIR MESON CC CONSUMER.c"
    srcdir=$2 meson=$3 cc=$4 src=$5
    if [[ -n ${ENRICH_UNDER_VALGRIND:-} ]]; then
        echo "check_pc: a configure and build of its own, nothing for valgrind to see: skipped"
        exit 77
    fi
    # Every .pc of the system's search path but lmdb.pc.
    mkdir "$tmp/pc"
    IFS=: read -r -a dirs <<<"$("$pkgconf" --variable pc_path pkg-config)"
    for d in "${dirs[@]}"; do
        [[ -d $d ]] || continue
        for f in "$d"/*.pc; do
            [[ -e $f ]] || continue
            n=$(basename "$f")
            [[ $n == lmdb.pc || -e $tmp/pc/$n ]] || ln -s "$f" "$tmp/pc/$n"
        done
    done
    export PKG_CONFIG_LIBDIR=$tmp/pc
    if "$pkgconf" --exists lmdb; then
        fail "lmdb.pc still visible through $PKG_CONFIG_LIBDIR"
    fi
    "$meson" setup "$tmp/build" "$srcdir" -Dtests=disabled -Dpython=disabled -Dgo=disabled \
        -Dbench=disabled >"$tmp/setup.log" 2>&1 || { cat "$tmp/setup.log"; fail "meson setup failed"; }
    grep -q '^Library lmdb found: YES' "$tmp/setup.log" ||
        { cat "$tmp/setup.log"; fail "meson did not fall back to cc.find_library('lmdb')"; }
    for pc in "$tmp/build/meson-private/libenrich.pc" "$tmp/build/meson-uninstalled/libenrich-uninstalled.pc"; do
        requires=$(sed -n 's/^Requires.private://p' "$pc")
        libs=$(sed -n 's/^Libs.private://p' "$pc")
        [[ " ${requires//,/ } " != *" lmdb "* ]] ||
            fail "$(basename "$pc") requires lmdb, which pkg-config cannot find: Requires.private:$requires"
        [[ " $libs " == *" -llmdb "* ]] ||
            fail "$(basename "$pc") lacks -llmdb in Libs.private (Libs.private:$libs)"
        echo "ok: $(basename "$pc"): Requires.private:$requires, Libs.private:$libs"
    done
    validate "$tmp/build/meson-private" libenrich
    validate "$tmp/build/meson-uninstalled" libenrich-uninstalled
    "$meson" compile -C "$tmp/build" lib/enrich:shared_library >"$tmp/compile.log" 2>&1 ||
        { tail -40 "$tmp/compile.log"; fail "the library does not build"; }
    consumer "$tmp/build/meson-uninstalled" "$cc" "$src" "$tmp/build/lib"
    ;;
*)
    fail "usage: $0 consumer|fallback ..."
    ;;
esac
