package enrich_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.invalid/libenrich/enrich"
)

// A change page and its checkpoint commit together; a stale expectation
// writes nothing.
func TestApplyCheckpoint(t *testing.T) {
	s, err := enrich.Open(filepath.Join(t.TempDir(), "s.mdb"), enrich.Create)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	page := []byte(`{"Records":[{"eventName":"INSERT","dynamodb":{"NewImage":{"id":{"S":"a"},"n":{"N":"1"}}}}]}`)
	none := ""
	n, err := s.Apply("t", page, enrich.LoadOptions{Key: "id"},
		enrich.Checkpoint{Name: "feed", Value: "1", Expect: &none})
	if err != nil || n != 1 {
		t.Fatal(n, err)
	}
	zero := "0"
	if _, err := s.Apply("t", page, enrich.LoadOptions{}, enrich.Checkpoint{Name: "feed", Value: "2", Expect: &zero}); !errors.Is(err, enrich.ErrStale) {
		t.Fatalf("want ErrStale, got %v", err)
	}
	if v, err := s.CheckpointValue("feed"); err != nil || v != "1" {
		t.Fatal(v, err)
	}
	if _, err := s.Apply("", nil, enrich.LoadOptions{}, enrich.Checkpoint{Name: "other", Value: "x"}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Checkpoints("")
	if err != nil || string(all) != `{"feed":"1","other":"x"}` {
		t.Fatal(string(all), err)
	}
	if _, err := s.Apply("", nil, enrich.LoadOptions{}, enrich.Checkpoint{Name: "other"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckpointValue("other"); !errors.Is(err, enrich.ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	if _, err := s.Refresh(); !errors.Is(err, enrich.ErrInvalid) {
		t.Fatalf("a plain store is no snapshot folder: %v", err)
	}
}

// A snapshot folder follows its `current` file between batches.
func TestSnapshotFolderRefresh(t *testing.T) {
	folder := t.TempDir()
	publish := func(name, price string) {
		src, err := enrich.Open(filepath.Join(t.TempDir(), "w.mdb"), enrich.Create)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.Load("products", []byte(`{"productId":"P1","price":`+price+`}`),
			enrich.LoadOptions{Key: "productId"}); err != nil {
			t.Fatal(err)
		}
		if err := src.Copy(filepath.Join(folder, name)); err != nil {
			t.Fatal(err)
		}
		src.Close()
		tmp := filepath.Join(folder, ".current")
		if err := os.WriteFile(tmp, []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(folder, "current")); err != nil {
			t.Fatal(err)
		}
	}
	publish("a.mdb", "1")
	s, err := enrich.Open(folder, enrich.ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The items carry a price only: copy that (the seed's rules require
	// its three fields).
	p, err := s.Compile([]byte(`{"lookups":[{"key":"productId","table":"products","fields":["price"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	run := func() string {
		b, err := p.Enrich(enrich.InputNDJSON, []byte(`{"productId":"P1"}`), enrich.EncodeNDJSON)
		if err != nil {
			t.Fatal(err)
		}
		return string(b.Output)
	}
	if out := run(); !strings.Contains(out, `"price":1`) {
		t.Fatal(out)
	}
	publish("b.mdb", "2")
	if switched, err := s.Refresh(); err != nil || !switched {
		t.Fatal(switched, err)
	}
	if out := run(); !strings.Contains(out, `"price":2`) {
		t.Fatal(out)
	}
	// A folder's stats say which file it serves; the type covers them all.
	raw, err := s.StatsJSON()
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var st enrich.StoreStats
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	if st.Snapshot == nil || st.Snapshot.File != "b.mdb" || st.Snapshot.Switches != 1 {
		t.Fatalf("%s", raw)
	}
}
