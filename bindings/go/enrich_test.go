package enrich_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.invalid/libenrich/enrich"
)

func TestSeedNDJSON(t *testing.T) {
	_, p := seedPipeline(t)
	b, err := p.Enrich(enrich.InputNDJSON, seedEvents(t), enrich.EncodeNDJSON)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join(seedEnriched, "\n") + "\n"
	if string(b.Output) != want {
		t.Fatalf("output:\n%s\nwant:\n%s", b.Output, want)
	}
	if len(b.Records) != 3 {
		t.Fatalf("%d records", len(b.Records))
	}
	wantOutcome := []enrich.Outcome{enrich.OutcomeSuccess, enrich.OutcomeSuccess, enrich.OutcomeNotFound}
	for i, r := range b.Records {
		if string(r.Data) != seedEnriched[i] || r.Outcome != wantOutcome[i] || r.Err != nil ||
			r.Result != enrich.ResultOK || r.ID != "" || r.ArrivalMs != -1 {
			t.Errorf("record %d: %+v", i, r)
		}
	}
	if b.Count(enrich.OutcomeSuccess) != 2 || b.Count(enrich.OutcomeNotFound) != 1 {
		t.Error("counts")
	}
}

func TestSeedJSONArrayAndRecordsOnly(t *testing.T) {
	_, p := seedPipeline(t)
	arr := "[" + strings.Join(seedEventLines(t), ",") + "]"
	b, err := p.Enrich(enrich.InputJSONArray, []byte(arr), enrich.EncodeJSONArray)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[" + strings.Join(seedEnriched, ",") + "]"; string(b.Output) != want {
		t.Fatalf("output %s", b.Output)
	}
	for i, r := range b.Records {
		if string(r.Data) != seedEnriched[i] {
			t.Errorf("record %d: %s", i, r.Data)
		}
		if cap(r.Data) != len(r.Data) {
			t.Errorf("record %d: appending would overwrite the output", i)
		}
	}
	// No encoding: records only, in their own memory.
	b, err = p.Enrich(enrich.InputNDJSON, seedEvents(t), enrich.EncodeNone)
	if err != nil || b.Output != nil {
		t.Fatal(err, b.Output)
	}
	for i, r := range b.Records {
		if string(r.Data) != seedEnriched[i] {
			t.Errorf("record %d: %s", i, r.Data)
		}
	}
}

var seqs = []string{"49590338271490256608559692538361571095921575989136588898",
	"49590338271490256608559692540925702759324208523137515618",
	"49590338271490256608559692540925702759324208523137515619"}

func TestPipes(t *testing.T) {
	_, p := seedPipeline(t)
	var recs []string
	for i, e := range seedEventLines(t) {
		recs = append(recs, fmt.Sprintf(`{"eventID":"shardId-000000000006:%s","data":"%s",`+
			`"approximateArrivalTimestamp":%d.987,"partitionKey":"1"}`, seqs[i], b64(e), 1545084650+i))
	}
	b, err := p.Enrich(enrich.InputPipes, []byte("["+strings.Join(recs, ",")+"]"), enrich.EncodeJSONArray)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[" + strings.Join(seedEnriched, ",") + "]"; string(b.Output) != want {
		t.Fatalf("output %s", b.Output)
	}
	for i, r := range b.Records {
		if r.ID != "shardId-000000000006:"+seqs[i] || r.ArrivalMs != int64(1545084650+i)*1000+987 {
			t.Errorf("record %d: id %q arrival %d", i, r.ID, r.ArrivalMs)
		}
	}
}

func TestFirehose(t *testing.T) {
	_, p := seedPipeline(t)
	lines := seedEventLines(t)
	var recs []string
	for i, e := range lines {
		recs = append(recs, fmt.Sprintf(`{"recordId":"record%d","approximateArrivalTimestamp":1510772160000,"data":"%s"}`,
			i+1, b64(e)))
	}
	recs = append(recs, `{"recordId":"record4","data":"***"}`)
	event := `{"invocationId":"invoked123","records":[` + strings.Join(recs, ",") + `]}`
	b, err := p.Enrich(enrich.InputFirehose, []byte(event), enrich.EncodeFirehose)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Records []struct {
			RecordID string `json:"recordId"`
			Result   string `json:"result"`
			Data     string `json:"data"`
			Metadata struct {
				PartitionKeys map[string]string `json:"partitionKeys"`
			} `json:"metadata"`
		} `json:"records"`
	}
	if err := json.Unmarshal(b.Output, &resp); err != nil {
		t.Fatalf("%v: %s", err, b.Output)
	}
	if len(resp.Records) != 4 {
		t.Fatalf("%s", b.Output)
	}
	for i, r := range resp.Records[:3] {
		data, _ := base64.StdEncoding.DecodeString(r.Data)
		if r.RecordID != fmt.Sprintf("record%d", i+1) || r.Result != "Ok" || string(data) != seedEnriched[i]+"\n" ||
			r.Metadata.PartitionKeys["day"] != "15" {
			t.Errorf("response record %d: %+v", i, r)
		}
		if b.Records[i].ID != r.RecordID || b.Records[i].ArrivalMs != 1510772160000 || b.Records[i].Result != enrich.ResultOK {
			t.Errorf("record %d: %+v", i, b.Records[i])
		}
	}
	if r := resp.Records[3]; r.Result != "ProcessingFailed" || r.RecordID != "record4" {
		t.Errorf("bad record: %+v", r)
	}
	r := b.Records[3]
	if r.Outcome != enrich.OutcomeError || r.Result != enrich.ResultFailed || !errors.Is(r.Err, enrich.ErrBase64) {
		t.Errorf("bad record: %+v", r)
	}
	// The other encodings of the same batch.
	c, err := p.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Run(enrich.InputFirehose, []byte(event)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Encode(enrich.EncodeKinesisResponse); !errors.Is(err, enrich.ErrInvalid) {
		t.Errorf("kinesis response of firehose input: %v", err)
	}
	part, err := c.Partition(0)
	if err != nil || part != "year=2024/month=01/day=15" {
		t.Errorf("partition %q %v", part, err)
	}
}

func TestKinesis(t *testing.T) {
	_, p := seedPipeline(t)
	lines := seedEventLines(t)
	data := []string{b64(lines[0]), b64("not json"), "***"}
	var recs []string
	for i := range lines {
		recs = append(recs, fmt.Sprintf(`{"kinesis":{"partitionKey":"1","sequenceNumber":"%s","data":"%s",`+
			`"approximateArrivalTimestamp":1545084650.987},"eventSource":"aws:kinesis"}`, seqs[i], data[i]))
	}
	b, err := p.Enrich(enrich.InputKinesis, []byte(`{"Records":[`+strings.Join(recs, ",")+`]}`),
		enrich.EncodeKinesisResponse)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"batchItemFailures":[{"itemIdentifier":"` + seqs[1] + `"},{"itemIdentifier":"` + seqs[2] + `"}]}`
	if string(b.Output) != want {
		t.Fatalf("output %s", b.Output)
	}
	if !errors.Is(b.Records[1].Err, enrich.ErrJSON) || !errors.Is(b.Records[2].Err, enrich.ErrBase64) ||
		b.Records[0].Err != nil || b.Records[1].Result != enrich.ResultFailed {
		t.Errorf("records %+v", b.Records)
	}
	if b.Records[0].ID != seqs[0] || b.Records[0].ArrivalMs != 1545084650987 {
		t.Errorf("record 0: %+v", b.Records[0])
	}
}

// Every AWS fixture of tests/fixtures/aws enriches without a batch error,
// one result per record.
func TestAWSFixtures(t *testing.T) {
	_, p := seedPipeline(t)
	dir := filepath.Join(srcdir(t), "tests", "fixtures", "aws")
	cases := map[string]enrich.Input{
		"firehose-directput-event-sqs-payload.powertools.json":               enrich.InputFirehose,
		"firehose-directput-event.powertools.json":                           enrich.InputFirehose,
		"firehose-kinesis-source-event-legacy-subseq-string.powertools.json": enrich.InputFirehose,
		"firehose-kinesis-source-event.aws-lambda-go.json":                   enrich.InputFirehose,
		"firehose-kinesis-source-event.powertools.json":                      enrich.InputFirehose,
		"lambda-kinesis-event-roundtrip.java-libs.json":                      enrich.InputKinesis,
		"lambda-kinesis-event.aws-lambda-go.json":                            enrich.InputKinesis,
		"lambda-kinesis-event.powertools.json":                               enrich.InputKinesis,
		"pipes-kinesis-enrichment-input.awsdocs.json":                        enrich.InputPipes,
	}
	enc := map[enrich.Input]enrich.Encoding{enrich.InputFirehose: enrich.EncodeFirehose,
		enrich.InputKinesis: enrich.EncodeKinesisResponse, enrich.InputPipes: enrich.EncodeJSONArray}
	for name, in := range cases {
		b, err := p.Enrich(in, readFile(t, filepath.Join(dir, name)), enc[in])
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(b.Records) == 0 || !json.Valid(b.Output) {
			t.Errorf("%s: %d records, output %s", name, len(b.Records), b.Output)
		}
		for i, r := range b.Records {
			if r.ID == "" && in != enrich.InputPipes {
				t.Errorf("%s: record %d has no id", name, i)
			}
		}
	}
	// A Firehose response fed back as input is not an input.
	_, err := p.Enrich(enrich.InputFirehose, readFile(t, filepath.Join(dir, "firehose-response-NONCONFORMING.aws-lambda-go.json")),
		enrich.EncodeFirehose)
	if !errors.Is(err, enrich.ErrJSON) {
		t.Errorf("response as input: %v", err)
	}
}

func TestRecordErrors(t *testing.T) {
	_, p := seedPipeline(t)
	in := "{\"productId\":\"PROD-001\"}\nnot json\n[1]\n{\"productId\":true}\n{\"eventId\":\"x\"}\n\n"
	b, err := p.Enrich(enrich.InputNDJSON, []byte(in), enrich.EncodeNDJSON)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		o   enrich.Outcome
		err error
	}{{enrich.OutcomeSuccess, nil}, {enrich.OutcomeError, enrich.ErrJSON},
		{enrich.OutcomeError, enrich.ErrNotObject}, {enrich.OutcomeError, enrich.ErrKeyType},
		{enrich.OutcomeNoKey, nil}}
	if len(b.Records) != len(want) {
		t.Fatalf("%d records", len(b.Records))
	}
	for i, w := range want {
		r := b.Records[i]
		if r.Outcome != w.o || !errors.Is(r.Err, w.err) || (w.err == nil) != (r.Err == nil) {
			t.Errorf("record %d: %v %v, want %v %v", i, r.Outcome, r.Err, w.o, w.err)
		}
	}
	var e *enrich.Error
	if !errors.As(b.Records[1].Err, &e) || e.Name != "ENRICH_E_JSON" || e.Code != -11 {
		t.Errorf("record error %#v", b.Records[1].Err)
	}
	if !strings.Contains(string(b.Records[1].Data), `"enrichmentError":"ENRICH_E_JSON`) {
		t.Errorf("%s", b.Records[1].Data)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := enrich.Open(filepath.Join(dir, "missing.mdb"), enrich.ReadOnly)
	var e *enrich.Error
	if !errors.Is(err, enrich.ErrIO) || !errors.As(err, &e) || e.Name != "ENRICH_E_IO" ||
		!strings.Contains(err.Error(), "ENRICH_E_IO") || !strings.Contains(err.Error(), "enrich_store_open") {
		t.Fatalf("open missing: %v", err)
	}
	if errors.Is(err, enrich.ErrNotFound) {
		t.Fatal("ErrIO is ErrNotFound")
	}
	_, err = enrich.Open(filepath.Join(dir, "x"), enrich.ReadOnly|enrich.Create)
	if !errors.Is(err, enrich.ErrInvalid) {
		t.Fatalf("rdonly|create: %v", err)
	}
	notStore := filepath.Join(dir, "not.mdb")
	os.WriteFile(notStore, bytes.Repeat([]byte("x"), 8192), 0o644)
	if _, err = enrich.Open(notStore, enrich.ReadOnly); !errors.Is(err, enrich.ErrNotStore) {
		t.Fatalf("not a store: %v", err)
	}

	path := seedStore(t)
	ro, err := enrich.Open(path, enrich.ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Put("products", []byte(`{"productId":"P"}`)); !errors.Is(err, enrich.ErrReadOnly) {
		t.Errorf("put on read-only: %v", err)
	}
	if _, err := ro.Get("products", []byte("PROD-404")); !errors.Is(err, enrich.ErrNotFound) {
		t.Errorf("get missing: %v", err)
	}
	if _, err := ro.Get("nope", []byte("PROD-001")); !errors.Is(err, enrich.ErrNoTable) {
		t.Errorf("get no table: %v", err)
	}
	item, err := ro.Get("products", []byte("PROD-001"))
	if err != nil || !bytes.Contains(item, []byte(`"productName":"Smart Sensor"`)) {
		t.Errorf("get: %s %v", item, err)
	}
	_, err = ro.Compile([]byte(`{"lookups":[{"key":"productId"}]}`))
	if !errors.Is(err, enrich.ErrRules) || !errors.As(err, &e) || e.Detail == "" {
		t.Errorf("bad rules: %v", err)
	}
	_, err = ro.Compile([]byte(`{"lookups":[{"key":"productId","table":"nope"}]}`))
	if !errors.Is(err, enrich.ErrNoTable) {
		t.Errorf("rules with unknown table: %v", err)
	}
	if _, err = ro.Compile(nil, enrich.MaxDepth(0)); !errors.Is(err, enrich.ErrInvalid) {
		t.Errorf("bad option: %v", err)
	}
	p, err := ro.Compile(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Enrich(enrich.InputJSONArray, []byte(`[{"a":1}`), enrich.EncodeNDJSON); !errors.Is(err, enrich.ErrJSON) ||
		!errors.As(err, &e) || e.Op != "enrich_batch_run" {
		t.Errorf("bad array: %v", err)
	}
	if _, err := p.Enrich(enrich.InputNDJSON, seedEvents(t), enrich.EncodeFirehose); !errors.Is(err, enrich.ErrInvalid) {
		t.Errorf("firehose response of ndjson input: %v", err)
	}
	if b, err := p.Enrich(enrich.InputNDJSON, nil, enrich.EncodeNDJSON); err != nil || len(b.Records) != 0 || len(b.Output) != 0 {
		t.Errorf("empty batch: %v %v", b, err)
	}
}

func TestPipesOverResponseLimit(t *testing.T) {
	_, p := seedPipeline(t, enrich.ResponseLimit(1024))
	var recs []string
	for i := 0; i < 20; i++ {
		recs = append(recs, fmt.Sprintf(`{"eventID":"e%d","data":"%s"}`, i, b64(seedEventLines(t)[0])))
	}
	b, err := p.Enrich(enrich.InputPipes, []byte("["+strings.Join(recs, ",")+"]"), enrich.EncodeJSONArray)
	if !errors.Is(err, enrich.ErrTooLarge) || b == nil || len(b.Records) != 20 || b.Output != nil ||
		string(b.Records[0].Data) != seedEnriched[0] {
		t.Fatalf("%v %+v", err, b)
	}
}

func TestStoreWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.mdb")
	s, err := enrich.Open(path, enrich.Create)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.DefineTable("stock", "region,sku"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("stock", []byte(`{"region":"eu","sku":"A1","qty":7}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get("stock", enrich.Key("eu", "A1")); err != nil || !bytes.Contains(got, []byte(`"qty":7`)) {
		t.Fatalf("%s %v", got, err)
	}
	n, err := s.Load("stock", []byte("region,sku,qty\neu,B2,3\nus,A1,1\n"),
		enrich.LoadOptions{Format: enrich.LoadCSV, CSVTypes: "qty:number"})
	if err != nil || n != 2 {
		t.Fatalf("csv %d %v", n, err)
	}
	n, err = s.Load("stock", []byte(`[{"region":"eu","sku":"C3"}]`),
		enrich.LoadOptions{Format: enrich.LoadJSONArray, Replace: true})
	if err != nil || n != 1 {
		t.Fatalf("replace %d %v", n, err)
	}
	if _, err := s.Get("stock", enrich.Key("eu", "A1")); !errors.Is(err, enrich.ErrNotFound) {
		t.Fatalf("replaced item still there: %v", err)
	}
	if err := s.Delete("stock", enrich.Key("eu", "C3")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("stock", enrich.Key("eu", "C3")); !errors.Is(err, enrich.ErrNotFound) {
		t.Fatal(err)
	}
	_, err = s.Load("stock", []byte("{\"region\":\"eu\"}\n"), enrich.LoadOptions{})
	var e *enrich.Error
	if !errors.Is(err, enrich.ErrItem) || !errors.As(err, &e) || !strings.Contains(e.Detail, "1") {
		t.Fatalf("item without key: %v", err)
	}
	raw, err := s.StatsJSON()
	if err != nil || !json.Valid(raw) || !bytes.Contains(raw, []byte(`"stock"`)) {
		t.Fatalf("stats %s %v", raw, err)
	}
	snap := filepath.Join(t.TempDir(), "snap.mdb")
	if err := s.Copy(snap); err != nil {
		t.Fatal(err)
	}
	if err := s.Copy(snap); !errors.Is(err, enrich.ErrIO) {
		t.Fatalf("copy onto existing: %v", err)
	}
}

func TestClose(t *testing.T) {
	s, p := seedPipeline(t)
	c, err := p.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(enrich.InputNDJSON, seedEvents(t)); err != nil || c.Len() != 3 ||
		string(c.Record(2)) != seedEnriched[2] || c.Outcome(2) != enrich.OutcomeNotFound {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // closes p and c too
		t.Fatal(err)
	}
	if _, err := p.Enrich(enrich.InputNDJSON, seedEvents(t), enrich.EncodeNDJSON); err != enrich.ErrClosed {
		t.Errorf("enrich after close: %v", err)
	}
	if err := c.Run(enrich.InputNDJSON, seedEvents(t)); err != enrich.ErrClosed {
		t.Errorf("run after close: %v", err)
	}
	if _, err := s.Get("products", []byte("PROD-001")); err != enrich.ErrClosed {
		t.Errorf("get after close: %v", err)
	}
	if _, err := s.Compile(nil); err != enrich.ErrClosed {
		t.Errorf("compile after close: %v", err)
	}
	if s.Close() != nil || p.Close() != nil || c.Close() != nil {
		t.Error("second close")
	}
}

func TestVersion(t *testing.T) {
	if v := enrich.Version(); v == "" || strings.Count(v, ".") != 2 {
		t.Errorf("version %q", v)
	}
}
