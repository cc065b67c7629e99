package enrich

import "encoding/json"

// DeliveryConfig is the configuration of a Delivery, the JSON object of
// docs/delivery.md ("Configuration") as Go fields: every field is
// optional and a zero field is left out, so the C library's default
// applies. Fields whose zero value is meaningful in the configuration
// (a gzip level of 0, no compressor threads, no retries, an empty file
// extension) are pointers:
// set them with Ptr, e.g. GzipLevel: enrich.Ptr(9). Strings left empty
// take the default; an empty prefix, which the C library accepts, needs
// the raw JSON form (Pipeline.OpenDelivery).
type DeliveryConfig struct {
	Prefix           string            `json:"prefix,omitempty"`             // data prefix (Firehose Prefix)
	InvalidPrefix    string            `json:"invalid_prefix,omitempty"`     // records failing validation
	ErrorPrefix      string            `json:"error_prefix,omitempty"`       // Firehose ErrorOutputPrefix
	DeadLetterPrefix string            `json:"dead_letter_prefix,omitempty"` // dead letters
	StreamName       string            `json:"stream_name,omitempty"`        // object, state and lock file names
	StreamVersion    int               `json:"stream_version,omitempty"`     // second part of object names (>= 1)
	FileExtension    *string           `json:"file_extension,omitempty"`     // default ".gz"; "" for none
	BufferMB         float64           `json:"buffer_mb,omitempty"`          // size hint, MiB per object
	BufferSeconds    *float64          `json:"buffer_seconds,omitempty"`     // time hint, 0..900
	GzipLevel        *int              `json:"gzip_level,omitempty"`         // -1..9
	CompressThreads  *int              `json:"compress_threads,omitempty"`   // -1 (CPUs - 1, at most 4), 0 (inline)..64
	TimestampSource  TimestampSource   `json:"timestamp_source,omitempty"`   // what !{timestamp:...} formats
	PartitionKeys    map[string]string `json:"partition_keys,omitempty"`     // name: dotted path
	MaxRetries       *int              `json:"max_retries,omitempty"`        // 0..20
	RetryBaseMs      *int64            `json:"retry_base_ms,omitempty"`      // backoff base
	RetryMaxMs       *int64            `json:"retry_max_ms,omitempty"`       // backoff cap
	RetrySeed        *uint64           `json:"retry_seed,omitempty"`         // jitter seed (reproducible runs)
	MaxOpenObjects   int               `json:"max_open_objects,omitempty"`   // open objects at once (>= 1)
	MetricsNamespace string            `json:"metrics_namespace,omitempty"`  // EMF namespace
	Description      string            `json:"description,omitempty"`        // ignored by the library
}

// TimestampSource is what a prefix's !{timestamp:...} formats.
type TimestampSource string

// The timestamp sources of docs/delivery.md.
const (
	TimestampEvent      TimestampSource = "event"      // the event's own time (default)
	TimestampArrival    TimestampSource = "arrival"    // the AWS record's arrival time
	TimestampProcessing TimestampSource = "processing" // the batch's clock
)

// JSON is the configuration as Pipeline.OpenDelivery takes it.
func (c *DeliveryConfig) JSON() ([]byte, error) { return json.Marshal(c) }

// Ptr returns a pointer to v: for the optional fields of DeliveryConfig.
func Ptr[T any](v T) *T { return &v }
