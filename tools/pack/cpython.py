"""The CPythons an artifact is built for, and the `enrich` package staged for
them: the pure-Python modules, SWIG's capi.py and one `_capi` extension per
CPython, compiled here from the build dir's SWIG wrapper (capi_wrap.c).

CPython 3.11 is Debian's /usr/bin/python3 (python3-dev has its headers);
3.12 and 3.13 come from pyenv (`pyenv versions --bare`, `pyenv prefix`),
the newest patch release of each. None of them is a fixed path: a machine
without one builds for the others and says which is missing and why.

The extension does not link libpython (CPython's own convention for
extension modules), so one file per minor version serves any build of that
version, Lambda's /var/lang/bin/python3.12 included.
"""
import json
import os
import re
import shutil
import subprocess

WANTED = ("3.11", "3.12", "3.13")
DEBIAN_PYTHON = "/usr/bin/python3"

_PROBE = ("import json, sys, sysconfig; print(json.dumps({"
          "'version': '%d.%d' % sys.version_info[:2], "
          "'full': sys.version.split()[0], "
          "'include': sysconfig.get_paths()['include'], "
          "'ext_suffix': sysconfig.get_config_var('EXT_SUFFIX'), "
          "'soabi': sysconfig.get_config_var('SOABI')}))")


class Interpreter:
    def __init__(self, exe, info):
        self.exe = exe
        self.version = info["version"]          # "3.12"
        self.full = info["full"]                # "3.12.1"
        self.include = info["include"]
        self.ext_suffix = info["ext_suffix"]    # ".cpython-312-x86_64-linux-gnu.so"
        self.tag = "cp" + self.version.replace(".", "")

    def __repr__(self):
        return f"CPython {self.full} ({self.exe})"


def probe(exe):
    """The Interpreter at exe, or (None, why)."""
    try:
        p = subprocess.run([exe, "-I", "-S", "-c", _PROBE], capture_output=True, text=True,
                           timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{exe} does not run: {e}"
    if p.returncode != 0:
        return None, f"{exe} failed: {p.stderr.strip()}"
    info = json.loads(p.stdout)
    if not os.path.isfile(os.path.join(info["include"], "Python.h")):
        return None, (f"{exe} (CPython {info['full']}) has no headers in {info['include']}"
                      + (" (install python3-dev)" if exe == DEBIAN_PYTHON else ""))
    return Interpreter(exe, info), None


def _pyenv_candidates():
    """{"3.12": "/root/.pyenv/versions/3.12.1/bin/python3.12", ...}: the newest
    CPython of each minor version pyenv has, or {} without pyenv."""
    pyenv = shutil.which("pyenv")
    if not pyenv:
        return {}, "pyenv is not on PATH"
    p = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True)
    if p.returncode != 0:
        return {}, f"pyenv versions failed: {p.stderr.strip()}"
    best = {}
    for v in p.stdout.split():
        m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", v)      # plain CPython releases only
        if not m:
            continue
        minor = f"{m.group(1)}.{m.group(2)}"
        key = tuple(int(x) for x in m.groups())
        if minor not in best or key > best[minor][0]:
            best[minor] = (key, v)
    found = {}
    for minor, (_, v) in best.items():
        q = subprocess.run([pyenv, "prefix", v], capture_output=True, text=True)
        if q.returncode == 0:
            exe = os.path.join(q.stdout.strip(), "bin", "python" + minor)
            if os.path.isfile(exe):
                found[minor] = exe
    return found, None


def find_interpreters(wanted=WANTED):
    """([Interpreter], [message for each wanted version not found])."""
    found, missing = [], []
    pyenv, pyenv_why = _pyenv_candidates()
    for minor in wanted:
        tried = []
        candidates = []
        if os.path.isfile(DEBIAN_PYTHON):
            candidates.append(DEBIAN_PYTHON)
        if minor in pyenv:
            candidates.append(pyenv[minor])
        interp = None
        for exe in candidates:
            it, why = probe(exe)
            if it is None:
                tried.append(why)
            elif it.version == minor:
                interp = it
                break
        if interp:
            found.append(interp)
        else:
            why = "; ".join(tried) or (pyenv_why or f"pyenv has no CPython {minor}")
            missing.append(f"CPython {minor}: not found ({why})")
    return found, missing


def build_extension(interp, wrap_c, include_dirs, libdir, out, runpath, cc=None):
    """Compile the SWIG wrapper into out for interp, linked to libenrich in
    libdir, with the given RUNPATH."""
    cc = cc or os.environ.get("CC") or "cc"
    cmd = [cc, "-shared", "-fPIC", "-O2", "-std=c11", "-fvisibility=hidden",
           "-D_POSIX_C_SOURCE=200809L", "-D_DEFAULT_SOURCE", "-D_FILE_OFFSET_BITS=64",
           "-I" + interp.include] + ["-I" + d for d in include_dirs] + [
           wrap_c, "-o", out, "-L" + libdir, "-lenrich",
           "-Wl,--enable-new-dtags", "-Wl,-rpath," + runpath, "-Wl,-z,noexecstack"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"building the extension for {interp} failed:\n"
                           f"{' '.join(cmd)}\n{p.stderr}")


class BuildTree:
    """The files of a built meson dir that the artifacts take, found through
    meson's introspection (not fixed paths: the lib/ layout may change)."""

    def __init__(self, build_dir, meson="meson"):
        self.build_dir = os.path.abspath(build_dir)
        p = subprocess.run([meson, "introspect", "--targets", "--projectinfo", self.build_dir],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"meson introspect {build_dir} failed: {p.stderr.strip()}")
        intro = json.loads(p.stdout)
        self.version = intro["projectinfo"]["version"]
        self.source_dir = None
        files = {}
        for t in intro["targets"]:
            for f in t["filename"]:
                files.setdefault((t["name"], t["type"]), []).append(f)
            if t["name"] == "enrich" and t["type"] == "shared library":
                self.source_dir = os.path.dirname(os.path.dirname(t["defined_in"]))
        lib = files.get(("enrich", "shared library"))
        if not lib:
            raise RuntimeError(f"{build_dir}: no libenrich target")
        self.libenrich = lib[0]                                  # .../libenrich.so.0.1.0
        self.libdir = os.path.dirname(self.libenrich)
        wrap = files.get(("enrich-capi-wrap", "custom"))
        self.capi_wrap_c = self.capi_py = None
        if wrap:
            self.capi_wrap_c = next(f for f in wrap if f.endswith(".c"))
            self.capi_py = next(f for f in wrap if f.endswith(".py"))
        cli = files.get(("enrich", "executable"))
        self.cli = cli[0] if cli else None
        boot = files.get(("bootstrap", "executable"))
        self.bootstrap = boot[0] if boot else None
        self.include_dirs = [os.path.join(self.build_dir, "include")]
        if self.source_dir:
            self.include_dirs.insert(0, os.path.join(self.source_dir, "include"))

    def require_python(self):
        if not self.capi_wrap_c or not os.path.isfile(self.capi_wrap_c):
            raise RuntimeError(f"{self.build_dir}: the Python binding is not built "
                               "(configure with -Dpython=enabled, then meson compile)")

    @property
    def python_sources(self):
        pkg = os.path.join(self.source_dir, "bindings", "python", "enrich")
        return sorted(os.path.join(pkg, f) for f in os.listdir(pkg) if f.endswith(".py"))


def stage_package(tree, interps, dest, runpath, cc=None):
    """Write the enrich package into dest (a new directory): the .py files
    and one stripped extension per interpreter with the given RUNPATH."""
    from elfcheck import strip   # noqa: E402  (sibling module)
    tree.require_python()
    os.makedirs(dest)
    for src in tree.python_sources + [tree.capi_py]:
        shutil.copyfile(src, os.path.join(dest, os.path.basename(src)))
    built = []
    for it in interps:
        out = os.path.join(dest, "_capi" + it.ext_suffix)
        build_extension(it, tree.capi_wrap_c, tree.include_dirs, tree.libdir, out, runpath, cc)
        strip(out)
        built.append(out)
    return built
