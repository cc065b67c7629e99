package enrich_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"example.invalid/libenrich/enrich"
)

type verifyReport struct {
	OK          bool   `json:"ok"`
	Mode        string `json:"mode"`
	Items       int    `json:"items"`
	FileCRC32C  string `json:"file_crc32c"`
	DamageCount int    `json:"damage_count"`
	Damage      []struct {
		Table string `json:"table"`
		Key   string `json:"key"`
	} `json:"damage"`
}

func verify(t *testing.T, s *enrich.Store, quick bool) verifyReport {
	t.Helper()
	b, err := s.Verify(quick)
	if err != nil {
		t.Fatal(err)
	}
	var r verifyReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return r
}

// Verify reports a flipped byte inside one item with its table and key, as
// a result rather than an error; the other items still read.
func TestVerifyFindsADamagedItem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.mdb")
	s, err := enrich.Open(path, enrich.Create)
	if err != nil {
		t.Fatal(err)
	}
	var lines bytes.Buffer
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&lines, "{\"k\":\"k%04d\",\"label\":\"needle-%04d\"}\n", i, i)
	}
	if _, err := s.Load("t", lines.Bytes(), enrich.LoadOptions{Key: "k"}); err != nil {
		t.Fatal(err)
	}
	full := verify(t, s, false)
	if !full.OK || full.Mode != "full" || full.Items != 1000 {
		t.Fatalf("healthy store: %+v", full)
	}
	if q := verify(t, s, true); !q.OK || q.Mode != "quick" || q.FileCRC32C != full.FileCRC32C {
		t.Fatalf("quick: %+v", q)
	}
	s.Close()

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(data, []byte("needle-0500"))
	if at < 0 || bytes.Count(data, []byte("needle-0500")) != 1 {
		t.Fatal("the item's text is not in the file once")
	}
	data[at] = 'N'
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}

	s, err = enrich.Open(path, enrich.ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bad := verify(t, s, false)
	if bad.OK || bad.DamageCount != 1 || bad.Damage[0].Table != "t" || bad.Damage[0].Key != "k0500" {
		t.Fatalf("damaged store: %+v", bad)
	}
	if _, err := s.Get("t", []byte("k0500")); !errors.Is(err, enrich.ErrCorrupt) {
		t.Fatalf("want ErrCorrupt, got %v", err)
	}
	if _, err := s.Get("t", []byte("k0499")); err != nil {
		t.Fatal(err)
	}
}
