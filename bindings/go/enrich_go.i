/* bindings/go/enrich_go.i: the Go overlay of bindings/enrich.i.
 *
 * Included by enrich.i (under SWIGGO, found through -I) before the header,
 * so these typemaps apply to it. bindings/go/regen runs
 *   swig -go -cgo -intgosize 64 -module capi ... bindings/enrich.i
 * into internal/capi/, whose output is committed: Go consumers need no
 * SWIG. Package capi is internal; the idiomatic API (package enrich, the
 * parent directory) is the only public one and exposes no SWIG type.
 *
 *  - status: enrich_status stays an int at this layer (Go has no
 *    exceptions and the detail text lives on the handle); package enrich
 *    turns it into an error value with the handle's errmsg.
 *  - bytes in: a Go []byte is borrowed for the call (never retained by C).
 *  - bytes out: the caller passes a []byte whose len is the capacity; C
 *    writes into it; *written (a *int) says how much.
 *  - enrich_buf: copied once into a new []byte.
 *  - new handles: a *uintptr receives the C pointer.
 *  - enrich_go_meta, enrich_go_concat: two helpers that copy a whole
 *    batch's per-record results out of a ctx in one cgo call each (a cgo
 *    call costs ~50-100 ns; one call per field per record would cost more
 *    than the enrichment).
 *  - enrich_go_store_open: the open with its errno, read in the same call.
 */

/* cgo finds the library through pkg-config (installed: libenrich.pc;
 * build tree: PKG_CONFIG_PATH=<build>/meson-uninstalled). */
%insert(cgo_comment_typedefs) %{
#cgo pkg-config: libenrich
%}

/* ---- status: the code as an int --------------------------------------- */
%typemap(gotype) enrich_status "int"
%typemap(imtype) enrich_status "int"
%typemap(out) enrich_status %{ $result = (intgo)$1; %}
%typemap(goout) enrich_status ""

/* ---- nullable strings: "" is NULL (the header allows NULL there) ------ */
%typemap(in) const char *key, const char *csv_types, const char *table_or_none,
             const char *value_or_none
%{
  if ($input.n == 0) {
    $1 = NULL;
  } else {
    $1 = ($1_ltype)malloc($input.n + 1);
    memcpy($1, $input.p, $input.n);
    $1[$input.n] = '\0';
  }
%}

/* ---- input bytes ------------------------------------------------------- */
%typemap(gotype) (const void *src, size_t src_len) "[]byte"
%typemap(imtype) (const void *src, size_t src_len) "[]byte"
%typemap(in) (const void *src, size_t src_len)
%{
  $1 = ($1_ltype)$input.array;
  $2 = (size_t)$input.len;
%}

/* ---- output bytes ------------------------------------------------------ */
%typemap(gotype) (void *dst, size_t dst_cap) "[]byte"
%typemap(imtype) (void *dst, size_t dst_cap) "[]byte"
%typemap(in) (void *dst, size_t dst_cap)
%{
  $1 = ($1_ltype)$input.array;
  $2 = (size_t)$input.len;
%}
/* A message buffer of the caller's (compile, delivery open): a []byte. */
%typemap(gotype) (char *errbuf, size_t errbuf_cap) "[]byte"
%typemap(imtype) (char *errbuf, size_t errbuf_cap) "[]byte"
%typemap(in) (char *errbuf, size_t errbuf_cap)
%{
  $1 = (char *)$input.array;
  $2 = (size_t)$input.len;
%}
%typemap(gotype) size_t *written "*int"
%typemap(imtype) size_t *written "*int"
%typemap(in) size_t *written %{ $1 = (size_t *)$input; %}

/* ---- borrowed spans: one copy into a new []byte ------------------------- */
%typemap(gotype) enrich_buf "[]byte"
%typemap(imtype) enrich_buf "[]byte"
%typemap(out) enrich_buf
%{
  $result.array = (void *)$1.ptr;
  $result.len = (intgo)$1.len;
  $result.cap = (intgo)$1.len;
%}
%typemap(goout) enrich_buf
%{
  {
    b := make([]byte, len($1))
    copy(b, $1)
    $result = b
  }
%}

/* ---- new handles -------------------------------------------------------- */
%define ENRICH_GO_HANDLE_OUT(TYPE)
%typemap(gotype) TYPE **out "*uintptr"
%typemap(imtype) TYPE **out "*uintptr"
%typemap(in) TYPE **out %{ $1 = (TYPE **)$input; %}
%enddef
ENRICH_GO_HANDLE_OUT(enrich_store)
ENRICH_GO_HANDLE_OUT(enrich_pipeline)
ENRICH_GO_HANDLE_OUT(enrich_ctx)
ENRICH_GO_HANDLE_OUT(enrich_delivery)

/* ---- plain scalar outputs ------------------------------------------------ */
/* Go's typemaps.i has no size_t *OUTPUT (enrich.i applies it to `loaded`);
 * a *int receives it. int64_t *OUTPUT comes from typemaps.i ([]int64). */
%typemap(gotype) size_t *OUTPUT "*int"
%typemap(imtype) size_t *OUTPUT "*int"
%typemap(in) size_t *OUTPUT %{ $1 = (size_t *)$input; %}
/* enrich_ctx_get_option's result, and the errno of a failed open: a
 * *int64 receives it. */
%typemap(gotype) int64_t *value, int64_t *os_errno "*int64"
%typemap(imtype) int64_t *value, int64_t *os_errno "*int64"
%typemap(in) int64_t *value, int64_t *os_errno %{ $1 = (int64_t *)$input; %}

/* ---- whole-batch helpers ------------------------------------------------- */
%typemap(gotype) (int64_t *meta, size_t meta_len) "[]int64"
%typemap(imtype) (int64_t *meta, size_t meta_len) "[]int64"
%typemap(in) (int64_t *meta, size_t meta_len)
%{
  $1 = (int64_t *)$input.array;
  $2 = (size_t)$input.len;
%}

/* Not wrapped: a helper of enrich_go_concat. */
%{
#include <errno.h>

/* Span `what` of record i: 0 the record, 1 its id, 2 its validation reason. */
static enrich_buf enrich_go_span(const enrich_ctx *ctx, int what, size_t i)
{
    return what == 0 ? enrich_batch_record(ctx, i) :
           what == 1 ? enrich_aws_record_id(ctx, i) : enrich_aws_invalid_reason(ctx, i);
}
%}

%inline %{

/* enrich_store_open and the errno it leaves on failure (the header
 * promises one for ENRICH_E_IO: there is no handle to carry a message).
 * Read in the same C call, on the same thread: Go may move a goroutine
 * to another thread between two cgo calls, and errno is per thread. */
enrich_status enrich_go_store_open(const char *path, unsigned flags, enrich_store **out,
                                   int64_t *os_errno)
{
    errno = 0;
    enrich_status rc = enrich_store_open(path, flags, out);
    *os_errno = rc == ENRICH_OK ? 0 : (int64_t)errno;
    return rc;
}

/* Per record i of the last batch, ENRICH_GO_META int64s at meta[i*7]:
 * outcome, per-record code, AWS result, record length, id length, arrival
 * ms, length of the validation reason (enrich_aws_invalid_reason). Returns
 * the number of records described (at most meta_len / 7). */
#define ENRICH_GO_META 7
size_t enrich_go_meta(const enrich_ctx *ctx, int64_t *meta, size_t meta_len)
{
    size_t n = enrich_batch_count(ctx);
    if (n > meta_len / ENRICH_GO_META)
        n = meta_len / ENRICH_GO_META;
    for (size_t i = 0; i < n; i++) {
        int64_t *m = meta + i * ENRICH_GO_META;
        m[0] = (int64_t)enrich_batch_outcome(ctx, i);
        m[1] = (int64_t)enrich_batch_error(ctx, i);
        m[2] = (int64_t)enrich_aws_result(ctx, i);
        m[3] = (int64_t)enrich_batch_record(ctx, i).len;
        m[4] = (int64_t)enrich_aws_record_id(ctx, i).len;
        m[5] = enrich_aws_arrival_ms(ctx, i);
        m[6] = (int64_t)enrich_aws_invalid_reason(ctx, i).len;
    }
    return n;
}

/* Concatenate the records (what 0), the record ids (what 1) or the
 * validation reasons (what 2) of the last batch into dst; returns the
 * bytes needed (nothing is written when that is more than dst_cap). */
size_t enrich_go_concat(const enrich_ctx *ctx, int what, void *dst, size_t dst_cap)
{
    size_t n = enrich_batch_count(ctx), need = 0;
    for (size_t i = 0; i < n; i++)
        need += enrich_go_span(ctx, what, i).len;
    if (need > dst_cap)
        return need;
    unsigned char *p = (unsigned char *)dst;
    for (size_t i = 0; i < n; i++) {
        enrich_buf b = enrich_go_span(ctx, what, i);
        if (b.len)
            memcpy(p, b.ptr, b.len);
        p += b.len;
    }
    return need;
}
%}
