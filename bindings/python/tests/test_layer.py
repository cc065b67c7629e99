"""build-layer: the Lambda layer zip works on its own, under each CPython it
was built for. The zip is unpacked into an empty folder standing in for
/opt, made read-only, and each handler runs from it in a fresh interpreter
(-I -S: the standard library and the layer's python/ only) with Lambda's
LD_LIBRARY_PATH and another working directory, on the seed's events and
every AWS fixture; the responses must equal the build tree's and keep the
documented contracts. The ELF check (glibc <= 2.34, libraries in the layer
or in Amazon Linux 2023) passes on the layer and catches what it must."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from _support import BUILDDIR, FIXED_CLOCK, SRCDIR, UNDER_ASAN, UNDER_VALGRIND, TempDirTestCase

from enrich import aws

sys.path.insert(0, os.path.join(SRCDIR, "tools", "pack"))
import archive  # noqa: E402
import cpython  # noqa: E402
import elfcheck  # noqa: E402
import lambdalike  # noqa: E402

# libenrich under its soname (libenrich.so.0.MINOR, docs/abi.md), as the
# extension asks for it.
LIBENRICH = elfcheck.ElfInfo(os.path.join(BUILDDIR, "lib", "libenrich.so")).soname if BUILDDIR else None

BUILD_LAYER = os.path.join(SRCDIR, "bindings", "python", "build-layer")
SEED_RULES = os.path.join(SRCDIR, "examples", "seed-rules.json")

# Runs in the interpreter under test: every (shape, name, raw event) of
# stdin through the layer's handler as Lambda's Python runtime calls it
# (json.loads of the event, json.dumps of what the handler returns).
RUNNER = r"""
import io, json, os, sys
opt = os.environ["OPT"]
sys.path.insert(0, os.path.join(opt, "python"))
import enrich, enrich.aws
assert enrich.__file__.startswith(opt + "/python/"), enrich.__file__
class Context:
    aws_request_id = "req-layer"
results = []
for shape, name, raw in json.load(sys.stdin):
    handler = getattr(enrich.aws, shape + "_handler")
    out, saved = io.StringIO(), sys.stdout
    sys.stdout = out
    try:
        resp = json.loads(json.dumps(handler(json.loads(raw), Context())))
        err = None
    except Exception as e:
        resp, err = None, type(e).__name__ + ": " + str(e)
    finally:
        sys.stdout = saved
    results.append({"shape": shape, "name": name, "response": resp, "error": err,
                    "emf": [json.loads(l) for l in out.getvalue().splitlines()]})
maps = [l.split()[-1] for l in open("/proc/self/maps") if ".so" in l]
print(json.dumps({"results": results, "version": "%d.%d" % sys.version_info[:2],
                  "sys_path": sys.path, "maps": sorted(set(maps)), "cwd": os.getcwd()}))
"""


def reference(shape, raw, store):
    """The build tree's response bytes (or the error) for one event."""
    h = aws.Handler(shape, store=store, rules=SEED_RULES, env={},
                    options={"clock_ms": FIXED_CLOCK}, metrics=False)
    try:
        return json.loads(h.invoke_bytes(raw)), None
    except Exception as e:
        return None, type(e).__name__
    finally:
        h.close()


@unittest.skipUnless(BUILDDIR, "needs ENRICH_BUILDDIR (run through meson test)")
@unittest.skipIf(UNDER_ASAN or UNDER_VALGRIND, "packaging only: the plain setup runs it")
class LayerTest(TempDirTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.interps, cls.missing = cpython.find_interpreters()
        cls.zip_path = os.path.join(cls.class_dir, "enrich-layer.zip")
        p = subprocess.run([sys.executable, BUILD_LAYER, "--build-dir", BUILDDIR,
                            "--store", cls.store_path, "--rules", SEED_RULES,
                            "-o", cls.zip_path], capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise AssertionError(f"build-layer failed:\n{p.stdout}{p.stderr}")
        cls.build_output = p.stdout + p.stderr
        cls.opt = os.path.join(cls.class_dir, "opt")
        os.mkdir(cls.opt)
        cls.names = archive.unpack(cls.zip_path, cls.opt)
        cls.events = lambdalike.event_sets(SRCDIR)

    def run_layer(self, interp, cases, readonly=True, **env):
        cwd = tempfile.mkdtemp(prefix="enrich-cwd-")
        self.addCleanup(shutil.rmtree, cwd, True)
        env = lambdalike.lambda_env(**{
            "opt": self.opt, "task": cwd, "OPT": self.opt,
            "ENRICH_STORE": os.path.join(self.opt, "enrich", "store.mdb"),
            "ENRICH_RULES": os.path.join(self.opt, "enrich", "rules.json"),
            "ENRICH_CLOCK_MS": str(FIXED_CLOCK), **env})
        cmd = [interp.exe, "-I", "-S", "-c", RUNNER]
        if readonly:
            cmd = lambdalike.readonly(cmd, [self.opt])
        return subprocess.run(cmd, input=json.dumps(cases), env=env, cwd=cwd,
                              capture_output=True, text=True, timeout=300)

    def test_layout(self):
        for name in ("python/enrich/__init__.py", "python/enrich/aws.py",
                     "python/enrich/capi.py", "python/enrich/_errors.py",
                     "lib/" + LIBENRICH, "lib/liblmdb.so.0", "lib/libcjson.so.1",
                     "lib/libz.so.1", "lib/libdeflate.so.0", "enrich/store.mdb",
                     "enrich/rules.json"):
            self.assertIn(name, self.names)
        for it in self.interps:
            self.assertIn(f"python/enrich/_capi{it.ext_suffix}", self.names)
        for m in self.missing:       # said, not hidden
            self.assertIn(m, self.build_output)
        self.assertFalse(any("__pycache__" in n or n.startswith("lib/libc.") for n in self.names))

    def test_every_elf_file_loads_on_amazon_linux_2023(self):
        self.assertEqual(elfcheck.check_tree(self.opt), [])
        files = elfcheck.elf_files(self.opt)
        # libenrich, liblmdb, libcjson, libz, libdeflate and one extension per CPython
        self.assertEqual(len(files), 5 + len(self.interps))
        self.assertLessEqual(elfcheck.max_glibc(files), elfcheck.GLIBC_MAX)
        for f in files:
            info = elfcheck.ElfInfo(f)
            self.assertTrue(info.stripped, f)
            self.assertTrue(info.runpath and all(p.startswith("$ORIGIN") for p in info.runpath),
                            (f, info.runpath))

    def test_handlers_under_each_cpython(self):
        cases = [(shape, name, raw.decode()) for shape, evs in self.events.items()
                 for name, raw in evs]
        want = {(shape, name): reference(shape, raw.encode(), self.store_path)
                for shape, name, raw in cases}
        for m in self.missing:
            print(f"\n  skipped: {m}", file=sys.stderr)
        self.assertTrue(self.interps)
        for it in self.interps:
            with self.subTest(python=it.full):
                p = self.run_layer(it, cases)
                self.assertEqual(p.returncode, 0, p.stderr)
                got = json.loads(p.stdout.splitlines()[-1])
                self.assertEqual(got["version"], it.version)
                self.assertEqual([x for x in got["sys_path"] if "python3" not in x],
                                 [os.path.join(self.opt, "python")])
                self.assertNotEqual(got["cwd"], self.opt)
                for lib in (LIBENRICH, "liblmdb.so.0", "libcjson.so.1", "libdeflate.so.0"):
                    self.assertIn(os.path.join(self.opt, "lib", lib), got["maps"])
                self.assertIn(os.path.join(self.opt, "python", "enrich", "_capi" + it.ext_suffix),
                              got["maps"])
                for r in got["results"]:
                    event = json.loads(dict(((s, n), raw) for s, n, raw in cases)[
                        (r["shape"], r["name"])])
                    resp, err = want[(r["shape"], r["name"])]
                    self.assertIsNone(err, (r["name"], err))
                    self.assertIsNone(r["error"], r)
                    self.assertEqual(r["response"], resp, r["name"])
                    self.assertEqual(lambdalike.contract_problems(r["shape"], event,
                                                                  r["response"]), [], r["name"])
                    self.assertEqual(len(r["emf"]), 1)
                    self.assertEqual(r["emf"][0]["requestId"], "req-layer")
                    self.assertEqual(r["emf"][0]["Records"],
                                     len(lambdalike._records(r["shape"], event)))

    def test_libraries_found_by_runpath_alone(self):
        it = self.interps[0]
        shape, (name, raw) = "kinesis", self.events["kinesis"][0]
        p = self.run_layer(it, [(shape, name, raw.decode())], LD_LIBRARY_PATH=None)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = json.loads(p.stdout.splitlines()[-1])
        self.assertEqual(got["results"][0]["response"], {"batchItemFailures": []})
        self.assertIn(os.path.join(self.opt, "lib", LIBENRICH), got["maps"])

    def test_a_cpython_the_layer_lacks_is_named(self):
        # The package without the running interpreter's extension, as a
        # layer built elsewhere would be.
        it = self.interps[-1]
        opt = os.path.join(self.dir, "opt")
        shutil.copytree(os.path.join(self.opt, "python"), os.path.join(opt, "python"))
        os.remove(os.path.join(opt, "python", "enrich", "_capi" + it.ext_suffix))
        p = subprocess.run([it.exe, "-I", "-S", "-c",
                            f"import sys; sys.path.insert(0, {opt + '/python'!r}); import enrich"],
                           capture_output=True, text=True, cwd=self.dir, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        last = p.stderr.strip().splitlines()[-1]
        self.assertIn(f"no _capi extension for CPython {it.version}", last)
        self.assertNotIn("circular", last)
        for other in self.interps[:-1]:
            self.assertIn(other.version, last.split("built for CPython")[1])

    def test_missing_store_fails_loudly(self):
        it = self.interps[0]
        name, raw = self.events["pipes"][0]
        p = self.run_layer(it, [("pipes", name, raw.decode())],
                           ENRICH_STORE=os.path.join(self.opt, "enrich", "missing.mdb"))
        self.assertEqual(p.returncode, 0, p.stderr)
        r = json.loads(p.stdout.splitlines()[-1])["results"][0]
        self.assertTrue(r["error"].startswith("ConfigurationError"), r)
        self.assertIn("missing.mdb", r["error"])
        self.assertEqual(r["emf"][0]["InvocationError"], 1)


@unittest.skipIf(UNDER_ASAN or UNDER_VALGRIND, "packaging only: the plain setup runs it")
class ElfCheckTest(unittest.TestCase):
    """The check itself fails where it must (real files built by cc)."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="enrich-elf-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def cc(self, src, out, *args):
        c = os.path.join(self.dir, "x.c")
        with open(c, "w") as f:
            f.write(src)
        subprocess.run(["cc", "-shared", "-fPIC", "-o", out, c, *args], check=True)
        elfcheck.strip(out)

    def test_a_symbol_newer_than_glibc_2_34_fails(self):
        # arc4random is GLIBC_2.36 (Debian 12), absent from Amazon Linux 2023.
        self.cc("#include <stdlib.h>\nunsigned f(void) { return arc4random(); }\n",
                os.path.join(self.dir, "libnew.so"))
        problems = elfcheck.check_tree(self.dir)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("GLIBC_2.36", problems[0])

    def test_a_library_outside_the_artifact_fails(self):
        lib = os.path.join(self.dir, "dep", "libdep.so")
        os.mkdir(os.path.dirname(lib))
        self.cc("int dep(void) { return 1; }\n", lib, "-Wl,-soname,libdep.so")
        top = os.path.join(self.dir, "top")
        os.mkdir(top)
        self.cc("int dep(void);\nint f(void) { return dep(); }\n", os.path.join(top, "libtop.so"),
                "-L" + os.path.dirname(lib), "-ldep", "-Wl,-rpath,$ORIGIN")
        problems = elfcheck.check_tree(top)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("needs libdep.so", problems[0])
        shutil.copy(lib, top)                       # shipped beside it: fine
        self.assertEqual(elfcheck.check_tree(top), [])

    def test_an_unstripped_file_or_absolute_runpath_fails(self):
        c = os.path.join(self.dir, "x.c")
        with open(c, "w") as f:
            f.write("int f(void) { return 1; }\n")
        subprocess.run(["cc", "-g", "-shared", "-fPIC", "-o", os.path.join(self.dir, "libg.so"),
                        c, "-Wl,-rpath,/usr/local/lib"], check=True)
        problems = "\n".join(elfcheck.check_tree(self.dir))
        self.assertIn("not stripped", problems)
        self.assertIn("leads outside", problems)


if __name__ == "__main__":
    unittest.main()
