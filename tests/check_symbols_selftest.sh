#!/usr/bin/env bash
# check_symbols.sh catches each kind of disagreement between the library,
# the version script and the public headers: it is run on altered copies of
# the real map and headers (against the real library) and must fail with a
# message naming the symbol, or pass where the change is sound (a header
# split in two).
#
# usage: check_symbols_selftest.sh CHECK_SYMBOLS LIBRARY.so VERSION_SCRIPT HEADER_DIR PROJECT_VERSION
set -euo pipefail

if (($# != 5)); then
    echo "usage: $0 CHECK_SYMBOLS LIBRARY.so VERSION_SCRIPT HEADER_DIR PROJECT_VERSION" >&2
    exit 2
fi
check=$1 lib=$2 map=$3 hdir=$4 version=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
n=0

# fresh: a copy of the real inputs in $tmp/case/ to alter
fresh() {
    rm -rf "$tmp/case"
    mkdir -p "$tmp/case/include"
    cp "$map" "$tmp/case/enrich.map"
    cp "$hdir"/*.h "$tmp/case/include/"
}
# expect pass|fail [TEXT]: run the checker on the altered copy
expect() {
    local want=$1 text=${2:-} out rc=0
    n=$((n + 1))
    out=$(bash "$check" "$lib" "$tmp/case/enrich.map" "$tmp/case/include" "${ver:-$version}" 2>&1) || rc=$?
    if [[ $want == pass && $rc -ne 0 ]]; then
        echo "case $n ($label): expected to pass, failed with:"; echo "$out"; failed=1
    elif [[ $want == fail && $rc -eq 0 ]]; then
        echo "case $n ($label): expected to fail, passed:"; echo "$out"; failed=1
    elif [[ -n $text && $out != *"$text"* ]]; then
        echo "case $n ($label): expected the message '$text', got:"; echo "$out"; failed=1
    else
        echo "ok $n: $label"
    fi
}

# A function the library exports, for the alterations below.
victim=$(grep -m1 -oE '^    enrich_[a-z0-9_]+;' "$map" | tr -d ' ;')
[[ -n $victim ]] || { echo "selftest: no listed symbol in $map"; exit 1; }
ver=

label="the real inputs"
fresh
expect pass

label="a header split in two (a new public header is picked up)"
fresh
grep -E "^ENRICH_API .*\\b$victim\\(" "$tmp/case/include/enrich.h" >"$tmp/case/include/zsplit.h"
grep -vE "^ENRICH_API .*\\b$victim\\(" "$tmp/case/include/enrich.h" >"$tmp/case/include/enrich.h.new"
mv "$tmp/case/include/enrich.h.new" "$tmp/case/include/enrich.h"
[[ -s $tmp/case/include/zsplit.h ]] || { echo "selftest: no one-line declaration of $victim"; exit 1; }
expect pass

label="a new declaration, over two lines, in a new header, not in the map"
fresh
printf '/* new */\nENRICH_API int\nenrich_brand_new(const char *a,\n                 int b);\n' >"$tmp/case/include/extra.h"
expect fail "enrich_brand_new is declared ENRICH_API in extra.h but not listed in enrich.map"

label="a declaration removed from the header, the map and library unchanged"
fresh
grep -vE "\\b$victim\\(" "$hdir/enrich.h" >"$tmp/case/include/enrich.h"
expect fail "$victim is listed in enrich.map (ENRICH_0.1) but no public header declares it"

label="a name dropped from the map"
fresh
grep -vE "^    $victim;" "$map" >"$tmp/case/enrich.map"
expect fail "$victim is declared ENRICH_API in enrich.h but not listed in enrich.map"

label="the wildcard of old"
fresh
printf 'ENRICH_0.1 {\n  global: enrich_*;\n  local: *;\n};\n' >"$tmp/case/enrich.map"
expect fail "wildcard 'enrich_*' in ENRICH_0.1"

label="a name listed under the wrong node"
fresh
{ grep -vE "^    $victim;" "$map"; printf 'ENRICH_0.2 {\n  global:\n    %s;\n} ENRICH_0.1;\n' "$victim"; } >"$tmp/case/enrich.map"
ver=0.2.0
expect fail "$victim is exported at version ENRICH_0.1 but enrich.map lists it under ENRICH_0.2"
ver=

label="a node newer than the project version"
fresh
printf 'ENRICH_0.9 {\n  global:\n    enrich_brand_new;\n} ENRICH_0.1;\n' >>"$tmp/case/enrich.map"
printf 'ENRICH_API int enrich_brand_new(void);\n' >"$tmp/case/include/extra.h"
expect fail "node ENRICH_0.9 is newer than the project version $version"

label="a node that does not inherit the one before"
fresh
printf 'ENRICH_0.0 {\n  global:\n    enrich_brand_new;\n};\n' >>"$tmp/case/enrich.map"
printf 'ENRICH_API int enrich_brand_new(void);\n' >"$tmp/case/include/extra.h"
last_node=$(grep -oE '^ENRICH_[0-9]+\.[0-9]+' "$map" | tail -n 1)
expect fail "ENRICH_0.0 must inherit $last_node"

label="a name listed twice"
fresh
sed -E "s/^(    $victim;)\$/\1\n\1/" "$map" >"$tmp/case/enrich.map"
expect fail "$victim is listed twice"

label="the same function declared in two headers"
fresh
grep -E "^ENRICH_API .*\\b$victim\\(" "$hdir/enrich.h" >"$tmp/case/include/extra.h"
expect fail "$victim is declared ENRICH_API twice"

label="a missing 'local: *'"
fresh
grep -vE '^  local:|^    \*;' "$map" >"$tmp/case/enrich.map"
expect fail "no 'local: *;'"

if ((failed)); then
    echo "check_symbols_selftest: a case went wrong"
    exit 1
fi
echo "check_symbols_selftest: $n cases"
