"""build-wheels: one wheel per CPython, each installed with
`pip install --no-index` into a fresh venv of that CPython and running the
seed scenario from there (libenrich and its libraries from the wheel, not
from the build tree or the system); RECORD lists every file with its hash;
the platform tag is the newest glibc version the files need; pip refuses a
wheel built for another CPython."""
import base64
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile

from _support import BUILDDIR, EXAMPLES, SRCDIR, UNDER_ASAN, UNDER_VALGRIND

sys.path.insert(0, os.path.join(SRCDIR, "tools", "pack"))
import cpython  # noqa: E402
import elfcheck  # noqa: E402
from test_install import SEED_SCENARIO, WANT_COUNTS  # noqa: E402

# libenrich under its soname (libenrich.so.0.MINOR, docs/abi.md).
LIBENRICH = elfcheck.ElfInfo(os.path.join(BUILDDIR, "lib", "libenrich.so")).soname if BUILDDIR else None

BUILD_WHEELS = os.path.join(SRCDIR, "bindings", "python", "build-wheels")


@unittest.skipUnless(BUILDDIR, "needs ENRICH_BUILDDIR (run through meson test)")
@unittest.skipIf(UNDER_ASAN or UNDER_VALGRIND, "packaging only: the plain setup runs it")
class WheelsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="enrich-wheels-")
        cls.dist = os.path.join(cls.dir, "dist")
        p = subprocess.run([sys.executable, BUILD_WHEELS, "--build-dir", BUILDDIR,
                            "-o", cls.dist], capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise AssertionError(f"build-wheels failed:\n{p.stdout}{p.stderr}")
        cls.output = p.stdout + p.stderr
        cls.interps, cls.missing = cpython.find_interpreters()
        cls.wheels = {}
        for name in os.listdir(cls.dist):
            cls.wheels[name.split("-")[2]] = os.path.join(cls.dist, name)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_one_wheel_per_cpython_found(self):
        self.assertEqual(sorted(self.wheels), sorted(it.tag for it in self.interps))
        for m in self.missing:
            self.assertIn(m, self.output)

    def test_record_tag_and_contents(self):
        for tag, path in self.wheels.items():
            with self.subTest(wheel=os.path.basename(path)), zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                info = next(n for n in names if n.endswith(".dist-info/RECORD"))
                rows = list(csv.reader(io.StringIO(zf.read(info).decode())))
                self.assertEqual(sorted(r[0] for r in rows), sorted(names))
                for arc, digest, size in rows:
                    if arc == info:
                        self.assertEqual((digest, size), ("", ""))
                        continue
                    data = zf.read(arc)
                    want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                    self.assertEqual(digest, "sha256=" + want.decode())
                    self.assertEqual(int(size), len(data))
                wheel = zf.read(info.replace("RECORD", "WHEEL")).decode()
                self.assertIn("Root-Is-Purelib: false", wheel)
                # The tag is the newest glibc any file needs, measured.
                stage = os.path.join(self.dir, "unpacked-" + tag)
                zf.extractall(stage)
                newest = elfcheck.max_glibc(elfcheck.elf_files(stage))
                platform = f"manylinux_{newest[0]}_{newest[1]}_x86_64"
                self.assertIn(f"Tag: {tag}-{tag}-{platform}\n", wheel)
                self.assertTrue(path.endswith(f"-{tag}-{tag}-{platform}.whl"))
                self.assertEqual(newest, (2, 34))
                self.assertEqual(elfcheck.check_tree(stage), [])
                self.assertIn("enrich.libs/" + LIBENRICH, names)

    def test_each_wheel_in_a_fresh_venv(self):
        self.assertTrue(self.interps)
        for it in self.interps:
            with self.subTest(python=it.full):
                venv = os.path.join(self.dir, "venv-" + it.tag)
                vpy = os.path.join(venv, "bin", "python")
                env = {"PATH": os.path.join(venv, "bin") + ":/usr/bin:/bin", "HOME": self.dir,
                       "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
                # The interpreter's own pip drives the venv (--python): a venv
                # without pip is made in a second, where ensurepip takes 5-30.
                pip = [it.exe, "-m", "pip", "--python", vpy]
                has_pip = subprocess.run(pip[:3] + ["--version"], capture_output=True,
                                         env=env).returncode == 0
                p = subprocess.run([it.exe, "-m", "venv"] + ([] if not has_pip else
                                                             ["--without-pip"]) + [venv],
                                   capture_output=True, text=True, timeout=300)
                self.assertEqual(p.returncode, 0, p.stderr + (
                    " (Debian's python needs python3-venv)" if it.exe == "/usr/bin/python3"
                    else ""))
                if not has_pip:
                    pip = [vpy, "-m", "pip"]
                p = subprocess.run(pip + ["install", "--no-index", "--no-deps",
                                          self.wheels[it.tag]], env=env, capture_output=True,
                                   text=True, timeout=300)
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                p = subprocess.run([vpy, "-c", SEED_SCENARIO, EXAMPLES], env=env, cwd=self.dir,
                                   capture_output=True, text=True, timeout=120)
                self.assertEqual(p.returncode, 0, p.stderr)
                got = json.loads(p.stdout)
                self.assertEqual(got["counts"], WANT_COUNTS)
                self.assertTrue(got["file"].startswith(venv), got)
                self.assertEqual(len(got["libs"]), 1)
                self.assertTrue(got["libs"][0].startswith(venv) and
                                "/enrich.libs/" in got["libs"][0], got)
                # A wheel of another CPython is refused, not installed broken.
                other = next((w for t, w in self.wheels.items() if t != it.tag), None)
                if other:
                    p = subprocess.run(pip + ["install", "--no-index", "--no-deps",
                                              other], env=env, capture_output=True, text=True,
                                       timeout=300)
                    self.assertNotEqual(p.returncode, 0)
                    self.assertIn("is not a supported wheel", p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
