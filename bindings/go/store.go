package enrich

import (
	"bytes"
	"encoding/json"
	"sync"
	"syscall"

	"example.invalid/libenrich/enrich/internal/capi"
)

// Store is an open reference store (enrich_store). It is safe for use by
// many goroutines: the pipelines made from it enrich concurrently, and
// the store's own calls (Load, Put, Get, ...) are serialized on it, since
// LMDB runs one writer at a time and the error detail lives on the handle.
type Store struct {
	mu        sync.Mutex // serializes C calls on the store handle
	h         capi.Store // nil once closed
	path      string
	pipelines map[*Pipeline]struct{}
}

// Open opens the store at path (a file, or a directory holding data.mdb).
// With ReadOnly it is an enricher's store; with Create it is created when
// missing. Close it when done: it is not closed by the garbage collector.
//
// A store that cannot be reached fails with ErrIO and the system error as
// its cause: errors.Is(err, fs.ErrNotExist) for a missing one,
// fs.ErrPermission for one that may not be read. A directory without
// data.mdb is ErrNotStore, with fs.ErrNotExist as its cause too.
func Open(path string, flags OpenFlags) (*Store, error) {
	var h uintptr
	var osErr int64
	if rc := capi.Go_store_open(path, uint(flags), &h, &osErr); rc != 0 {
		detail := path
		e := &Error{Code: rc, Name: capi.Status_name(rc), Msg: capi.Strerror(rc),
			Op: "enrich_store_open"}
		if osErr != 0 && (rc == ErrIO.Code || rc == ErrNoMem.Code ||
			(rc == ErrNotStore.Code && syscall.Errno(osErr) == syscall.ENOENT)) {
			e.Errno = syscall.Errno(osErr)
			detail += ": " + e.Errno.Error()
		}
		e.Detail = detail
		return nil, e
	}
	return &Store{h: capi.SwigcptrStore(h), path: path, pipelines: map[*Pipeline]struct{}{}}, nil
}

// Path is the path the store was opened with.
func (s *Store) Path() string { return s.path }

// Close closes the pipelines (and their contexts) made from the store,
// waiting for batches in flight, then the store. Closing twice is a no-op.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.h == nil {
		s.mu.Unlock()
		return nil
	}
	ps := make([]*Pipeline, 0, len(s.pipelines))
	for p := range s.pipelines {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	for _, p := range ps {
		p.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h != nil {
		capi.DeleteStore(s.h)
		s.h = nil
	}
	return nil
}

// errbufSize is the message buffer of the calls that report into their
// own (compile, delivery open); the C header says 512 bytes suffice.
const errbufSize = 512

// callMsg is call for the functions that write their detail into msg (a
// buffer of their own) rather than into the store's errmsg.
func (s *Store) callMsg(op string, msg []byte, f func(h capi.Store) int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return ErrClosed
	}
	if rc := f(s.h); rc != 0 {
		if i := bytes.IndexByte(msg, 0); i >= 0 {
			msg = msg[:i]
		}
		return codeErr(rc, op, string(msg))
	}
	return nil
}

// call runs f on the live handle under the store's lock and turns its
// status into an error with the store's errmsg.
func (s *Store) call(op string, f func(h capi.Store) int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return ErrClosed
	}
	if rc := f(s.h); rc != 0 {
		return codeErr(rc, op, capi.Store_errmsg(s.h))
	}
	return nil
}

// DefineTable creates a table with its key attribute(s) ("sku" or
// "region,sku"), or checks an existing one.
func (s *Store) DefineTable(table, key string) error {
	return s.call("enrich_store_define_table", func(h capi.Store) int {
		return capi.Store_define_table(h, table, key)
	})
}

// LoadOptions are the options of Store.Load.
type LoadOptions struct {
	Key      string     // key attribute(s); required for a new table, "" keeps the table's
	Format   LoadFormat // default LoadNDJSON
	CSVTypes string     // CSV only: "col:type,..." (string, number, boolean, json)
	Replace  bool       // replace the table's contents instead of merging
}

// Load loads items into table in one transaction and returns how many were
// written (and deleted, for streams). Readers see all old or all new.
func (s *Store) Load(table string, data []byte, o LoadOptions) (int, error) {
	f := o.Format
	if f == 0 {
		f = LoadNDJSON
	}
	var flags uint
	if o.Replace {
		flags |= 1
	}
	n := 0
	err := s.call("enrich_store_load", func(h capi.Store) int {
		return capi.Bind_store_load(h, table, o.Key, capi.Enum_SS_enrich_load_format(f), o.CSVTypes, flags, data, &n)
	})
	return n, err
}

// Put writes one item (a JSON object holding the table's key attributes).
func (s *Store) Put(table string, item []byte) error {
	return s.call("enrich_store_put", func(h capi.Store) int {
		return capi.Store_put(h, table, item)
	})
}

// Get returns one item as compact JSON; errors.Is(err, ErrNotFound) when
// there is none. key is the key's bytes (a string value or number text;
// composite parts joined by one NUL byte, see Key).
func (s *Store) Get(table string, key []byte) ([]byte, error) {
	buf := make([]byte, 512)
	for {
		n := 0
		err := s.call("enrich_store_get", func(h capi.Store) int {
			return capi.Store_get(h, table, key, buf, &n)
		})
		if err == nil {
			return buf[:n], nil
		}
		if !isDstSize(err) || n <= len(buf) {
			return nil, err
		}
		buf = make([]byte, n)
	}
}

// Delete removes one item; errors.Is(err, ErrNotFound) when there is none.
func (s *Store) Delete(table string, key []byte) error {
	return s.call("enrich_store_delete", func(h capi.Store) int {
		return capi.Store_delete(h, table, key)
	})
}

// Copy writes a compact single-file snapshot of the store to dstPath,
// which must not exist.
func (s *Store) Copy(dstPath string) error {
	return s.call("enrich_store_copy", func(h capi.Store) int {
		return capi.Store_copy(h, dstPath)
	})
}

// StoreStats are the statistics of a store (Store.Stats).
type StoreStats struct {
	Path         string                `json:"path"`
	FileBytes    uint64                `json:"file_bytes"`     // the data file's size
	MapBytes     uint64                `json:"map_bytes"`      // the memory map's size
	MapUsedBytes uint64                `json:"map_used_bytes"` // pages in use
	PageSize     int                   `json:"page_size"`
	Readers      ReaderStats           `json:"readers"`
	Tables       map[string]TableStats `json:"tables"` // by table name
	// TxnID is the last committed write transaction.
	TxnID uint64 `json:"txn_id"`
	// Checkpoints are the change feeds' positions (Store.Apply), by name.
	Checkpoints map[string]string `json:"checkpoints"`
	// Snapshot is set on a snapshot folder: the file it serves now.
	Snapshot *SnapshotStats `json:"snapshot,omitempty"`
}

// SnapshotStats describe a snapshot folder (Store.Refresh): the file
// served, how many times the folder switched, and the files it could not
// adopt (the last one's error).
type SnapshotStats struct {
	Folder     string `json:"folder"`
	File       string `json:"file"`
	Generation uint64 `json:"generation"`
	Switches   uint64 `json:"switches"`
	Failures   uint64 `json:"failures"`
	LastError  string `json:"last_error"`
}

// ReaderStats are the LMDB reader slots of a store: each live enrichment
// context holds one while it runs a batch.
type ReaderStats struct {
	Max  int `json:"max"`
	Used int `json:"used"`
}

// TableStats describe one table.
type TableStats struct {
	Key   []string `json:"key"` // the key attribute(s), one per part
	Items uint64   `json:"items"`
	// Checksums says whether the table's items carry checksums: "yes",
	// "no" (written before 0.2), "mixed" or "none" (empty table).
	Checksums string `json:"checksums"`
}

// Stats returns the store statistics.
func (s *Store) Stats() (*StoreStats, error) {
	b, err := s.StatsJSON()
	if err != nil {
		return nil, err
	}
	st := &StoreStats{}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, err
	}
	return st, nil
}

// StatsJSON returns the store statistics as the C library encodes them:
// one JSON object (include/enrich/enrich.h, enrich_store_stats).
func (s *Store) StatsJSON() ([]byte, error) {
	buf := make([]byte, 4096)
	for {
		n := 0
		err := s.call("enrich_store_stats", func(h capi.Store) int {
			return capi.Store_stats(h, buf, &n)
		})
		if err == nil {
			return buf[:n], nil
		}
		if !isDstSize(err) || n <= len(buf) {
			return nil, err
		}
		buf = make([]byte, n)
	}
}

// Verify checks the store's file for damage (enrich_store_verify): every
// page of every table and every item with its checksum, or with quick only
// the meta pages, the table directory and the file's CRC32C. It returns the
// report as the C library encodes it (one JSON object); its "ok" member is
// false when something is damaged, and "damage" says what and where. The
// error is for the check itself failing, not for damage found.
func (s *Store) Verify(quick bool) ([]byte, error) {
	var flags uint = 0
	if quick {
		flags = capi.VERIFY_QUICK
	}
	buf := make([]byte, 4096)
	for {
		n := 0
		err := s.call("enrich_store_verify", func(h capi.Store) int {
			return capi.Bind_store_verify(h, flags, buf, &n)
		})
		if err == nil {
			return buf[:n], nil
		}
		if !isDstSize(err) || n <= len(buf) {
			return nil, err
		}
		buf = make([]byte, n)
	}
}

// Key joins the parts of a composite key ("region,sku") the way the store
// does: with one NUL byte between them.
func Key(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

func isDstSize(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Code == ErrDstSize.Code
}

// Checkpoint is the checkpoint Store.Apply moves with its changes.
type Checkpoint struct {
	Name   string
	Value  string  // the new value; "" deletes the checkpoint
	Expect *string // when set, the value it must hold now ("" for none), else ErrStale
}

// Apply applies changes to table and moves the checkpoint in the same
// transaction (enrich_store_apply): both happen or neither. data is read as
// by Load (default format LoadDynamoDBStream); table "" with empty data
// moves the checkpoint alone. It returns the items written and deleted.
func (s *Store) Apply(table string, data []byte, o LoadOptions, cp Checkpoint) (int, error) {
	f := o.Format
	if f == 0 {
		f = LoadDynamoDBStream
	}
	var flags uint
	if o.Replace {
		flags |= 1
	}
	check, expect := 0, ""
	if cp.Expect != nil {
		check, expect = 1, *cp.Expect
	}
	n := 0
	err := s.call("enrich_store_apply", func(h capi.Store) int {
		return capi.Bind_store_apply(h, table, o.Key, capi.Enum_SS_enrich_load_format(f), flags,
			data, cp.Name, check, expect, cp.Value, &n)
	})
	return n, err
}

// CheckpointValue returns a checkpoint's value; errors.Is(err, ErrNotFound)
// when there is none.
func (s *Store) CheckpointValue(name string) (string, error) {
	b, err := s.grow("enrich_store_checkpoint", 256, func(h capi.Store, buf []byte, n *int) int {
		return capi.Store_checkpoint(h, name, buf, n)
	})
	return string(b), err
}

// Checkpoints returns every checkpoint whose name starts with prefix as one
// JSON object {"name":"value",...}.
func (s *Store) Checkpoints(prefix string) ([]byte, error) {
	return s.grow("enrich_store_checkpoints", 1024, func(h capi.Store, buf []byte, n *int) int {
		return capi.Store_checkpoints(h, prefix, buf, n)
	})
}

// Refresh makes a snapshot folder adopt the snapshot its `current` file
// names now (enrich_store_refresh); true when this call switched.
func (s *Store) Refresh() (bool, error) {
	switched := []int{0}
	err := s.call("enrich_store_refresh", func(h capi.Store) int {
		return capi.Store_refresh(h, switched)
	})
	return switched[0] == 1, err
}

// grow calls f with a buffer until it is large enough.
func (s *Store) grow(op string, size int, f func(h capi.Store, buf []byte, n *int) int) ([]byte, error) {
	buf := make([]byte, size)
	for {
		n := 0
		err := s.call(op, func(h capi.Store) int { return f(h, buf, &n) })
		if err == nil {
			return buf[:n], nil
		}
		if !isDstSize(err) || n <= len(buf) {
			return nil, err
		}
		buf = make([]byte, n)
	}
}
