#!/usr/bin/env bash
# The exported API is exactly what the public headers declare and the
# version script lists (docs/abi.md).
#
# usage: check_symbols.sh LIBRARY.so VERSION_SCRIPT HEADER_DIR [PROJECT_VERSION]
#
# Three lists must be the same set of functions:
#   - the dynamic symbols LIBRARY.so defines (nm -D),
#   - the functions declared ENRICH_API in HEADER_DIR/*.h (every public
#     header, so a new header is covered without touching this test),
#   - the symbols listed in VERSION_SCRIPT (no wildcard: a function joins
#     the ABI only by being named there).
# Each difference is one line naming the symbol, where it is and where it
# is missing. Also checked: nothing but enrich_* leaves the library (cJSON,
# LMDB, zlib, internal helpers), every symbol is bound to the version node
# the script lists it under, a symbol is listed and declared once, the nodes
# form one chain (each inherits the one before) in release order and, given
# PROJECT_VERSION, no node is newer than the release being built.
set -euo pipefail

if (($# < 3 || $# > 4)); then
    echo "usage: $0 LIBRARY.so VERSION_SCRIPT HEADER_DIR [PROJECT_VERSION]" >&2
    exit 2
fi
lib=$1
map=$2
hdir=$3
project_version=${4:-}
nm_bin=${NM:-nm}
mapname=$(basename "$map")

for f in "$lib" "$map"; do
    [[ -f $f ]] || { echo "check_symbols: $f: no such file" >&2; exit 1; }
done
[[ -d $hdir ]] || { echo "check_symbols: $hdir: no such directory" >&2; exit 1; }

problems=0
problem() {
    echo "$*"
    problems=$((problems + 1))
}

# "ENRICH_1.2" -> "1 2", for ordering nodes as releases.
node_version() {
    local v=${1#ENRICH_}
    echo "${v%%.*} ${v#*.}"
}
version_le() { # MAJ1 MIN1 MAJ2 MIN2: is 1 <= 2?
    (($1 < $3 || ($1 == $3 && $2 <= $4)))
}

# --- the version script ------------------------------------------------
# Comments out, then one token per line: names and the punctuation { } : ;
declare -A listed=()   # symbol -> node
nodes=()
mapfile -t tokens < <(perl -0777 -pe 's{/\*.*?\*/}{ }gs; s{#[^\n]*}{ }g' "$map" |
    sed -e 's/\([{}:;]\)/ \1 /g' | tr -s ' \t\n' '\n' | sed '/^$/d')
state=name node= section= has_local_all=0
for tok in "${tokens[@]}"; do
    case $state in
    name)
        if [[ ! $tok =~ ^ENRICH_[0-9]+\.[0-9]+$ ]]; then
            problem "$mapname: version node '$tok' is not named ENRICH_<major>.<minor>"
        fi
        node=$tok section=
        nodes+=("$node")
        state=open
        ;;
    open)
        [[ $tok == '{' ]] || { problem "$mapname: '{' expected after $node, got '$tok'"; break; }
        state=body
        ;;
    body)
        case $tok in
        global | local) section=$tok; state=colon ;;
        '}') state=parent ;;
        ';') ;;
        *)
            if [[ -z $section ]]; then
                problem "$mapname: '$tok' in $node before 'global:' or 'local:'"
            elif [[ $section == local ]]; then
                if [[ $tok == '*' ]]; then
                    has_local_all=1
                else
                    problem "$mapname: $node lists '$tok' under local: (only '*' belongs there)"
                fi
            elif [[ $tok == *[*?[]* ]]; then
                problem "$mapname: wildcard '$tok' in $node: list every exported function by name"
            elif [[ -n ${listed[$tok]:-} ]]; then
                problem "$mapname: $tok is listed twice (${listed[$tok]} and $node)"
            else
                listed[$tok]=$node
            fi
            ;;
        esac
        ;;
    colon)
        [[ $tok == ':' ]] || { problem "$mapname: ':' expected after '$section' in $node"; break; }
        state=body
        ;;
    parent)
        if [[ $tok == ';' ]]; then
            if ((${#nodes[@]} > 1)); then
                problem "$mapname: $node must inherit ${nodes[-2]} ('} ${nodes[-2]};')"
            fi
            state=name
        else
            if ((${#nodes[@]} < 2)) || [[ $tok != "${nodes[-2]}" ]]; then
                problem "$mapname: $node inherits '$tok'; each node inherits the one before it"
            fi
            state=semicolon
        fi
        ;;
    semicolon)
        [[ $tok == ';' ]] || { problem "$mapname: ';' expected after node $node"; break; }
        state=name
        ;;
    esac
done
if [[ $state != name ]]; then
    problem "$mapname: unterminated version node ${node:-?}"
fi
if ((${#nodes[@]} == 0)); then
    problem "$mapname: no version node"
fi
if ((has_local_all == 0)); then
    problem "$mapname: no 'local: *;': symbols not listed would be exported"
fi
if [[ -n $project_version ]]; then
    pmaj=${project_version%%.*} rest=${project_version#*.}
    pmin=${rest%%.*}
fi
prev=
for n in "${nodes[@]}"; do
    [[ $n =~ ^ENRICH_[0-9]+\.[0-9]+$ ]] || continue
    read -r maj min < <(node_version "$n")
    if [[ -n $prev ]]; then
        read -r pmaj_ pmin_ < <(node_version "$prev")
        if version_le "$maj" "$min" "$pmaj_" "$pmin_"; then
            problem "$mapname: node $n comes after $prev: nodes are in release order, one per release"
        fi
    fi
    if [[ -n $project_version ]] && ! version_le "$maj" "$min" "$pmaj" "$pmin"; then
        problem "$mapname: node $n is newer than the project version $project_version (meson.build)"
    fi
    prev=$n
done

# --- the public headers ------------------------------------------------
# Comments and preprocessor lines out; each declaration (text up to ; { or })
# that holds ENRICH_API names its function: the first identifier before '('
# that is not an attribute or an all-capitals macro.
declare -A declared=()  # symbol -> header
shopt -s nullglob
headers=("$hdir"/*.h)
shopt -u nullglob
if ((${#headers[@]} == 0)); then
    problem "check_symbols: no public header in $hdir"
fi
for h in "${headers[@]}"; do
    hname=$(basename "$h")
    while read -r fn; do
        if [[ $fn == '?'* ]]; then
            problem "$hname: an ENRICH_API declaration names no function:${fn#\?}"
        elif [[ -n ${declared[$fn]:-} ]]; then
            problem "$fn is declared ENRICH_API twice (${declared[$fn]} and $hname): one header owns it"
        else
            declared[$fn]=$hname
        fi
    done < <(perl -0777 -ne '
        s{/\*.*?\*/}{ }gs; s{//[^\n]*}{}g;
        s{^[ \t]*#(?:[^\n]*\\\n)*[^\n]*}{}gm;
        for my $decl (split /[;{}]/) {
            next unless $decl =~ /\bENRICH_API\b(.*)/s;
            my $rest = $1;
            my ($name) = grep { !/^__/ && !/^[A-Z0-9_]+$/ } ($rest =~ /\b([A-Za-z_]\w*)\s*\(/g);
            if (defined $name) { print "$name\n" } else { $rest =~ s/\s+/ /g; print "? $rest\n" }
        }' "$h")
done

# --- the library ---------------------------------------------------------
if ! syms=$("$nm_bin" -D --defined-only "$lib"); then
    echo "check_symbols: $nm_bin failed on $lib" >&2
    exit 1
fi
libname=$(basename "$lib")
declare -A exported=()  # symbol -> node
while read -r -a field; do
    ((${#field[@]} >= 2)) || continue
    type=${field[-2]}
    name=${field[-1]}
    base=${name%%@*}
    if [[ $type == A && $base =~ ^ENRICH_[0-9]+(\.[0-9]+)*$ ]]; then
        continue # a version node itself
    fi
    if [[ $base != enrich_* ]]; then
        problem "leaked symbol: $libname exports $name (type $type)"
        continue
    fi
    if [[ $name != *@@ENRICH_* ]]; then
        problem "$base is exported without an ENRICH_ version node ($name): version script not applied?"
        exported[$base]=none
        continue
    fi
    exported[$base]=${name##*@@}
done <<<"$syms"

# --- the three lists -----------------------------------------------------
declare -A all=()
for s in "${!exported[@]}" "${!declared[@]}" "${!listed[@]}"; do all[$s]=1; done
for s in $(printf '%s\n' "${!all[@]}" | sort); do
    e=${exported[$s]:-} d=${declared[$s]:-} l=${listed[$s]:-}
    if [[ -n $d && -z $l ]]; then
        problem "$s is declared ENRICH_API in $d but not listed in $mapname: add it to the node of the release that adds it"
    elif [[ -z $d && -n $l ]]; then
        problem "$s is listed in $mapname ($l) but no public header declares it ENRICH_API: remove it from $mapname or declare it"
    fi
    if [[ -z $e && -n $d && -n $l ]]; then
        problem "$s is declared in $d and listed in $mapname but $libname does not export it (no definition, or the definition does not see the ENRICH_API declaration)"
    elif [[ -n $e && -z $d ]]; then
        problem "$s is exported by $libname but no public header declares it ENRICH_API"
    elif [[ -n $e && $e != none && -n $l && $e != "$l" ]]; then
        problem "$s is exported at version $e but $mapname lists it under $l"
    fi
done

if ((problems > 0)); then
    echo "check_symbols: $problems problem(s): $libname, $mapname and the ENRICH_API declarations of $hdir/*.h must list the same functions"
    exit 1
fi
echo "check_symbols: ${#exported[@]} functions exported, declared in ${#headers[@]} header(s) and listed in $mapname (${nodes[*]}); no leaks"
