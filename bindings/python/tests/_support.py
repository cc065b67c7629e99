"""Shared helpers of the Python binding's tests (stdlib unittest only)."""
import os
import shutil
import tempfile
import unittest

import enrich

SRCDIR = os.environ.get("ENRICH_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BUILDDIR = os.environ.get("ENRICH_BUILDDIR", "")
FIXTURES_AWS = os.path.join(SRCDIR, "tests", "fixtures", "aws")
EXAMPLES = os.path.join(SRCDIR, "examples")

UNDER_ASAN = bool(os.environ.get("ENRICH_UNDER_ASAN"))
UNDER_VALGRIND = bool(os.environ.get("ENRICH_UNDER_VALGRIND"))

# 2024-02-01T00:00:00.000Z, as in tests/check_enrich.c
FIXED_CLOCK = 1706745600000
FIXED_ISO = "2024-02-01T00:00:00.000Z"


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


SEED_ITEMS = read(os.path.join(EXAMPLES, "seed-products.ddb.jsonl"))
SEED_EVENTS = read(os.path.join(EXAMPLES, "seed-events.ndjson"))
SEED_EVENT_LINES = SEED_EVENTS.splitlines()

# The seed's three events enriched with the seed rules at FIXED_CLOCK: the
# event bytes kept as they are, the members spliced before the closing brace.
SEED_ENRICHED = [
    b'{"eventId":"evt-001","productId":"PROD-001","quantity":5,"timestamp":"2024-01-15T10:30:00Z",'
    b'"productName":"Smart Sensor","category":"IoT Devices","price":49.99,'
    b'"enrichmentStatus":"success","enrichmentTimestamp":"2024-02-01T00:00:00.000Z"}',
    b'{"eventId":"evt-002","productId":"PROD-002","quantity":3,"timestamp":"2024-01-15T10:31:00Z",'
    b'"productName":"Temperature Monitor","category":"IoT Devices","price":79.99,'
    b'"enrichmentStatus":"success","enrichmentTimestamp":"2024-02-01T00:00:00.000Z"}',
    b'{"eventId":"evt-003","productId":"PROD-999","quantity":1,"timestamp":"2024-01-15T10:32:00Z",'
    b'"enrichmentStatus":"product_not_found"}',
]


def make_seed_store(path):
    """A store at path holding the seed's products table."""
    with enrich.Store(path, create=True) as s:
        n = s.load("products", SEED_ITEMS, key="productId", format="dynamodb")
        assert n == 2, n


class TempDirTestCase(unittest.TestCase):
    """Each test gets self.dir, removed afterwards, and a seed store
    self.store_path (built once per class)."""

    @classmethod
    def setUpClass(cls):
        cls.class_dir = tempfile.mkdtemp(prefix="enrich-py-")
        cls.store_path = os.path.join(cls.class_dir, "seed.mdb")
        make_seed_store(cls.store_path)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.class_dir, ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="enrich-py-")
        self.addCleanup(shutil.rmtree, self.dir, True)


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
