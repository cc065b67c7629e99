"""What the ELF files of a Lambda artifact (layer, function zip, wheel) need
from the machine they land on, and whether Amazon Linux 2023 gives it.

Lambda's python3.12, python3.13 and provided.al2023 runtimes run on Amazon
Linux 2023, whose glibc is 2.34. A file built on Debian 12 (glibc 2.36) may
reference newer symbol versions (GLIBC_2.35, _2.36) and would then fail to
load there with "version `GLIBC_2.36' not found". So every ELF file we ship
is checked for:

  - the GLIBC_ symbol versions it needs: none newer than GLIBC_MAX;
  - each shared library it needs (DT_NEEDED): found through the file's own
    RUNPATH inside the artifact, or listed in AL2023_LIBS below;
  - a RUNPATH that stays inside the artifact ($ORIGIN-relative), so nothing
    depends on LD_LIBRARY_PATH or on the build machine's paths;
  - stripped (no .symtab, no .debug_* sections), when asked.

Only binutils (readelf, strip) and patchelf are used, both from Debian.
Run as a script it checks an unpacked tree and prints the problems:

    python3 tools/pack/elfcheck.py DIR [--no-strip-check]
"""
import os
import re
import subprocess
import sys

GLIBC_MAX = (2, 34)

# Shared libraries that Amazon Linux 2023 guarantees in every Lambda
# runtime built on it (python3.12, python3.13, provided.al2023): the ones
# glibc 2.34 itself installs in /lib64 (package glibc, part of even the
# minimal al2023 base image). Nothing else is assumed: zlib, LMDB, cJSON and
# any other library the files need ship inside the artifact.
AL2023_LIBS = frozenset({
    "ld-linux-x86-64.so.2",   # the dynamic loader (glibc)
    "libc.so.6",              # glibc
    "libm.so.6",              # glibc: libm
    "libpthread.so.0",        # glibc: since 2.34 an empty stub, still installed (liblmdb needs it)
    "libdl.so.2",             # glibc: stub since 2.34
    "librt.so.1",             # glibc: stub since 2.34
})

ELF_MAGIC = b"\x7fELF"


class ElfCheckError(RuntimeError):
    """A tool this module needs (readelf, strip, patchelf) is missing or failed."""


def _run(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise ElfCheckError(f"{cmd[0]} not found: install Debian's "
                            f"{'patchelf' if cmd[0] == 'patchelf' else 'binutils'}") from None
    if p.returncode != 0:
        raise ElfCheckError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError:
        return False


def version_tuple(name):
    """GLIBC_2.34 -> (2, 34); None for anything else (GLIBC_PRIVATE)."""
    m = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)*)", name)
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


class ElfInfo:
    """The dynamic section and version needs of one ELF file."""

    def __init__(self, path):
        self.path = path
        out = _run(["readelf", "-d", "-V", "-S", "-W", path])
        self.needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
        self.soname = (re.findall(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", out) or [None])[0]
        self.runpath = []
        for tag in ("RUNPATH", "RPATH"):
            for value in re.findall(rf"\({tag}\)\s+Library r(?:un)?path: \[([^\]]*)\]", out):
                self.runpath += [p for p in value.split(":") if p]
        self.has_rpath_tag = "(RPATH)" in out
        # Version needs: "File: libc.so.6 Cnt: 9" then "Name: GLIBC_2.34 ..." lines.
        self.version_needs = {}
        current = None
        in_needs = False
        for line in out.splitlines():
            if line.startswith("Version needs section"):
                in_needs = True
                continue
            if in_needs and line and not line.startswith(" "):
                in_needs = False
            if not in_needs:
                continue
            m = re.search(r"File: (\S+)", line)
            if m:
                current = m.group(1)
                self.version_needs.setdefault(current, set())
                continue
            m = re.search(r"Name: (\S+)", line)
            if m and current:
                self.version_needs[current].add(m.group(1))
        self.sections = re.findall(r"^\s*\[\s*\d+\]\s+(\S+)", out, re.M)

    @property
    def glibc_versions(self):
        return {v for names in self.version_needs.values() for v in names if v.startswith("GLIBC_")}

    @property
    def stripped(self):
        return ".symtab" not in self.sections and not any(
            s.startswith(".debug") for s in self.sections)

    def resolved_runpath(self):
        origin = os.path.dirname(os.path.abspath(self.path))
        return [p.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for p in self.runpath]


def elf_files(root):
    """Every regular ELF file under root, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path) and is_elf(path):
                found.append(path)
    return found


def max_glibc(paths):
    """The newest GLIBC_ version any of the files needs, as a tuple."""
    best = (0,)
    for path in paths:
        for v in ElfInfo(path).glibc_versions:
            t = version_tuple(v)
            if t and t > best:
                best = t
    return best


def check_tree(root, require_stripped=True, glibc_max=GLIBC_MAX, system_libs=AL2023_LIBS):
    """Problems of the ELF files under root, as readable lines (empty: ok)."""
    root = os.path.abspath(root)
    problems = []
    files = elf_files(root)
    if not files:
        problems.append(f"{root}: no ELF file at all")
    for path in files:
        rel = os.path.relpath(path, root)
        info = ElfInfo(path)
        for v in sorted(info.glibc_versions):
            t = version_tuple(v)
            if t is None or t > glibc_max:
                problems.append(f"{rel}: needs {v}, newer than GLIBC_"
                                f"{'.'.join(map(str, glibc_max))} (Amazon Linux 2023)")
        dirs = info.resolved_runpath()
        for d in dirs:
            if not (os.path.abspath(d) + "/").startswith(root + "/"):
                problems.append(f"{rel}: RUNPATH entry {d!r} leads outside the artifact")
        if info.has_rpath_tag:
            problems.append(f"{rel}: has DT_RPATH (use DT_RUNPATH, $ORIGIN-relative)")
        for lib in info.needed:
            if lib in system_libs:
                continue
            inside = [d for d in dirs if (os.path.abspath(d) + "/").startswith(root + "/")]
            if not any(os.path.isfile(os.path.join(d, lib)) for d in inside):
                problems.append(f"{rel}: needs {lib}, neither in the artifact (through its "
                                f"RUNPATH {':'.join(info.runpath) or '(none)'}) nor provided "
                                f"by Amazon Linux 2023")
        if require_stripped and not info.stripped:
            problems.append(f"{rel}: not stripped (.symtab or .debug sections)")
    return problems


def host_closure(path, env_libdir=None, system_libs=AL2023_LIBS):
    """The shared libraries path loads on this machine that are not in
    system_libs, as [(soname, real file)], through ldd (the host's loader
    resolves the whole closure). env_libdir goes on LD_LIBRARY_PATH (the
    build dir's libenrich)."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)   # sanitizer runtimes of the test setup
    if env_libdir:
        env["LD_LIBRARY_PATH"] = env_libdir
    p = subprocess.run(["ldd", path], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise ElfCheckError(f"ldd {path} failed: {p.stderr.strip()}")
    libs = []
    for line in p.stdout.splitlines():
        parts = line.split()
        if "=>" not in parts:
            continue
        name, target = parts[0], parts[2]
        if name in system_libs:
            continue
        if target == "not":
            raise ElfCheckError(f"{path} needs {name}, which this machine does not have")
        libs.append((name, os.path.realpath(target)))
    return libs


def strip(path):
    """Drop symbols and debug sections (the dynamic symbols stay)."""
    _run(["strip", "--strip-unneeded", path])


def set_runpath(path, runpath):
    """Replace the file's RUNPATH (patchelf writes DT_RUNPATH). Run after
    strip: strip would keep it, but patchelf's layout is what gets shipped."""
    _run(["patchelf", "--set-rpath", runpath, path])


def stage_libraries(libenrich, build_libdir, dest):
    """Copy libenrich and every library of its closure that Amazon Linux
    2023 does not provide into dest, under their sonames, stripped, each
    with RUNPATH $ORIGIN (libenrich finds liblmdb, libcjson, libz beside
    itself, whoever loads it). Returns the sonames."""
    import shutil
    os.makedirs(dest, exist_ok=True)
    soname = ElfInfo(libenrich).soname or os.path.basename(libenrich)
    files = [(soname, os.path.realpath(libenrich))]
    files += host_closure(libenrich, build_libdir)
    names = []
    for name, src in files:
        out = os.path.join(dest, name)
        shutil.copyfile(src, out)
        os.chmod(out, 0o755)
        strip(out)
        set_runpath(out, "$ORIGIN")
        names.append(name)
    return names


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description="check the ELF files of an unpacked Lambda artifact")
    ap.add_argument("root")
    ap.add_argument("--no-strip-check", action="store_true")
    args = ap.parse_args(argv)
    problems = check_tree(args.root, require_stripped=not args.no_strip_check)
    for p in problems:
        print(p)
    files = elf_files(args.root)
    if not problems:
        newest = max_glibc(files)
        print(f"ok: {len(files)} ELF files, newest glibc symbol GLIBC_{'.'.join(map(str, newest))}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
