"""build-layer: the Lambda layer zip works on its own. It is unpacked into
an empty folder (standing in for /opt) and a handler runs from it in a
fresh /usr/bin/python3 whose environment names only that folder."""
import json
import os
import subprocess
import sys
import unittest
import zipfile

from _support import (BUILDDIR, FIXED_CLOCK, SEED_ENRICHED, SRCDIR, TempDirTestCase)
from test_aws import seed_firehose, seed_kinesis, seed_pipes

BUILD_LAYER = os.path.join(SRCDIR, "bindings", "python", "build-layer")


def soname(path):
    """The DT_SONAME of a shared library (it follows the release, docs/abi.md)."""
    out = subprocess.run(["objdump", "-p", path], capture_output=True, text=True,
                         check=True).stdout
    names = [line.split()[1] for line in out.splitlines() if line.split()[:1] == ["SONAME"]]
    if len(names) != 1:
        raise AssertionError(f"no single SONAME in {path}:\n{out}")
    return names[0]

RUN_HANDLER = r"""
import json, os, sys
import enrich, enrich.aws
opt = os.environ["OPT"]
assert enrich.__file__.startswith(opt + "/python/"), enrich.__file__
event = json.load(sys.stdin)
handler = getattr(enrich.aws, sys.argv[1])
print(json.dumps({"response": handler(event),
                  "path": [p for p in sys.path if p]}))
"""


@unittest.skipUnless(BUILDDIR, "needs ENRICH_BUILDDIR (run through meson test)")
class LayerTest(TempDirTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.zip_path = os.path.join(cls.class_dir, "enrich-layer.zip")
        rules = os.path.join(SRCDIR, "examples", "seed-rules.json")
        p = subprocess.run([sys.executable, BUILD_LAYER, "--build-dir", BUILDDIR,
                            "--store", cls.store_path, "--rules", rules, "-o", cls.zip_path],
                           capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise AssertionError(f"build-layer failed:\n{p.stdout}{p.stderr}")
        cls.soname = soname(os.path.join(BUILDDIR, "lib", "libenrich.so"))
        cls.opt = os.path.join(cls.class_dir, "opt")
        os.mkdir(cls.opt)                       # empty
        with zipfile.ZipFile(cls.zip_path) as zf:
            cls.names = zf.namelist()
            for info in zf.infolist():
                zf.extract(info, cls.opt)
                mode = (info.external_attr >> 16) & 0o777
                os.chmod(os.path.join(cls.opt, info.filename), mode)

    def env(self, **extra):
        env = {"PYTHONPATH": os.path.join(self.opt, "python"),
               "LD_LIBRARY_PATH": os.path.join(self.opt, "lib"),
               "OPT": self.opt,
               "ENRICH_STORE": os.path.join(self.opt, "enrich", "store.mdb"),
               "ENRICH_RULES": os.path.join(self.opt, "enrich", "rules.json"),
               "ENRICH_CLOCK_MS": str(FIXED_CLOCK)}
        for keep in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS"):   # sanitizer runtimes
            if keep in os.environ:
                env[keep] = os.environ[keep]
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    def run_handler(self, name, event, **env):
        # -S: no site-packages, so nothing but the layer and the stdlib.
        return subprocess.run(["/usr/bin/python3", "-S", "-c", RUN_HANDLER, name],
                              input=json.dumps(event), env=self.env(**env), cwd=self.dir,
                              capture_output=True, text=True, timeout=120)

    def test_layout(self):
        for name in ("python/enrich/__init__.py", "python/enrich/aws.py",
                     "python/enrich/capi.py", "python/enrich/_errors.py",
                     "lib/" + self.soname, "lib/liblmdb.so.0", "lib/libcjson.so.1",
                     "enrich/store.mdb", "enrich/rules.json"):
            self.assertIn(name, self.names)
        self.assertTrue(any(n.startswith("python/enrich/_capi.") and n.endswith(".so")
                            for n in self.names))
        self.assertFalse(any("__pycache__" in n or n.startswith("lib/libc.") for n in self.names))
        # The library once, under its soname (the name the extension loads).
        self.assertEqual([n for n in self.names if n.startswith("lib/libenrich.")],
                         ["lib/" + self.soname])

    def test_handlers_run_from_the_layer_alone(self):
        cases = (("pipes_handler", seed_pipes(), [json.loads(e) for e in SEED_ENRICHED]),
                 ("kinesis_handler", seed_kinesis(), {"batchItemFailures": []}))
        for name, event, want in cases:
            p = self.run_handler(name, event)
            self.assertEqual(p.returncode, 0, p.stderr)
            lines = p.stdout.splitlines()
            self.assertEqual(len(lines), 2, p.stdout)        # the EMF line, then ours
            emf = json.loads(lines[0])
            self.assertEqual((emf["Records"], emf["Success"], emf["NotFound"]), (3, 2, 1))
            out = json.loads(lines[1])
            self.assertEqual(out["response"], want)
            self.assertFalse([x for x in out["path"] if not x.startswith(self.opt)
                              and "python3" not in x], out["path"])
        p = self.run_handler("firehose_handler", seed_firehose())
        self.assertEqual(p.returncode, 0, p.stderr)
        recs = json.loads(p.stdout.splitlines()[1])["response"]["records"]
        self.assertEqual([r["result"] for r in recs], ["Ok", "Ok", "Ok"])

    def test_the_libraries_come_from_the_layer(self):
        # Without /opt/lib on the library path the extension cannot load:
        # nothing points back into the build tree.
        p = self.run_handler("pipes_handler", seed_pipes(), LD_LIBRARY_PATH=None)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(self.soname + ":", p.stderr)

    def test_missing_store_fails_loudly(self):
        p = self.run_handler("pipes_handler", seed_pipes(),
                             ENRICH_STORE=os.path.join(self.opt, "enrich", "missing.mdb"))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("ConfigurationError", p.stderr)
        self.assertIn("missing.mdb", p.stderr)


if __name__ == "__main__":
    unittest.main()
