package enrich

import (
	"testing"

	"example.invalid/libenrich/enrich/internal/capi"
)

// The Go constants repeat the header's pinned values: check them against
// the generated layer, so a header change cannot slip by.
func TestConstantsMatchHeader(t *testing.T) {
	pairs := []struct {
		name   string
		got, c int
	}{
		{"INPUT_NDJSON", int(InputNDJSON), int(capi.INPUT_NDJSON)},
		{"INPUT_JSON_ARRAY", int(InputJSONArray), int(capi.INPUT_JSON_ARRAY)},
		{"AWS_PIPES", int(InputPipes), int(capi.AWS_PIPES)},
		{"AWS_FIREHOSE", int(InputFirehose), int(capi.AWS_FIREHOSE)},
		{"AWS_KINESIS", int(InputKinesis), int(capi.AWS_KINESIS)},
		{"ENCODE_NDJSON", int(EncodeNDJSON), int(capi.ENCODE_NDJSON)},
		{"ENCODE_JSON_ARRAY", int(EncodeJSONArray), int(capi.ENCODE_JSON_ARRAY)},
		{"OUTCOME_SUCCESS", int(OutcomeSuccess), int(capi.OUTCOME_SUCCESS)},
		{"OUTCOME_NOT_FOUND", int(OutcomeNotFound), int(capi.OUTCOME_NOT_FOUND)},
		{"OUTCOME_NO_KEY", int(OutcomeNoKey), int(capi.OUTCOME_NO_KEY)},
		{"OUTCOME_ERROR", int(OutcomeError), int(capi.OUTCOME_ERROR)},
		{"RESULT_OK", int(ResultOK), int(capi.RESULT_OK)},
		{"RESULT_DROPPED", int(ResultDropped), int(capi.RESULT_DROPPED)},
		{"RESULT_FAILED", int(ResultFailed), int(capi.RESULT_FAILED)},
		{"RESULT_OVER_LIMIT", int(ResultOverLimit), int(capi.RESULT_OVER_LIMIT)},
		{"LOAD_NDJSON", int(LoadNDJSON), int(capi.LOAD_NDJSON)},
		{"LOAD_JSON_ARRAY", int(LoadJSONArray), int(capi.LOAD_JSON_ARRAY)},
		{"LOAD_DYNAMODB", int(LoadDynamoDB), int(capi.LOAD_DYNAMODB)},
		{"LOAD_DYNAMODB_STREAM", int(LoadDynamoDBStream), int(capi.LOAD_DYNAMODB_STREAM)},
		{"LOAD_CSV", int(LoadCSV), int(capi.LOAD_CSV)},
		{"STORE_RDONLY", int(ReadOnly), int(capi.STORE_RDONLY)},
		{"STORE_CREATE", int(Create), int(capi.STORE_CREATE)},
		{"STORE_NOLOCK", int(NoLock), int(capi.STORE_NOLOCK)},
		{"OPT_MAX_DEPTH", MaxDepth(1).id, int(capi.OPT_MAX_DEPTH)},
		{"OPT_MAX_RECORD_BYTES", MaxRecordBytes(1).id, int(capi.OPT_MAX_RECORD_BYTES)},
		{"OPT_CLOCK_MS", ClockMs(1).id, int(capi.OPT_CLOCK_MS)},
		{"OPT_RESPONSE_LIMIT", ResponseLimit(1).id, int(capi.OPT_RESPONSE_LIMIT)},
		{"OPT_LOOKUP_CACHE", LookupCache(1).id, int(capi.OPT_LOOKUP_CACHE)},
		{"E_LAST", -(len(sentinels) - 1), capi.E_LAST},
	}
	for _, p := range pairs {
		if p.got != p.c {
			t.Errorf("%s: Go %d, C %d", p.name, p.got, p.c)
		}
	}
	// Each sentinel is its code's, named as enrich_status_name names it.
	for code := -1; code >= capi.E_LAST; code-- {
		s := sentinels[-code]
		if s.Code != code || s.Name != capi.Status_name(code) || s.Msg != capi.Strerror(code) {
			t.Errorf("sentinel %d: %+v", code, s)
		}
	}
	if ErrBase64.Name != "ENRICH_E_BASE64" || ErrNotFound.Name != "ENRICH_E_NOTFOUND" {
		t.Error("sentinel names")
	}
}
