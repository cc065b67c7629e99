#!/usr/bin/env bash
# Symbol-leak test (CONVENTIONS 11 and 13, libinput style).
#
# usage: check_symbols.sh LIBRARY.so [HEADER.h...]
#
# Fails when the shared library defines a dynamic symbol that is not
# enrich_* (cJSON, LMDB, zlib or internal helpers must never leak), when an
# enrich_* symbol is not bound to an ENRICH_x.y version node (version script
# dropped), or, given the public headers, when an ENRICH_API function of
# one of them is not exported (missing ENRICH_API) or an exported function
# is declared in none of them.
# The version node itself (an absolute symbol such as ENRICH_0.1) is fine.
set -euo pipefail

if (($# < 1)); then
    echo "usage: $0 LIBRARY.so [HEADER.h...]" >&2
    exit 2
fi
lib=$1
shift
headers=("$@")
nm_bin=${NM:-nm}

if [[ ! -f $lib ]]; then
    echo "check_symbols: $lib: no such file" >&2
    exit 1
fi
if ! syms=$("$nm_bin" -D --defined-only "$lib"); then
    echo "check_symbols: $nm_bin failed on $lib" >&2
    exit 1
fi

status=0
declare -A exported=()
while read -r -a field; do
    ((${#field[@]} >= 2)) || continue
    type=${field[-2]}
    name=${field[-1]}
    base=${name%%@*}
    if [[ $type == A && $base =~ ^ENRICH_[0-9]+(\.[0-9]+)*$ ]]; then
        continue
    fi
    if [[ $base != enrich_* ]]; then
        echo "leaked symbol: $name (type $type)"
        status=1
        continue
    fi
    if [[ $name != *@@ENRICH_* ]]; then
        echo "symbol without the ENRICH_ version node: $name (type $type)"
        status=1
    fi
    exported[$base]=1
done <<<"$syms"

if ((${#exported[@]} == 0)); then
    echo "check_symbols: $lib exports no enrich_* symbol"
    exit 1
fi

if ((${#headers[@]} > 0)); then
    declare -A declared=()
    for header in "${headers[@]}"; do
        if [[ ! -f $header ]]; then
            echo "check_symbols: $header: no such file"
            exit 1
        fi
        n=0
        while read -r fn; do
            declared[$fn]=1
            n=$((n + 1))
        done < <(grep -E '^ENRICH_API[[:space:]]' "$header" |
            grep -oE 'enrich_[a-z0-9_]+[[:space:]]*\(' | tr -d ' (')
        if ((n == 0)); then
            echo "check_symbols: no ENRICH_API declaration found in $header"
            exit 1
        fi
    done
    for fn in "${!declared[@]}"; do
        if [[ -z ${exported[$fn]:-} ]]; then
            echo "declared ENRICH_API but not exported: $fn"
            status=1
        fi
    done
    for fn in "${!exported[@]}"; do
        if [[ -z ${declared[$fn]:-} ]]; then
            echo "exported but declared in no public header: $fn"
            status=1
        fi
    done
fi

if ((status == 0)); then
    echo "check_symbols: ${#exported[@]} enrich_* symbols, no leaks"
fi
exit "$status"
