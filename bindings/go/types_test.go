package enrich_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"

	"example.invalid/libenrich/enrich"
)

func TestOpenKeepsTheSystemError(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.mdb")
	_, err := enrich.Open(missing, enrich.ReadOnly)
	var e *enrich.Error
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, enrich.ErrIO) || !errors.As(err, &e) ||
		e.Errno != syscall.ENOENT || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("missing store: %#v", err)
	}
	if e.Detail != missing+": no such file or directory" || !strings.Contains(err.Error(), missing) {
		t.Fatalf("detail %q / %v", e.Detail, err)
	}
	// A directory without data.mdb: not a store, and the missing file is
	// named by errno too.
	if _, err := enrich.Open(t.TempDir(), enrich.ReadOnly); !errors.Is(err, fs.ErrNotExist) ||
		!errors.Is(err, enrich.ErrNotStore) {
		t.Fatalf("empty directory: %v", err)
	}
	// No permission (root reads everything: skip there).
	if os.Geteuid() != 0 {
		dir := filepath.Join(t.TempDir(), "locked")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o700)
		if _, err := enrich.Open(filepath.Join(dir, "s.mdb"), enrich.ReadOnly); !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("no permission: %v", err)
		}
	}
	// Errors without a system cause unwrap to nothing.
	_, err = enrich.Open(missing, enrich.ReadOnly|enrich.Create)
	if !errors.Is(err, enrich.ErrInvalid) || errors.Unwrap(err) != nil {
		t.Fatalf("bad flags: %v", err)
	}
	if errors.Unwrap(enrich.ErrNotFound) != nil {
		t.Fatal("a sentinel has a cause")
	}
}

func TestStatsTyped(t *testing.T) {
	s, err := enrich.Open(seedStore(t), enrich.ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Path != s.Path() || st.FileBytes == 0 || st.PageSize < 512 || st.MapBytes < st.MapUsedBytes ||
		st.Readers.Max < 1 || !reflect.DeepEqual(st.Tables, map[string]enrich.TableStats{
		"products": {Key: []string{"productId"}, Items: 2, Checksums: "yes"}}) {
		t.Fatalf("%+v", st)
	}
	// The type covers every member the C library writes.
	raw, err := s.StatsJSON()
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var again enrich.StoreStats
	if err := dec.Decode(&again); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
}

func TestDeliveryConfig(t *testing.T) {
	c := &enrich.DeliveryConfig{StreamName: "orders", BufferSeconds: enrich.Ptr(0.0),
		GzipLevel: enrich.Ptr(0), FileExtension: enrich.Ptr(""), MaxRetries: enrich.Ptr(0),
		TimestampSource: enrich.TimestampProcessing,
		PartitionKeys:   map[string]string{"category": "category"},
		Prefix:          "data/!{partitionKeyFromQuery:category}/"}
	b, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"prefix":"data/!{partitionKeyFromQuery:category}/","stream_name":"orders",` +
		`"file_extension":"","buffer_seconds":0,"gzip_level":0,"timestamp_source":"processing",` +
		`"partition_keys":{"category":"category"},"max_retries":0}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if b, _ := (&enrich.DeliveryConfig{}).JSON(); string(b) != "{}" {
		t.Fatalf("zero config %s", b)
	}

	_, p := seedPipeline(t)
	root := filepath.Join(t.TempDir(), "lake")
	d, err := p.OpenDeliveryConfig(root, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(enrich.InputNDJSON, seedEvents(t), 3); err != nil {
		t.Fatal(err)
	}
	// buffer_seconds 0: due at once by the clock.
	if err := d.FlushNow(); err != nil {
		t.Fatal(err)
	}
	// The category prefix (escaped as Firehose does); PROD-999 has no
	// category, so its record goes to the error prefix.
	objs := objectsUnder(t, filepath.Join(root, "data"))
	if len(objs) != 1 || filepath.Base(filepath.Dir(objs[0])) != "IoT%20Devices" ||
		!strings.HasPrefix(filepath.Base(objs[0]), "orders-1-") || strings.HasSuffix(objs[0], ".gz") {
		t.Fatalf("objects %v (all %v)", objs, objectsUnder(t, root))
	}
	if err := d.Close(false); err != nil {
		t.Fatal(err)
	}
	// nil: the defaults; a bad value: ErrInvalid naming the member.
	d, err = p.OpenDeliveryConfig(filepath.Join(t.TempDir(), "lake2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Close(true)
	_, err = p.OpenDeliveryConfig(t.TempDir(), &enrich.DeliveryConfig{GzipLevel: enrich.Ptr(10)})
	var e *enrich.Error
	if !errors.Is(err, enrich.ErrInvalid) || !errors.As(err, &e) || !strings.Contains(e.Detail, "gzip_level") {
		t.Fatalf("bad level: %v", err)
	}
}

// The configuration table of docs/delivery.md and the JSON names of
// DeliveryConfig are the same set.
func TestDeliveryConfigMatchesTheDocs(t *testing.T) {
	doc := string(readFile(t, filepath.Join(srcdir(t), "docs", "delivery.md")))
	start := strings.Index(doc, "## Configuration")
	end := strings.Index(doc[start+1:], "\n## ")
	if start < 0 || end < 0 {
		t.Fatal("docs/delivery.md: no Configuration section")
	}
	var documented []string
	row := regexp.MustCompile("(?m)^\\| (`[a-z_]+`(?:, `[a-z_]+`)*) \\|")
	for _, m := range row.FindAllStringSubmatch(doc[start:start+1+end], -1) {
		for _, name := range strings.Split(m[1], ", ") {
			documented = append(documented, strings.Trim(name, "`"))
		}
	}
	var fields []string
	ty := reflect.TypeOf(enrich.DeliveryConfig{})
	for i := 0; i < ty.NumField(); i++ {
		fields = append(fields, strings.Split(ty.Field(i).Tag.Get("json"), ",")[0])
	}
	sort.Strings(documented)
	sort.Strings(fields)
	if len(documented) < 15 || !reflect.DeepEqual(documented, fields) {
		t.Fatalf("docs/delivery.md: %v\nDeliveryConfig: %v", documented, fields)
	}
}

func TestFlushClockIsMinusOne(t *testing.T) {
	// The C library's "now" is -1; FlushNow is Flush(FlushClock).
	if enrich.FlushClock != -1 {
		t.Fatal(enrich.FlushClock)
	}
	_, p := seedPipeline(t)
	d, err := p.OpenDeliveryConfig(filepath.Join(t.TempDir(), "lake"),
		&enrich.DeliveryConfig{BufferSeconds: enrich.Ptr(900.0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(enrich.InputNDJSON, seedEvents(t), 3); err != nil {
		t.Fatal(err)
	}
	// Not due yet by the clock (900 s): nothing published; FlushAll publishes.
	m0, _ := d.Metrics(false)
	if err := d.FlushNow(); err != nil {
		t.Fatal(err)
	}
	m1, _ := d.Metrics(false)
	if err := d.Flush(enrich.FlushAll); err != nil {
		t.Fatal(err)
	}
	m2, _ := d.Metrics(false)
	if m0.Objects != 0 || m1.Objects != 0 || m2.Objects != 1 {
		t.Fatalf("objects %d, %d, %d", m0.Objects, m1.Objects, m2.Objects)
	}
	d.Close(false)
	if err := d.FlushNow(); !errors.Is(err, enrich.ErrClosed) {
		t.Fatal(err)
	}
}

func TestAWSInvalidRecords(t *testing.T) {
	s, err := enrich.Open(seedStore(t), enrich.ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rules := `{"lookups":[{"key":"productId","table":"products"}],` +
		`"firehose":{"invalid":"failed"},"pipes":{"invalid":"remove"},` +
		`"validate":{"required":["eventId"],"ranges":{"quantity":{"min":1,"max":4}}}}`
	p, err := s.Compile([]byte(rules), enrich.ClockMs(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	lines := seedEventLines(t)
	fh := `{"records":[`
	for i, l := range lines {
		if i > 0 {
			fh += ","
		}
		fh += `{"recordId":"r` + string(rune('1'+i)) + `","data":"` + b64(l) + `"}`
	}
	fh += `]}`
	b, err := p.Enrich(enrich.InputFirehose, []byte(fh), enrich.EncodeFirehose)
	if err != nil {
		t.Fatal(err)
	}
	if b.Records[0].Invalid != "quantity: above max 4" || b.Records[0].Result != enrich.ResultFailed ||
		b.Records[0].ID != "r1" || b.Records[1].Invalid != "" || b.Records[1].Result != enrich.ResultOK ||
		!reflect.DeepEqual(b.InvalidReasons(), map[string]int{"quantity: above max 4": 1}) {
		t.Fatalf("%+v", b.Records)
	}
	if !bytes.HasPrefix(b.Output, []byte(`{"records":[{"recordId":"r1","result":"ProcessingFailed"},`)) {
		t.Fatalf("%s", b.Output)
	}
	// Pipes: the invalid record is removed from the response.
	pipes := `[{"eventID":"a","data":` + lines[0] + `},{"eventID":"b","data":` + lines[1] + `}]`
	b, err = p.Enrich(enrich.InputPipes, []byte(pipes), enrich.EncodeJSONArray)
	if err != nil || string(b.Output) != "["+seedEnriched[1]+"]" || b.Records[0].Result != enrich.ResultDropped {
		t.Fatalf("%s %v", b.Output, err)
	}
	// Kinesis has no "invalid" here: nothing is checked.
	kin := `{"Records":[{"kinesis":{"sequenceNumber":"1","data":"` + b64(lines[0]) + `"}}]}`
	b, err = p.Enrich(enrich.InputKinesis, []byte(kin), enrich.EncodeKinesisResponse)
	if err != nil || b.Records[0].Invalid != "" || b.InvalidReasons() != nil {
		t.Fatalf("%+v %v", b, err)
	}
	// The same through a Context.
	c, err := p.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Run(enrich.InputFirehose, []byte(fh)); err != nil {
		t.Fatal(err)
	}
	if c.Invalid(0) != "quantity: above max 4" || c.Invalid(1) != "" || c.Invalid(-1) != "" {
		t.Fatal(c.Invalid(0))
	}
}
