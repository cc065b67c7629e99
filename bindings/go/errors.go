package enrich

import (
	"errors"
	"syscall"

	"example.invalid/libenrich/enrich/internal/capi"
)

// Error is a libenrich status code other than ENRICH_OK, as returned by
// any call that fails. Compare with the sentinels using errors.Is:
//
//	if errors.Is(err, enrich.ErrNotFound) { ... }
//
// and reach the fields with errors.As.
type Error struct {
	Code   int    // the C code, e.g. -4
	Name   string // its symbolic name, e.g. "ENRICH_E_NOTFOUND"
	Msg    string // enrich_strerror(Code): starts with Name
	Op     string // the C call that failed, e.g. "enrich_store_get" ("" for sentinels and record errors)
	Detail string // the handle's errmsg for this failure, when it has one
	// Errno is the operating-system error behind an ErrIO (or ErrNoMem)
	// failure when the C library reports one (Open does); 0 otherwise.
	// Unwrap returns it, so errors.Is(err, fs.ErrNotExist) holds for a
	// store that does not exist.
	Errno syscall.Errno
}

// Unwrap returns the operating-system cause (a syscall.Errno), or nil.
func (e *Error) Unwrap() error {
	if e.Errno == 0 {
		return nil
	}
	return e.Errno
}

func (e *Error) Error() string {
	s := "enrich: "
	if e.Op != "" {
		s += e.Op + ": "
	}
	s += e.Msg
	if e.Detail != "" && e.Detail != e.Msg {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, ErrNotFound) holds for every not-found failure.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func newSentinel(code int) *Error {
	return &Error{Code: code, Name: capi.Status_name(code), Msg: capi.Strerror(code)}
}

// The sentinels, one per status code of include/enrich/enrich.h.
var (
	ErrInvalid     = newSentinel(-1)
	ErrNoMem       = newSentinel(-2)
	ErrIO          = newSentinel(-3)
	ErrNotFound    = newSentinel(-4)
	ErrReadOnly    = newSentinel(-5)
	ErrNotStore    = newSentinel(-6)
	ErrStore       = newSentinel(-7)
	ErrReadersFull = newSentinel(-8)
	ErrNoTable     = newSentinel(-9)
	ErrRules       = newSentinel(-10)
	ErrJSON        = newSentinel(-11)
	ErrNotObject   = newSentinel(-12)
	ErrKeyType     = newSentinel(-13)
	ErrKeyTooLong  = newSentinel(-14)
	ErrConflict    = newSentinel(-15)
	ErrDepth       = newSentinel(-16)
	ErrUTF8        = newSentinel(-17)
	ErrNUL         = newSentinel(-18)
	ErrTooLarge    = newSentinel(-19)
	ErrDstSize     = newSentinel(-20)
	ErrItem        = newSentinel(-21)
	ErrZlib        = newSentinel(-22)
	ErrBase64      = newSentinel(-23)
	ErrCorrupt     = newSentinel(-24)
	ErrStale       = newSentinel(-25)
)

// ErrClosed is returned by any method of a Store, Pipeline or Context
// that was closed (or whose Store or Pipeline was closed).
var ErrClosed = errors.New("enrich: use of a closed handle")

// codeErr makes the error of a failed call; nil for ENRICH_OK.
func codeErr(code int, op, detail string) error {
	if code == 0 {
		return nil
	}
	return &Error{Code: code, Name: capi.Status_name(code), Msg: capi.Strerror(code),
		Op: op, Detail: detail}
}

// sentinels by -code, for record errors (no cgo call, no allocation).
var sentinels = []*Error{nil, ErrInvalid, ErrNoMem, ErrIO, ErrNotFound, ErrReadOnly,
	ErrNotStore, ErrStore, ErrReadersFull, ErrNoTable, ErrRules, ErrJSON, ErrNotObject,
	ErrKeyType, ErrKeyTooLong, ErrConflict, ErrDepth, ErrUTF8, ErrNUL, ErrTooLarge,
	ErrDstSize, ErrItem, ErrZlib, ErrBase64, ErrCorrupt, ErrStale}

// recordErr is the per-record error of an ENRICH_OUTCOME_ERROR record: the
// sentinel of its code (a code newer than this package gets its own value).
func recordErr(code int) error {
	if code == 0 {
		return nil
	}
	if code < 0 && -code < len(sentinels) {
		return sentinels[-code]
	}
	return newSentinel(code)
}

// StatusName names a C status code, e.g. StatusName(-4) == "ENRICH_E_NOTFOUND".
func StatusName(code int) string { return capi.Status_name(code) }

// Version is the runtime version string of the loaded C library.
func Version() string { return capi.Version_string() }
