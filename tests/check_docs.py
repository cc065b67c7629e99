#!/usr/bin/env python3
"""Run the code blocks of README.md and docs/*.md that are marked runnable.

    check_docs.py SRCDIR BUILDDIR [--self-test]

A block is runnable when the line before it (blank lines aside) is one of

    <!-- runnable: sh -->        a shell session, run by bash -e (-o pipefail)
    <!-- runnable: sh exit=3 --> ... that must end with that status
    <!-- runnable: python -->    a Python snippet, run by the build's Python
    <!-- runnable: c -->         a whole C program: compiled against the build
                                 tree (pkg-config libenrich, uninstalled) with
                                 -Wall -Wextra -Werror, then run

and a block may be followed by one marked

    <!-- output -->              what the block before prints on stdout: the
                                 lines in order; a line "..." stands for any
                                 number of lines, and a line ending in "..."
                                 any line that starts with the rest

Blocks are fenced (```) or indented by four spaces. The blocks of one page
run in order in one fresh directory of their own, so a later block sees
the files an earlier one made. That directory holds examples/ (a link to
the source tree's) and _build/tools/enrich (a link to the build's tool, so
the README's paths work as written); `enrich` is on PATH and the build's
Python package on PYTHONPATH. A page's marks must each find their block,
and at least the pages this test was written for must have runnable
blocks, so the marks cannot silently vanish.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap

MARK = re.compile(r"^<!--\s*runnable:\s*(sh|python|c)((?:\s+\w+=\S+)*)\s*-->\s*$")
OUTPUT = re.compile(r"^<!--\s*output\s*-->\s*$")
# Pages that must hold runnable blocks (the issue that asked for this test
# names them); more pages may have some.
REQUIRED = {"README.md": {"sh", "c"}, "docs/cli.md": {"sh"}, "docs/python.md": {"python"}}


class Block:
    def __init__(self, page, line, lang, opts, text):
        self.page, self.line, self.lang, self.opts, self.text = page, line, lang, opts, text
        self.output = None

    def where(self):
        return f"{self.page}:{self.line}"


def next_block(lines, i):
    """The code block starting at the first non-blank line at or after i:
    (text, index after it), or (None, i) when the next thing is no block."""
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines):
        return None, i
    if lines[i].startswith("```"):
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if j >= len(lines):
            return None, i
        return "".join(l + "\n" for l in lines[i + 1:j]), j + 1
    if lines[i].startswith("    "):
        j = i
        body = []
        while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
            body.append(lines[j][4:])
            j += 1
        while body and not body[-1].strip():
            body.pop()
        # Inside a list item the block is indented further: drop what all
        # its lines share.
        return textwrap.dedent("".join(l + "\n" for l in body)), j
    return None, i


def parse(page, text):
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = MARK.match(lines[i].strip())
        if OUTPUT.match(lines[i].strip()):
            # The output of the last runnable block (prose may come between).
            if not blocks or blocks[-1].output is not None:
                raise SystemExit(f"{page}:{i + 1}: an output mark with no runnable block "
                                 "before it")
            out, j = next_block(lines, i + 1)
            if out is None:
                raise SystemExit(f"{page}:{i + 1}: the output mark is not followed by a code block")
            blocks[-1].output = out
            i = j
            continue
        if not m:
            i += 1
            continue
        opts = dict(kv.split("=", 1) for kv in m.group(2).split())
        body, j = next_block(lines, i + 1)
        if body is None:
            raise SystemExit(f"{page}:{i + 1}: the runnable mark is not followed by a code block")
        blocks.append(Block(page, i + 1, m.group(1), opts, body))
        i = j
    return blocks


def output_matches(want, got):
    """Lines of want in order in got; a line "..." matches any run of lines,
    and a line ending in "..." any line that starts with what precedes it
    (for a clock's timestamp at the end of a record)."""
    want = [l.rstrip() for l in want.splitlines()]
    got = [l.rstrip() for l in got.splitlines()]

    def same(w, g):
        return g.startswith(w[:-3]) if w.endswith("...") else g == w

    def match(w, g):
        if w == len(want):
            return g == len(got)
        if want[w] == "...":
            return any(match(w + 1, k) for k in range(g, len(got) + 1))
        return g < len(got) and same(want[w], got[g]) and match(w + 1, g + 1)

    return match(0, 0)


class Runner:
    def __init__(self, src, build):
        self.src, self.build = src, build
        tools = os.path.join(build, "tools")
        self.env = dict(os.environ)
        self.env["PATH"] = tools + os.pathsep + self.env.get("PATH", "/usr/bin:/bin")
        self.env["PYTHONPATH"] = os.path.join(build, "bindings", "python")
        self.env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.env["PKG_CONFIG_PATH"] = os.path.join(build, "meson-uninstalled")
        self.env.pop("MAKEFLAGS", None)
        self.python = os.environ.get("ENRICH_PYTHON", sys.executable)

    def prepare(self, work):
        os.symlink(os.path.join(self.src, "examples"), os.path.join(work, "examples"))
        os.makedirs(os.path.join(work, "_build", "tools"))
        os.symlink(os.path.join(self.build, "tools", "enrich"),
                   os.path.join(work, "_build", "tools", "enrich"))

    def cflags(self):
        pc = shutil.which("pkg-config")
        if pc:
            p = subprocess.run([pc, "--cflags", "--libs", "libenrich"], env=self.env,
                               capture_output=True, text=True)
            if p.returncode == 0:
                lib = os.path.join(self.build, "lib")
                return shlex.split(p.stdout) + [f"-Wl,-rpath,{lib}"]
        return [f"-I{self.src}/include", f"-I{self.build}/include",
                f"-L{self.build}/lib", "-lenrich", f"-Wl,-rpath,{self.build}/lib"]

    def run(self, block, work, n):
        if block.lang == "sh":
            argv = ["bash", "-e", "-o", "pipefail", "-c", block.text]
        elif block.lang == "python":
            path = os.path.join(work, f"snippet{n}.py")
            with open(path, "w") as f:
                f.write(block.text)
            argv = [self.python, path]
        else:
            path = os.path.join(work, f"example{n}.c")
            exe = os.path.join(work, f"example{n}")
            with open(path, "w") as f:
                f.write(block.text)
            cc = shlex.split(os.environ.get("CC", "cc"))
            p = subprocess.run(cc + ["-std=c11", "-Wall", "-Wextra", "-Werror", path, "-o", exe]
                               + self.cflags(), cwd=work, env=self.env,
                               capture_output=True, text=True)
            if p.returncode != 0:
                return f"{block.where()}: the C example does not compile:\n{p.stderr}"
            argv = [exe]
        p = subprocess.run(argv, cwd=work, env=self.env, capture_output=True, text=True,
                           timeout=120)
        want = int(block.opts.get("exit", "0"))
        if p.returncode != want:
            return (f"{block.where()}: {block.lang} block exited {p.returncode}, want {want}\n"
                    f"--- block:\n{block.text}--- stdout:\n{p.stdout}--- stderr:\n{p.stderr}")
        if block.output is not None and not output_matches(block.output, p.stdout):
            return (f"{block.where()}: the output differs from the page's\n"
                    f"--- the page says:\n{block.output}--- the block printed:\n{p.stdout}")
        return None


def pages(src):
    found = ["README.md"] + sorted(
        os.path.join("docs", f) for f in os.listdir(os.path.join(src, "docs")) if f.endswith(".md"))
    return found


def check(src, build):
    runner = Runner(src, build)
    failures, ran = [], 0
    for page in pages(src):
        blocks = parse(page, open(os.path.join(src, page), encoding="utf-8").read())
        langs = {b.lang for b in blocks}
        missing = REQUIRED.get(page, set()) - langs
        if missing:
            failures.append(f"{page}: no runnable {', '.join(sorted(missing))} block")
        if not blocks:
            continue
        with tempfile.TemporaryDirectory(prefix="enrich-docs-") as work:
            runner.prepare(work)
            for n, block in enumerate(blocks):
                err = runner.run(block, work, n)
                ran += 1
                if err:
                    failures.append(err)
                    break  # later blocks of the page build on this one
                print(f"ok: {block.where()} ({block.lang})")
    return ran, failures


def self_test():
    """The parser and the output matcher refuse what they must."""
    page = ("text\n<!-- runnable: sh exit=3 -->\n\n    echo a\n    echo b\n\n"
            "<!-- output -->\n```\na\n...\n```\n<!-- runnable: python -->\n```python\nprint(1)\n```\n")
    b = parse("p.md", page)
    assert [x.lang for x in b] == ["sh", "python"], b
    assert b[0].text == "echo a\necho b\n" and b[0].opts == {"exit": "3"}, b[0].text
    assert b[0].output == "a\n...\n" and b[1].text == "print(1)\n"
    for bad in ("<!-- runnable: sh -->\nprose\n", "<!-- output -->\n    x\n",
                "<!-- runnable: sh -->\n    a\n<!-- output -->\n    x\n<!-- output -->\n    y\n",
                "<!-- runnable: sh -->\n```\nunclosed\n"):
        try:
            parse("p.md", bad)
        except SystemExit:
            continue
        raise AssertionError(f"accepted {bad!r}")
    assert output_matches("a\n...\nz\n", "a\nb\nc\nz\n")
    assert output_matches("a\n...\n", "a\n")
    assert not output_matches("a\nz\n", "a\nb\nz\n")
    assert not output_matches("a\n", "a\nb\n")
    assert output_matches("{\"t\":\"...\n", "{\"t\":\"2024\"}\n")
    assert not output_matches("{\"t\":\"...\n", "{\"u\":1}\n")
    print("ok: self-test")


def main():
    args = sys.argv[1:]
    if "--self-test" in args:
        self_test()
        return
    if len(args) != 2:
        sys.exit("usage: check_docs.py SRCDIR BUILDDIR | --self-test")
    src, build = (os.path.abspath(a) for a in args)
    ran, failures = check(src, build)
    if failures:
        sys.exit("\n\n".join(failures))
    print(f"{ran} runnable blocks passed")


if __name__ == "__main__":
    main()
