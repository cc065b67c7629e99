#!/usr/bin/env python3
"""The include rule of lib/ (docs/architecture.md, "The layers of lib/").

Reads the layer table of docs/architecture.md, then every #include of every
file under lib/, and fails on:
  - an include of a lib/ header from a folder the file's row does not allow
    (an upward or sideways edge), or of a header the row narrows away
    ("store:store.h" allows that header of store/ only);
  - a public header (enrich/<name>.h) the row does not list;
  - <lmdb.h> outside lib/store;
  - a lib/ header that no folder holds (a stale include);
  - a cycle among the headers of lib/.
Usage: check_layers.py SOURCE_ROOT
       check_layers.py --self-test SOURCE_ROOT   (a copy with one bad edge of
                                                   each kind must fail)
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def layer_table(doc):
    """{layer: (allowed {folder: None | set(headers)}, public set)}"""
    rows = {}
    in_table = False
    for line in doc.splitlines():
        if line.startswith("| layer | may include"):
            in_table = True
            continue
        if in_table:
            if not line.startswith("|"):
                break
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if set(cells[0]) <= set("-"):
                continue
            allowed = {}
            for item in cells[1].split():
                folder, _, header = item.partition(":")
                if header:
                    if allowed.get(folder, set()) is not None:
                        allowed.setdefault(folder, set()).add(header)
                else:
                    allowed[folder] = None  # every header of the folder
            rows[cells[0]] = (allowed, set(cells[2].split()))
    return rows


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    lib = os.path.join(root, "lib")
    with open(os.path.join(root, "docs", "architecture.md"), encoding="utf-8") as f:
        rows = layer_table(f.read())
    if not rows:
        print("check_layers: no layer table in docs/architecture.md")
        return 1
    folders = sorted(d for d in os.listdir(lib) if os.path.isdir(os.path.join(lib, d)))
    problems = []
    for d in folders:
        if d not in rows:
            problems.append(f"lib/{d}/: a folder the layer table does not name")
    for d in rows:
        if d not in folders:
            problems.append(f"layer table names {d}, which lib/ does not have")
    owner = {}  # header file name -> folder
    for d in folders:
        for name in os.listdir(os.path.join(lib, d)):
            if name.endswith(".h"):
                if name in owner:
                    problems.append(f"{name} is in lib/{owner[name]}/ and lib/{d}/")
                owner[name] = d
    edges = {}  # header -> headers it includes (lib/ only)
    checked = 0
    for d in folders:
        allowed, public = rows.get(d, ({}, set()))
        for name in sorted(os.listdir(os.path.join(lib, d))):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(lib, d, name)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            where = f"lib/{d}/{name}"
            for kind, inc in INCLUDE.findall(text):
                checked += 1
                if kind == "<":
                    if inc == "lmdb.h" and d != "store":
                        problems.append(f"{where}: <lmdb.h> outside lib/store")
                    continue
                if inc.startswith("enrich/"):
                    pub = inc[len("enrich/"):-2]
                    if inc.endswith(".h") and pub in ("version",):
                        continue
                    if pub not in public:
                        problems.append(f"{where}: includes the public {inc}, which layer {d} may not")
                    continue
                target = owner.get(inc)
                if target is None:
                    problems.append(f"{where}: includes \"{inc}\", which no folder of lib/ holds")
                    continue
                if name.endswith(".h"):
                    edges.setdefault(name, set()).add(inc)
                if target == d:
                    continue
                if target not in allowed:
                    problems.append(f"{where}: includes {target}/{inc}: layer {d} may not include layer {target}")
                elif allowed[target] is not None and inc not in allowed[target]:
                    problems.append(f"{where}: includes {target}/{inc}: layer {d} may include only "
                                    f"{', '.join(sorted(allowed[target]))} of {target}")
    # Cycles among headers (depth-first, three colours).
    state = {}

    def visit(h, stack):
        state[h] = 1
        for n in sorted(edges.get(h, ())):
            if state.get(n) == 1:
                problems.append("include cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n, stack + [n])
        state[h] = 2

    for h in sorted(edges):
        if h not in state:
            visit(h, [h])
    for p in problems:
        print("check_layers: " + p)
    print(f"check_layers: {checked} includes in {len(folders)} folders checked, "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


def self_test(root):
    """Each injected violation alone must make the check fail, by name."""
    cases = [
        ("core/rules.c", '#include "store_internal.h"\n', "may include only store.h of store"),
        ("common/buf.c", '#include "json.h"\n', "layer common may not include layer json"),
        ("json/jscan.c", "#include <lmdb.h>\n", "<lmdb.h> outside lib/store"),
        ("core/encode.c", '#include "enrich/delivery.h"\n', "which layer core may not"),
        ("store/store.h", '#include "store_internal.h"\n', "include cycle"),
        ("aws/aws_input.c", '#include "internal.h"\n', "which no folder of lib/ holds"),
    ]
    failures = 0
    for rel, line, expect in cases:
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(os.path.join(root, "lib"), os.path.join(tmp, "lib"))
            os.makedirs(os.path.join(tmp, "docs"))
            shutil.copy(os.path.join(root, "docs", "architecture.md"), os.path.join(tmp, "docs"))
            target = os.path.join(tmp, "lib", rel)
            with open(target, encoding="utf-8") as f:
                text = f.read()
            with open(target, "w", encoding="utf-8") as f:
                f.write(line + text)
            r = subprocess.run([sys.executable, __file__, tmp], capture_output=True, text=True)
            ok = r.returncode == 1 and expect in r.stdout
            print(f"self-test {rel} + {line.strip()}: {'caught' if ok else 'MISSED'}")
            failures += not ok
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--self-test":
        sys.exit(self_test(sys.argv[2]))
    sys.exit(main())
