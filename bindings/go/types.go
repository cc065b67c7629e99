package enrich

import "fmt"

// Input is the shape of a batch (enrich_input).
type Input int

// The input shapes; docs/aws.md describes the AWS ones.
const (
	InputNDJSON    Input = 1 // one event per line; blank lines skipped, CRLF ok
	InputJSONArray Input = 2 // one JSON array of events
	InputPipes     Input = 3 // EventBridge Pipes enrichment input (Kinesis source)
	InputFirehose  Input = 4 // Firehose data-transformation event
	InputKinesis   Input = 5 // Lambda Kinesis event source event
)

func (i Input) String() string {
	switch i {
	case InputNDJSON:
		return "ndjson"
	case InputJSONArray:
		return "json_array"
	case InputPipes:
		return "pipes"
	case InputFirehose:
		return "firehose"
	case InputKinesis:
		return "kinesis"
	}
	return fmt.Sprintf("Input(%d)", int(i))
}

// Encoding is an output encoding of a batch (enrich_encoding).
type Encoding int

// The encodings. EncodeNone asks Pipeline.Enrich for the records only.
const (
	EncodeNone            Encoding = 0
	EncodeNDJSON          Encoding = 1 // records each followed by '\n'
	EncodeJSONArray       Encoding = 2 // [r0,r1,...], as a Pipes enrichment returns
	EncodeFirehose        Encoding = 3 // the Firehose transformation response (Firehose input only)
	EncodeKinesisResponse Encoding = 4 // {"batchItemFailures":[...]} (Kinesis input only)
)

func (e Encoding) String() string {
	switch e {
	case EncodeNone:
		return "none"
	case EncodeNDJSON:
		return "ndjson"
	case EncodeJSONArray:
		return "json_array"
	case EncodeFirehose:
		return "firehose"
	case EncodeKinesisResponse:
		return "kinesis_response"
	}
	return fmt.Sprintf("Encoding(%d)", int(e))
}

// Outcome is what enrichment did with one record (enrich_outcome).
type Outcome int

// The outcomes.
const (
	OutcomeSuccess  Outcome = 0 // every lookup hit
	OutcomeNotFound Outcome = 1 // a key was present but had no item
	OutcomeNoKey    Outcome = 2 // a key attribute was missing (or null)
	OutcomeError    Outcome = 3 // the record could not be enriched; Record.Err says why
)

func (o Outcome) String() string {
	switch o {
	case OutcomeSuccess:
		return "success"
	case OutcomeNotFound:
		return "not_found"
	case OutcomeNoKey:
		return "no_key"
	case OutcomeError:
		return "error"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is what the AWS response does with one record (enrich_result).
type Result int

// The results.
const (
	ResultOK        Result = 0 // delivered
	ResultDropped   Result = 1 // Firehose Dropped (rule set's firehose.drop)
	ResultFailed    Result = 2 // Firehose ProcessingFailed, a Kinesis batchItemFailures entry
	ResultOverLimit Result = 3 // Firehose only: enriched, but over the response limit
)

func (r Result) String() string {
	switch r {
	case ResultOK:
		return "ok"
	case ResultDropped:
		return "dropped"
	case ResultFailed:
		return "failed"
	case ResultOverLimit:
		return "over_limit"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// LoadFormat is the input format of Store.Load (enrich_load_format).
type LoadFormat int

// The load formats.
const (
	LoadNDJSON         LoadFormat = 1 // one JSON object per line
	LoadJSONArray      LoadFormat = 2 // one JSON array of objects
	LoadDynamoDB       LoadFormat = 3 // DynamoDB JSON items, bare or {"Item":{...}}
	LoadDynamoDBStream LoadFormat = 4 // a DynamoDB Streams event
	LoadCSV            LoadFormat = 5 // CSV with a header row
)

// OpenFlags are the flags of Open (ENRICH_STORE_*).
type OpenFlags uint

// The open flags.
const (
	ReadOnly OpenFlags = 0x1 // enrichers; works on read-only media
	Create   OpenFlags = 0x2 // create the store if missing (read-write only)
	NoLock   OpenFlags = 0x4 // never use a lock file (no concurrent writers!)
)

// Option is a per-context tunable (enrich_option), set on a Pipeline (for
// every context it makes) or on one Context.
type Option struct {
	id    int
	value int64
}

// MaxDepth sets the JSON nesting limit (1..1000, default 128).
func MaxDepth(n int) Option { return Option{10, int64(n)} }

// MaxRecordBytes sets the longest event accepted (default 1 MiB + 1 KiB).
func MaxRecordBytes(n int64) Option { return Option{20, n} }

// ClockMs fixes the clock at an epoch time in ms (-1: the real clock).
func ClockMs(ms int64) Option { return Option{30, ms} }

// ResponseLimit sets the largest AWS response in bytes (default 6000000).
func ResponseLimit(n int64) Option { return Option{50, n} }

// LookupCache sets the slots of each context's lookup memo (default 4096,
// 0 turns it off): recent keys' answers are reused within one store
// snapshot and forgotten when a load commits, so results never change.
func LookupCache(slots int) Option { return Option{60, int64(slots)} }

// MaxContexts bounds how many C contexts a Pipeline keeps for Enrich
// (Pipeline-level only; default 2×GOMAXPROCS, at least 4, at most 64).
// Each context holds one LMDB reader slot (126 per store), so this also
// bounds the slots a pipeline can take; callers beyond it wait.
func MaxContexts(n int) Option { return Option{optMaxContexts, int64(n)} }

const optMaxContexts = -1
