"""enrich.Delivery: Firehose-like delivery of enriched records into a
directory tree of gzip objects (docs/delivery.md)."""
import glob
import gzip as stdgzip
import json
import os
import threading
import unittest

import enrich
from enrich import capi

from _support import FIXED_CLOCK, SEED_ENRICHED, SEED_EVENTS, TempDirTestCase

DAY = os.path.join("year=2024", "month=01", "day=15")
# The seed's three events (two found, one not), then one whose key is an
# object (outcome ERROR) but which carries its timestamp.
BAD_EVENT = b'{"eventId":"evt-004","productId":{"x":1},"timestamp":"2024-01-15T10:33:00Z"}'
BATCH = SEED_EVENTS + BAD_EVENT + b"\n"


def objects(root, pattern):
    """The visible objects matching pattern (no temporaries)."""
    return sorted(p for p in glob.glob(os.path.join(root, pattern), recursive=True)
                  if os.path.isfile(p) and not os.path.basename(p).startswith("."))


def records(paths):
    out = []
    for p in paths:
        with stdgzip.open(p, "rb") as f:
            data = f.read()
        if data:
            assert data.endswith(b"\n"), p
            out.extend(data.splitlines())
    return out


class DeliveryTest(TempDirTestCase):
    def setUp(self):
        super().setUp()
        self.store = enrich.Store(self.store_path)
        self.addCleanup(self.store.close)
        self.pipeline = enrich.Pipeline(self.store, clock_ms=FIXED_CLOCK)
        self.root = os.path.join(self.dir, "lake")

    def test_seed_events_land_in_partitioned_gzip_objects(self):
        with enrich.Delivery(self.pipeline, self.root) as d:
            self.assertEqual(d.resume_offset, 0)
            d.run(BATCH, input_end=4)
            self.assertEqual(d.input_end, 4)
            m = d.metrics()
        self.assertTrue(d.closed)

        data = objects(self.root, os.path.join("enriched-data", DAY, "*"))
        self.assertEqual(len(data), 1, data)
        self.assertRegex(os.path.basename(data[0]),
                         r"^enrich-1-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9a-f-]{36}\.gz$")
        self.assertEqual(records(data), SEED_ENRICHED)

        errs = objects(self.root, os.path.join("error-data", "processing-failed", DAY, "*"))
        self.assertEqual(len(errs), 1, objects(self.root, "**"))
        (err,) = records(errs)
        rec = json.loads(err)
        self.assertEqual(rec["eventId"], "evt-004")
        self.assertIn("enrichmentError", rec)

        # nothing else but the state and the lock
        everything = objects(self.root, "**")
        self.assertEqual(set(everything) - set(data) - set(errs),
                         {os.path.join(self.root, "_delivery", "enrich.state.json"),
                          os.path.join(self.root, "_delivery", "enrich.lock")})
        with open(os.path.join(self.root, "_delivery", "enrich.state.json")) as f:
            self.assertEqual(json.load(f)["acked_offset"], 4)

        # metrics read before close: nothing published yet, all counted in
        self.assertEqual(m["batches"], 1)
        self.assertEqual(m["events_in"], 4)
        self.assertEqual((m["in_success"], m["in_not_found"], m["in_no_key"], m["in_error"]),
                         (2, 1, 0, 1))
        self.assertEqual(m["out_dead_letter"], 0)
        self.assertEqual(m["batch_latency_us"]["count"], 1)

    def test_metrics_after_flush_and_reset(self):
        d = enrich.Delivery(self.pipeline, self.root)
        self.addCleanup(d.close)
        d.run(BATCH)
        d.flush(force=True)
        m = d.metrics(reset=True)
        self.assertEqual((m["out_data"], m["out_invalid"], m["out_error"]), (3, 0, 1))
        self.assertEqual(m["objects"], 2)
        self.assertGreater(m["bytes_out"], 0)
        self.assertGreater(m["bytes_in"], m["bytes_out"] // 10)
        self.assertEqual(d.metrics()["events_in"], 0)  # reset
        self.assertEqual(len(objects(self.root, "enriched-data/**")), 1)

    def test_metrics_emf(self):
        with enrich.Delivery(self.pipeline, self.root,
                             {"metrics_namespace": "py-test", "stream_name": "s1"}) as d:
            d.run(SEED_EVENTS)
            emf = json.loads(d.metrics_emf())
        self.assertIn("_aws", emf)
        self.assertEqual(emf["EventsIn"], 3)
        self.assertEqual(emf["DeliveryStream"], "s1")
        self.assertEqual(emf["_aws"]["CloudWatchMetrics"][0]["Namespace"], "py-test")

    def test_write_a_batch_result(self):
        ctx = self.pipeline.context()
        with self.pipeline.delivery(self.root) as d:
            r = ctx.run(SEED_EVENTS)
            d.write(r, input_end=10)
            d.write(ctx.run(b""), input_end=11)
            with self.assertRaises(enrich.ExpiredResultError):
                d.write(r, input_end=12)
            with self.assertRaises(enrich.InvalidError):  # input_end going back
                d.write(ctx.run(SEED_EVENTS), input_end=5)
            with self.assertRaises(TypeError):
                d.write(SEED_EVENTS)
        self.assertEqual(records(objects(self.root, "enriched-data/**")), SEED_ENRICHED)

    def test_close_twice_and_use_after_close(self):
        d = enrich.Delivery(self.pipeline, self.root)
        d.run(SEED_EVENTS)
        d.close()
        d.close()
        self.assertTrue(d.closed)
        with self.assertRaises(ValueError):
            d.run(SEED_EVENTS)
        with self.assertRaises(ValueError):
            d.metrics()
        self.assertEqual(len(objects(self.root, "enriched-data/**")), 1)

    def test_discard_and_resume(self):
        with enrich.Delivery(self.pipeline, self.root) as d:
            d.run(SEED_EVENTS, input_end=3)
        with self.assertRaises(RuntimeError):
            with enrich.Delivery(self.pipeline, self.root) as d:
                self.assertEqual(d.resume_offset, 3)
                d.run(SEED_EVENTS)              # input_end 4: counted on
                self.assertEqual(d.input_end, 4)
                raise RuntimeError("the caller failed")
        # leaving by an exception discarded the buffer: offset still 3
        d = enrich.Delivery(self.pipeline, self.root)
        self.assertEqual(d.resume_offset, 3)
        d.close(discard=True)
        self.assertEqual(len(objects(self.root, "enriched-data/**")), 1)

    def test_bad_config_raises_a_named_error(self):
        with self.assertRaises(enrich.InvalidError) as cm:
            enrich.Delivery(self.pipeline, self.root, {"bogus": 1})
        self.assertEqual(cm.exception.name, "ENRICH_E_INVALID")
        self.assertIn('unknown member "bogus"', cm.exception.detail)
        with self.assertRaises(enrich.InvalidError) as cm:
            enrich.Delivery(self.pipeline, self.root, b'{"prefix":"/abs/"}')
        self.assertIn("prefix", str(cm.exception))
        with enrich.Delivery(self.pipeline, self.root) as d:
            with self.assertRaises(ValueError):
                d.run(b"", input="nope")

    def test_second_open_of_a_stream_is_refused(self):
        with enrich.Delivery(self.pipeline, self.root):
            with self.assertRaises(enrich.IoError) as cm:
                enrich.Delivery(self.pipeline, self.root)
            self.assertIn("another delivery", str(cm.exception))
            # another stream name is fine
            with enrich.Delivery(self.pipeline, self.root, {"stream_name": "other"}):
                pass

    def test_bad_batch_detail_comes_from_the_context(self):
        with enrich.Delivery(self.pipeline, self.root) as d:
            with self.assertRaises(enrich.JsonError) as cm:
                d.run(b"[1,", input="json")
            self.assertTrue(cm.exception.detail)

    def test_pipeline_close_closes_its_deliveries(self):
        d = enrich.Delivery(self.pipeline, self.root)
        d.run(SEED_EVENTS)
        self.pipeline.close()
        self.assertTrue(d.closed)
        self.assertEqual(len(objects(self.root, "enriched-data/**")), 1)

    def test_dropped_without_close_publishes(self):
        import gc
        d = enrich.Delivery(self.pipeline, self.root)
        d.run(SEED_EVENTS)
        del d
        gc.collect()
        self.assertEqual(len(objects(self.root, "enriched-data/**")), 1)
        # and the stream is free again
        enrich.Delivery(self.pipeline, self.root).close()

    def test_gil_released_calls_from_threads(self):
        # serialized on the object: several threads may share one delivery
        with enrich.Delivery(self.pipeline, self.root) as d:
            errors = []

            def work():
                try:
                    for _ in range(20):
                        d.run(SEED_EVENTS)
                except Exception as e:  # pragma: no cover
                    errors.append(e)
            ts = [threading.Thread(target=work) for _ in range(4)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            self.assertEqual(errors, [])
            self.assertEqual(d.input_end, 80)
            self.assertEqual(d.metrics()["events_in"], 240)
        self.assertEqual(len(records(objects(self.root, "enriched-data/**"))), 240)

    def test_callback_is_not_exposed(self):
        self.assertFalse(hasattr(capi, "delivery_set_object_callback"))
        self.assertTrue(hasattr(capi, "delivery_run"))


if __name__ == "__main__":
    unittest.main()
