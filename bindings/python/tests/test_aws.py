"""enrich.aws: the three Lambda handlers over the C shapes. The seed's three
events in each shape and every AWS fixture, with exact expected outputs;
EMF lines; store opened once; a missing store fails loudly."""
import base64
import io
import json
import os
import unittest
from unittest import mock

import enrich
from enrich import aws

from _support import (FIXED_CLOCK, FIXTURES_AWS, SEED_ENRICHED, SEED_EVENT_LINES,
                      TempDirTestCase, read)


def b64(b):
    return base64.b64encode(b).decode("ascii")


def fixture(name):
    return read(os.path.join(FIXTURES_AWS, name))


SEQ = ["49590338271490256608559692538361571095921575989136588898",
       "49590338271490256608559692540925702759324208523137515618",
       "49590338271490256608559692540925702759324208523137515619"]
SEED_PARTITION = {"year": "2024", "month": "01", "day": "15"}
CLOCK_PARTITION = {"year": "2024", "month": "02", "day": "01"}   # FIXED_CLOCK


def seed_pipes():
    return [{"kinesisSchemaVersion": "1.0", "partitionKey": "1", "sequenceNumber": SEQ[i],
             "data": b64(e), "approximateArrivalTimestamp": 1545084650.987 + i,
             "eventSource": "aws:kinesis", "eventVersion": "1.0",
             "eventID": "shardId-000000000006:" + SEQ[i], "eventName": "aws:kinesis:record",
             "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
             "awsRegion": "us-east-2",
             "eventSourceARN": "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream"}
            for i, e in enumerate(SEED_EVENT_LINES)]


def seed_firehose():
    return {"invocationId": "invoked123",
            "deliveryStreamArn": "arn:aws:kinesis:basic",
            "region": "us-east-2",
            "records": [{"recordId": f"record{i + 1}", "approximateArrivalTimestamp": 1510772160000,
                         "data": b64(e)} for i, e in enumerate(SEED_EVENT_LINES)]}


def seed_kinesis():
    return {"Records": [{"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "1",
                                     "sequenceNumber": SEQ[i], "data": b64(e),
                                     "approximateArrivalTimestamp": 1545084650.987},
                         "eventSource": "aws:kinesis", "eventVersion": "1.0",
                         "eventID": "shardId-000000000006:" + SEQ[i],
                         "eventName": "aws:kinesis:record", "awsRegion": "us-east-2"}
                        for i, e in enumerate(SEED_EVENT_LINES)]}


def firehose_ok(record_id, enriched, partition):
    return {"recordId": record_id, "result": "Ok", "data": b64(enriched + b"\n"),
            "metadata": {"partitionKeys": partition}}


def firehose_failed(record_id):
    return {"recordId": record_id, "result": "ProcessingFailed"}


def json_error(raw):
    """The error record of an event whose bytes are not JSON."""
    return (b'{"enrichmentStatus":"error","enrichmentError":"ENRICH_E_JSON: not valid JSON",'
            b'"rawData":"' + base64.b64encode(raw) + b'"}')


def no_key(raw):
    """An object event without productId: the status spliced before its '}'."""
    body = raw.rstrip()[:-1].rstrip()
    return body + (b"," if body != b"{" else b"") + b'"enrichmentStatus":"no_product_id"}'


class Ctx:
    aws_request_id = "req-1"


class HandlerTestCase(TempDirTestCase):
    def handler(self, shape, **kw):
        self.out = io.StringIO()
        kw.setdefault("options", {"clock_ms": FIXED_CLOCK})
        h = aws.Handler(shape, store=kw.pop("store", self.store_path), env={}, out=self.out, **kw)
        self.addCleanup(h.close)
        return h

    def emf_lines(self):
        return [json.loads(line) for line in self.out.getvalue().splitlines()]


class SeedShapesTest(HandlerTestCase):
    def test_pipes(self):
        h = self.handler("pipes")
        want = b"[" + b",".join(SEED_ENRICHED) + b"]"
        self.assertEqual(h.invoke_bytes(json.dumps(seed_pipes())), want)
        self.assertEqual(h(seed_pipes(), Ctx()), json.loads(want))

    def test_pipes_with_decoded_data_and_event_id_field(self):
        # An enrichment InputTemplate hands data over as JSON, not base64.
        rules = os.path.join(self.dir, "rules.json")
        with open(rules, "w") as f:
            json.dump({"lookups": [{"key": "productId", "table": "products"}],
                       "pipes": {"event_id_field": "eventID"}}, f)
        h = self.handler("pipes", rules=rules)
        event = [{"eventID": "shard:1", "data": {"productId": "PROD-002"}}]
        self.assertEqual(h.invoke_bytes(json.dumps(event, separators=(",", ":"))),
                         b'[{"productId":"PROD-002","productName":"Temperature Monitor",'
                         b'"category":"IoT Devices","price":79.99,"enrichmentStatus":"success",'
                         b'"enrichmentTimestamp":"2024-02-01T00:00:00.000Z","eventID":"shard:1"}]')

    def test_firehose(self):
        h = self.handler("firehose")
        want = {"records": [firehose_ok(f"record{i + 1}", e, SEED_PARTITION)
                            for i, e in enumerate(SEED_ENRICHED)]}
        got = h.invoke_bytes(json.dumps(seed_firehose()))
        self.assertEqual(got, json.dumps(want, separators=(",", ":")).encode())
        self.assertEqual(h(seed_firehose()), want)

    def test_kinesis(self):
        h = self.handler("kinesis")
        self.assertEqual(h.invoke_bytes(json.dumps(seed_kinesis())), b'{"batchItemFailures":[]}')
        bad = seed_kinesis()
        bad["Records"][1]["kinesis"]["data"] = b64(b"not json")
        bad["Records"][2]["kinesis"]["data"] = "***"
        self.assertEqual(h(bad), {"batchItemFailures": [{"itemIdentifier": SEQ[1]},
                                                        {"itemIdentifier": SEQ[2]}]})

    def test_emf_line_per_invocation(self):
        h = self.handler("firehose")
        h(seed_firehose(), Ctx())
        ev = seed_firehose()
        ev["records"][0]["data"] = b64(b"[1]")
        h(ev)
        lines = self.emf_lines()
        self.assertEqual(len(lines), 2)
        first = lines[0]
        self.assertEqual({k: first[k] for k in ("Handler", "Records", "Success", "NotFound", "NoKey",
                                                "Error", "Corrupt", "Dropped", "OverLimit",
                                                "Invalid", "InvocationError")},
                         {"Handler": "firehose", "Records": 3, "Success": 2, "NotFound": 1,
                          "NoKey": 0, "Error": 0, "Corrupt": 0, "Dropped": 0, "OverLimit": 0,
                          "Invalid": 0,
                          "InvocationError": 0})
        self.assertEqual(first["requestId"], "req-1")
        self.assertEqual((lines[1]["Success"], lines[1]["Error"]), (1, 1))
        for line in lines:
            check_emf(self, line)
            self.assertGreaterEqual(line["BatchDuration"], 0)
            self.assertGreaterEqual(line["HandlerDuration"], line["BatchDuration"])

    def test_store_opened_once_per_container(self):
        h = self.handler("kinesis")
        opened = []
        real = enrich.Store

        def counting(*a, **kw):
            s = real(*a, **kw)
            opened.append(s)
            return s
        with mock.patch.object(enrich, "Store", counting):
            for _ in range(5):
                h(seed_kinesis())
        self.assertEqual(len(opened), 1)
        self.assertIs(h.store, opened[0])
        self.assertTrue(h.store.readonly)

    def test_response_limit(self):
        # Pipes cannot take a partial enrichment: the invocation fails.
        h = self.handler("pipes", options={"clock_ms": FIXED_CLOCK, "response_limit": 1024})
        big = seed_pipes() * 10
        with self.assertRaises(enrich.TooLargeError):
            h(big)
        line = self.emf_lines()[-1]
        self.assertEqual(line["InvocationError"], 1)
        # Firehose returns what fits and fails the rest without data.
        h = self.handler("firehose", options={"clock_ms": FIXED_CLOCK, "response_limit": 1024})
        ev = seed_firehose()
        ev["records"] = ev["records"] * 4
        for i, r in enumerate(ev["records"]):
            r["recordId"] = f"r{i}"
        got = h(ev)
        results = [r["result"] for r in got["records"]]
        self.assertEqual(len(results), 12)
        self.assertEqual(results[0], "Ok")
        self.assertEqual(results[-1], "ProcessingFailed")
        self.assertEqual(self.emf_lines()[-1]["OverLimit"], results.count("ProcessingFailed"))


class FixturesTest(HandlerTestCase):
    """Every AWS fixture through the handler of its shape."""

    def check_firehose(self, name, kinds):
        event = json.loads(fixture(name))
        want = {"records": []}
        for rec, kind in zip(event["records"], kinds, strict=True):
            raw = base64.b64decode(rec["data"])
            if kind == "json_error":
                want["records"].append(firehose_failed(rec["recordId"]))
            else:
                want["records"].append(firehose_ok(rec["recordId"], no_key(raw), CLOCK_PARTITION))
        h = self.handler("firehose")
        self.assertEqual(h.invoke_bytes(fixture(name)),
                         json.dumps(want, separators=(",", ":")).encode(), name)
        self.assertEqual(h(event), want)

    def test_firehose_kinesis_source_aws_lambda_go(self):
        self.check_firehose("firehose-kinesis-source-event.aws-lambda-go.json",
                            ["json_error", "json_error"])

    def test_firehose_kinesis_source_powertools(self):
        self.check_firehose("firehose-kinesis-source-event.powertools.json",
                            ["json_error", "no_key"])

    def test_firehose_kinesis_source_legacy_subsequence_string(self):
        self.check_firehose("firehose-kinesis-source-event-legacy-subseq-string.powertools.json",
                            ["json_error", "no_key"])

    def test_firehose_direct_put(self):
        self.check_firehose("firehose-directput-event.powertools.json", ["json_error", "no_key"])

    def test_firehose_direct_put_sqs_payload(self):
        self.check_firehose("firehose-directput-event-sqs-payload.powertools.json", ["no_key"])

    def test_firehose_response_fed_back_is_rejected(self):
        h = self.handler("firehose")
        with self.assertRaises(enrich.JsonError) as cm:
            h(json.loads(fixture("firehose-response-NONCONFORMING.aws-lambda-go.json")))
        self.assertIn("result", cm.exception.detail)
        self.assertEqual(self.emf_lines()[-1]["InvocationError"], 1)

    def check_kinesis(self, name):
        event = json.loads(fixture(name))
        seqs = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
        h = self.handler("kinesis")
        want = {"batchItemFailures": [{"itemIdentifier": s} for s in seqs]}  # none is JSON
        self.assertEqual(h.invoke_bytes(fixture(name)),
                         json.dumps(want, separators=(",", ":")).encode(), name)
        self.assertEqual(h(event), want)
        self.assertEqual(self.emf_lines()[-1]["Error"], len(seqs))

    def test_kinesis_aws_lambda_go(self):
        self.check_kinesis("lambda-kinesis-event.aws-lambda-go.json")

    def test_kinesis_powertools(self):
        self.check_kinesis("lambda-kinesis-event.powertools.json")

    def test_kinesis_java_roundtrip_exponent_timestamp(self):
        self.check_kinesis("lambda-kinesis-event-roundtrip.java-libs.json")

    def test_pipes_awsdocs(self):
        event = json.loads(fixture("pipes-kinesis-enrichment-input.awsdocs.json"))
        want = b"[" + b",".join(json_error(base64.b64decode(r["data"])) for r in event) + b"]"
        h = self.handler("pipes")
        self.assertEqual(h.invoke_bytes(fixture("pipes-kinesis-enrichment-input.awsdocs.json")),
                         want)
        self.assertEqual(h(event), json.loads(want))

    def test_emf_fixtures_and_ours_have_the_same_shape(self):
        for name in ("emf-single-metric.powertools.json", "emf-multi-value.powertools.json"):
            check_emf(self, json.loads(fixture(name)))
        h = self.handler("pipes")
        check_emf(self, h.emf(dict.fromkeys(aws._COUNT_METRICS, 0), 1.5, 2.0, Ctx()))


def check_emf(test, doc):
    """The rules of CloudWatch's Embedded Metric Format (docs/delivery.md, "Metrics")."""
    test.assertEqual(set(doc["_aws"]), {"Timestamp", "CloudWatchMetrics"})
    test.assertIsInstance(doc["_aws"]["Timestamp"], int)
    for directive in doc["_aws"]["CloudWatchMetrics"]:
        test.assertEqual(set(directive), {"Namespace", "Dimensions", "Metrics"})
        test.assertTrue(1 <= len(directive["Namespace"]) <= 1024)
        for dims in directive["Dimensions"]:
            test.assertLessEqual(len(dims), 30)
            for d in dims:
                test.assertIsInstance(doc[d], str)
        test.assertLessEqual(len(directive["Metrics"]), 100)
        for m in directive["Metrics"]:
            test.assertLessEqual(set(m), {"Name", "Unit", "StorageResolution"})
            value = doc[m["Name"]]
            values = value if isinstance(value, list) else [value]
            test.assertTrue(all(isinstance(v, (int, float)) for v in values), m["Name"])


VALIDATE = {"required": ["eventId", "productId"], "ranges": {"quantity": {"min": 1, "max": 4}}}
REASON = "quantity: above max 4"   # the first seed event (quantity 5)


class InvalidRecordsTest(HandlerTestCase):
    """The rule set's validate section in the responses (docs/aws.md,
    "Invalid records"), and the metrics that count invalid records."""

    def rules(self, **sections):
        path = os.path.join(self.dir, "rules.json")
        with open(path, "w") as f:
            json.dump({"lookups": [{"key": "productId", "table": "products"}],
                       "validate": VALIDATE, **sections}, f)
        return path

    def test_firehose_failed_and_dropped(self):
        for action, result in (("failed", "ProcessingFailed"), ("dropped", "Dropped")):
            h = self.handler("firehose", rules=self.rules(firehose={"invalid": action}))
            got = h(seed_firehose(), Ctx())
            self.assertEqual(got["records"][0], {"recordId": "record1", "result": result})
            self.assertEqual(got["records"][1:],
                             [firehose_ok(f"record{i + 2}", e, SEED_PARTITION)
                              for i, e in enumerate(SEED_ENRICHED[1:])])
            main, per_reason = self.emf_lines()[-2:]
            self.assertEqual(main["Invalid"], 1)
            self.assertEqual(main["Dropped"], 1 if action == "dropped" else 0)
            self.assertEqual({k: per_reason[k] for k in ("Handler", "Reason", "InvalidRecords",
                                                         "requestId")},
                             {"Handler": "firehose", "Reason": REASON, "InvalidRecords": 1,
                              "requestId": "req-1"})
            self.assertEqual(per_reason["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                             [["Handler", "Reason"]])
            for line in (main, per_reason):
                check_emf(self, line)

    def test_firehose_fixture_counts_per_reason(self):
        # record1 "Hello World" fails enrichment (not checked); record2
        # {"Hello": "World"} is enriched without eventId or productId.
        h = self.handler("firehose", rules=self.rules(firehose={"invalid": "failed"}))
        got = h(json.loads(fixture("firehose-directput-event.powertools.json")))
        self.assertEqual([r["result"] for r in got["records"]],
                         ["ProcessingFailed", "ProcessingFailed"])
        doubled = json.loads(fixture("firehose-kinesis-source-event.powertools.json"))
        doubled["records"] += [dict(r, recordId=r["recordId"] + "b") for r in doubled["records"]]
        h(doubled)
        lines = self.emf_lines()
        self.assertEqual([(l.get("Invalid"), l.get("Error")) for l in lines if "Records" in l],
                         [(1, 1), (2, 2)])
        reasons = [(l["Reason"], l["InvalidRecords"]) for l in lines if "Reason" in l]
        self.assertEqual(reasons, [("eventId: required", 1), ("eventId: required", 2)])

    def test_pipes_remove_and_keep(self):
        h = self.handler("pipes", rules=self.rules(pipes={"invalid": "remove"}))
        self.assertEqual(h.invoke_bytes(json.dumps(seed_pipes())),
                         b"[" + b",".join(SEED_ENRICHED[1:]) + b"]")
        h = self.handler("pipes", rules=self.rules(pipes={"invalid": "keep"}))
        got = h(seed_pipes())
        self.assertEqual(len(got), 3)
        self.assertEqual(got[0], dict(json.loads(SEED_ENRICHED[0]), validationError=REASON))
        self.assertEqual(got[1:], [json.loads(e) for e in SEED_ENRICHED[1:]])
        self.assertEqual(self.emf_lines()[-2]["Invalid"], 1)

    def test_kinesis_counted_not_retried(self):
        h = self.handler("kinesis", rules=self.rules(kinesis={"invalid": "count"}))
        self.assertEqual(h(seed_kinesis()), {"batchItemFailures": []})
        main, per_reason = self.emf_lines()
        self.assertEqual((main["Invalid"], main["Error"]), (1, 0))
        self.assertEqual((per_reason["Reason"], per_reason["InvalidRecords"]), (REASON, 1))
        # The fixtures' plain-text records fail enrichment: retried, not invalid.
        got = h(json.loads(fixture("lambda-kinesis-event.powertools.json")))
        self.assertEqual(len(got["batchItemFailures"]), 2)
        self.assertEqual(self.emf_lines()[-1]["Invalid"], 0)

    def test_batch_result_reasons(self):
        store = enrich.Store(self.store_path)
        self.addCleanup(store.close)
        with open(self.rules(firehose={"invalid": "dropped"}), "rb") as f:
            pipeline = enrich.Pipeline(store, f.read())
        ctx = pipeline.context(clock_ms=FIXED_CLOCK)
        r = ctx.run(json.dumps(seed_firehose()), "firehose")
        self.assertEqual(r.invalid_reasons, [REASON, None, None])
        self.assertEqual(r.invalid_reason(-3), REASON)
        self.assertEqual(r.result(0), enrich.RecordResult.DROPPED)
        # Not checked: another shape, or NDJSON.
        r = ctx.run(json.dumps(seed_kinesis()), "kinesis")
        self.assertEqual(r.invalid_reasons, [None, None, None])
        r = ctx.run(SEED_EVENT_LINES[0], "ndjson")
        self.assertIsNone(r.invalid_reason(0))

    def test_without_invalid_nothing_is_checked(self):
        h = self.handler("firehose", rules=self.rules())
        self.assertEqual([r["result"] for r in h(seed_firehose())["records"]], ["Ok"] * 3)
        self.assertEqual(len(self.emf_lines()), 1)
        self.assertEqual(self.emf_lines()[0]["Invalid"], 0)


class ConfigurationTest(TempDirTestCase):
    def setUp(self):
        super().setUp()
        aws._handlers.clear()
        self.addCleanup(aws._handlers.clear)

    def test_ready_handlers_read_the_environment(self):
        env = {"ENRICH_STORE": self.store_path, "ENRICH_CLOCK_MS": str(FIXED_CLOCK),
               "ENRICH_METRICS": "off"}
        with mock.patch.dict(os.environ, env):
            self.assertEqual(aws.pipes_handler(seed_pipes()),
                             [json.loads(e) for e in SEED_ENRICHED])
            self.assertEqual(aws.kinesis_handler(seed_kinesis()), {"batchItemFailures": []})
            got = aws.firehose_handler(seed_firehose())
            self.assertEqual([r["result"] for r in got["records"]], ["Ok"] * 3)
        for h in aws._handlers.values():
            h.close()

    def test_missing_store_fails_loudly_at_first_invocation(self):
        missing = os.path.join(self.dir, "nope.mdb")
        with mock.patch.dict(os.environ, {"ENRICH_STORE": missing}):
            out = io.StringIO()
            with mock.patch("sys.stdout", out):
                for _ in range(2):          # and at every later one
                    with self.assertRaises(aws.ConfigurationError) as cm:
                        aws.kinesis_handler(seed_kinesis())
                    msg = str(cm.exception)
                    self.assertIn(missing, msg)
                    self.assertIn("ENRICH_STORE", msg)
                    self.assertIn("ENRICH_E_IO", msg)
                    self.assertIsInstance(cm.exception.__cause__, enrich.IoError)
            lines = [json.loads(x) for x in out.getvalue().splitlines()]
            self.assertEqual([x["InvocationError"] for x in lines], [1, 1])

    def test_default_store_is_the_layer_path(self):
        self.assertEqual(aws.Handler("pipes", env={}).store_path, "/opt/enrich/store.mdb")

    def test_bad_rules_file(self):
        h = aws.Handler("pipes", store=self.store_path, rules=os.path.join(self.dir, "none.json"),
                        env={}, metrics=False)
        with self.assertRaises(aws.ConfigurationError) as cm:
            h(seed_pipes())
        self.assertIn("ENRICH_RULES", str(cm.exception))
        bad = os.path.join(self.dir, "bad.json")
        with open(bad, "w") as f:
            f.write('{"lookups": []}')
        h = aws.Handler("pipes", store=self.store_path, rules=bad, env={}, metrics=False)
        with self.assertRaises(aws.ConfigurationError) as cm:
            h(seed_pipes())
        self.assertIsInstance(cm.exception.__cause__, enrich.RulesError)

    def test_bad_environment_values(self):
        with self.assertRaises(aws.ConfigurationError):
            aws.Handler("pipes", env={"ENRICH_RESPONSE_LIMIT": "lots"})
        with self.assertRaises(ValueError):
            aws.Handler("sqs", env={})


if __name__ == "__main__":
    unittest.main()
