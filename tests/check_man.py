#!/usr/bin/env python3
"""The manual page enrich.1 says what `enrich --help` says.

    check_man.py ENRICH MANPAGE

tools/mkman.c writes the page from the help texts of tools/help.c; this
test holds it to the program itself: the page's SYNOPSIS block must be,
byte for byte, the output of `enrich --help`, and its COMMANDS must hold
one section per command listed there, each block byte for byte the output
of `enrich COMMAND --help` (after undoing mkman's roff escapes, and only
those). When groff is installed, the page must also format without a
warning, and every option of every --help must appear in the formatted
text, as a reader of `man enrich` sees it.
"""
import re
import shutil
import subprocess
import sys


def run(*args):
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(args)}: exit {p.returncode}: {p.stderr}")
    return p.stdout


def unescape(line):
    """The inverse of mkman.c's put_line."""
    if line.startswith("\\&"):
        line = line[2:]
    out, i = [], 0
    while i < len(line):
        if line.startswith("\\e", i):
            out.append("\\")
            i += 2
        elif line.startswith("\\-", i):
            out.append("-")
            i += 2
        elif line[i] == "\\":
            sys.exit(f"unexpected roff escape in a help block: {line!r}")
        else:
            out.append(line[i])
            i += 1
    return "".join(out)


def blocks(page):
    """{heading: text of the .nf block under it}; the heading is the .SH or
    .SS line that precedes the block."""
    found, heading, inside, lines = {}, None, False, []
    for line in page.splitlines():
        if line.startswith((".SH ", ".SS ")) and not inside:
            heading = line[4:].strip()
        elif line == ".nf":
            inside, lines = True, []
        elif line == ".fi":
            if heading in found:
                sys.exit(f"two blocks under {heading!r}")
            found[heading] = "".join(unescape(l) + "\n" for l in lines)
            inside = False
        elif inside:
            lines.append(line)
    return found


def check(enrich, man):
    page = open(man, encoding="utf-8").read()
    got = blocks(page)

    usage = run(enrich, "--help")
    if got.get("SYNOPSIS") != usage:
        sys.exit(f"SYNOPSIS differs from `enrich --help`:\n{got.get('SYNOPSIS')!r}\n{usage!r}")
    listed = re.findall(r"^  (\w+) +\S", usage.split("Commands:\n", 1)[1].split("\n\n")[0],
                        re.M)
    if len(listed) < 7:
        sys.exit(f"expected the list of commands in `enrich --help`, got {listed}")
    sections = sorted(h for h in got if h.startswith("enrich "))
    if sections != sorted(f"enrich {c}" for c in listed):
        sys.exit(f"the page's command sections {sections} are not the commands {listed}")
    helps = {}
    for cmd in listed:
        helps[cmd] = run(enrich, cmd, "--help")
        if got[f"enrich {cmd}"] != helps[cmd]:
            sys.exit(f"section 'enrich {cmd}' differs from `enrich {cmd} --help`")
        if run(enrich, "help", cmd) != helps[cmd]:
            sys.exit(f"`enrich help {cmd}` differs from `enrich {cmd} --help`")
    print(f"ok: SYNOPSIS and {len(listed)} command sections match --help")

    groff = shutil.which("groff")
    if not groff:
        print("groff not installed: formatting not checked")
        return
    p = subprocess.run([groff, "-man", "-Tutf8", "-ww", man], capture_output=True,
                       env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
    if p.returncode != 0 or p.stderr:
        sys.exit(f"groff: exit {p.returncode}: {p.stderr.decode(errors='replace')}")
    # Formatted text: drop overstrike (bold/underline) sequences.
    text = re.sub(r".\x08", "", p.stdout.decode("utf-8"))
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    for cmd, h in helps.items():
        for opt in sorted(set(re.findall(r"(?<![\w-])--?[a-z][a-z-]*", h))):
            if opt not in text:
                sys.exit(f"option {opt} of `enrich {cmd} --help` is not in the formatted page")
    print("ok: the page formats without warnings and shows every option")


def self_test(enrich, man):
    """Pages a step away from the real one must each be refused."""
    import os
    import tempfile
    page = open(man, encoding="utf-8").read()
    load = page.index(".SS enrich load")
    mutants = {
        "an option renamed": page.replace("\\-\\-table TABLE", "\\-\\-tabel TABLE", 1),
        "a line dropped": page[:load] + page[load:].replace("  \\-h, \\-\\-help", "", 1),
        "a command missing": page[:load] + page[page.index(".SS enrich get"):],
        "a stray roff escape": page.replace("store file", "store \\fBfile", 1),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for what, text in mutants.items():
            if text == page:
                sys.exit(f"self-test: mutation '{what}' changed nothing")
            path = os.path.join(tmp, "enrich.1")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            try:
                check(enrich, path)
            except SystemExit as e:
                print(f"ok: refused a page with {what}: {str(e).splitlines()[0]}")
                continue
            sys.exit(f"self-test: a page with {what} passed")


def main():
    args = sys.argv[1:]
    if args[:1] == ["--self-test"] and len(args) == 3:
        self_test(*args[1:])
    elif len(args) == 2:
        check(*args)
    else:
        sys.exit("usage: check_man.py [--self-test] ENRICH MANPAGE")


if __name__ == "__main__":
    main()
