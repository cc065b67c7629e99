"""`meson install` gives a package Debian's /usr/bin/python3 imports: with the
default prefix in a fresh shell (no PYTHONPATH, no LD_LIBRARY_PATH, no
ldconfig), anywhere else with PYTHONPATH alone (the extension finds
libenrich by an $ORIGIN-relative RUNPATH). Each runs the seed scenario:
load the seed's products, enrich the seed's events."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from _support import BUILDDIR, EXAMPLES, SRCDIR, UNDER_ASAN, UNDER_VALGRIND

sys.path.insert(0, os.path.join(SRCDIR, "tools", "pack"))
import lambdalike  # noqa: E402

MESON = os.environ.get("ENRICH_MESON") or "meson"
DEBIAN_PYTHON = "/usr/bin/python3"

SEED_SCENARIO = r"""
import json, os, sys, tempfile
import enrich
src = sys.argv[1]
with tempfile.TemporaryDirectory() as d:
    with enrich.Store(os.path.join(d, "seed.mdb"), create=True) as s:
        with open(os.path.join(src, "seed-products.ddb.jsonl"), "rb") as f:
            s.load("products", f.read(), key="productId", format="dynamodb")
        with open(os.path.join(src, "seed-events.ndjson"), "rb") as f:
            r = enrich.Pipeline(s).enrich(f.read())
        print(json.dumps({"counts": r.counts, "file": enrich.__file__,
                          "libs": sorted({l.split()[-1] for l in open("/proc/self/maps")
                                          if "libenrich" in l})}))
"""
WANT_COUNTS = {"success": 2, "not_found": 1, "no_key": 0, "error": 0}


def installed():
    p = subprocess.run([MESON, "introspect", "--installed", BUILDDIR], capture_output=True,
                       text=True, check=True)
    return json.loads(p.stdout)


def build_prefix():
    p = subprocess.run([MESON, "introspect", "--buildoptions", BUILDDIR], capture_output=True,
                       text=True, check=True)
    return next(o["value"] for o in json.loads(p.stdout) if o["name"] == "prefix")


def package_dir(files):
    return os.path.dirname(next(v for v in files.values() if v.endswith("/enrich/__init__.py")))


@unittest.skipUnless(BUILDDIR, "needs ENRICH_BUILDDIR (run through meson test)")
@unittest.skipIf(UNDER_ASAN or UNDER_VALGRIND, "packaging only: the plain setup runs it")
class InstallTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="enrich-install-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def run_seed(self, cmd, env):
        p = subprocess.run(cmd + ["-c", SEED_SCENARIO, EXAMPLES], env=env, cwd=self.dir,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    @unittest.skipUnless(lambdalike.can_mount_readonly(),
                         "needs root and unshare for a private /usr/local")
    def test_default_prefix_in_a_fresh_shell(self):
        if build_prefix() != "/usr/local":
            self.skipTest(f"the build's prefix is {build_prefix()}, not the default")
        # A real `meson install`, into a private tmpfs over /usr/local (the
        # machine's own stays untouched), then `env -i` as a fresh login.
        script = (f'mount -t tmpfs enrich-test /usr/local && '
                  f'"{MESON}" install -C "{BUILDDIR}" --no-rebuild --quiet '
                  f'--tags runtime,python-runtime && exec env -i "$@"')
        p = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", DEBIAN_PYTHON, "-c",
                            SEED_SCENARIO, EXAMPLES], cwd=self.dir, capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = json.loads(p.stdout)
        self.assertEqual(got["counts"], WANT_COUNTS)
        pkg = package_dir(installed())
        self.assertEqual(got["file"], os.path.join(pkg, "__init__.py"))
        self.assertTrue(got["libs"] and got["libs"][0].startswith("/usr/local/lib/"), got)

    def test_default_prefix_is_searched_by_debian_python(self):
        if build_prefix() != "/usr/local":
            self.skipTest(f"the build's prefix is {build_prefix()}, not the default")
        p = subprocess.run([DEBIAN_PYTHON, "-E", "-c", "import site; print(site.getsitepackages())"],
                           capture_output=True, text=True, check=True)
        self.assertIn(os.path.dirname(package_dir(installed())), p.stdout)

    def test_relocated_install_needs_only_pythonpath(self):
        destdir = os.path.join(self.dir, "destdir")
        subprocess.run([MESON, "install", "-C", BUILDDIR, "--no-rebuild", "--quiet",
                        "--destdir", destdir, "--tags", "runtime,python-runtime"], check=True,
                       capture_output=True)
        prefix = build_prefix()
        moved = os.path.join(self.dir, "somewhere", "else")
        shutil.move(destdir + prefix, moved)        # the tree, at another prefix
        pkg = moved + package_dir(installed())[len(prefix):]
        got = self.run_seed([DEBIAN_PYTHON], {"PATH": "/usr/bin:/bin",
                                              "PYTHONPATH": os.path.dirname(pkg)})
        self.assertEqual(got["counts"], WANT_COUNTS)
        self.assertTrue(got["file"].startswith(moved), got)
        self.assertTrue(got["libs"][0].startswith(moved), got)
        cli = os.path.join(moved, "bin", "enrich")   # the tool finds it the same way
        p = subprocess.run([cli, "--version"], env={"PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_a_prefix_python_does_not_search_keeps_meson_default(self):
        build = os.path.join(self.dir, "build")
        prefix = os.path.join(self.dir, "opt-enrich")
        subprocess.run([MESON, "setup", build, SRCDIR, "--prefix", prefix,
                        "-Dtests=disabled", "-Dbench=disabled", "-Dgo=disabled",
                        "-Dpython=enabled"], check=True, capture_output=True, timeout=300)
        p = subprocess.run([MESON, "introspect", "--installed", build], capture_output=True,
                           text=True, check=True)
        pkg = package_dir(json.loads(p.stdout))
        self.assertTrue(pkg.startswith(prefix + "/lib/python3"), pkg)


if __name__ == "__main__":
    unittest.main()
