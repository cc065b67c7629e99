/* bindings/enrich.i: the language-neutral SWIG interface of libenrich.
 *
 * Shared by every binding. It names the module, hides what no binding can
 * call (raw callbacks), turns the three opaque handles into classes whose
 * destructors are the C destructors, strips the enrich_/ENRICH_ prefixes,
 * and maps the canonical buffer names of the header onto a few typemaps.
 *
 * The typemaps themselves are per language: the overlay
 * bindings/<lang>/enrich_<lang>.i (found through -I) defines
 *   (const void *src, size_t src_len)   input bytes, borrowed for the call
 *   (void *dst, size_t dst_cap)         an output buffer the binding allocates
 *   size_t *written                     how much of dst the call filled
 *   enrich_store **out, enrich_pipeline **out, enrich_ctx **out,
 *   enrich_delivery **out
 *                                       a new owned handle
 *   enrich_status                       raise / return the error (never ignored)
 *   enrich_buf                          borrowed bytes, copied out once
 * and may mark calls that run without the interpreter lock.
 * Everything below the overlay is shared.
 */
%module enrich

%{
#include "enrich/enrich.h"
#include "enrich/aws.h"
#include "enrich/delivery.h"
%}

%include <stdint.i>
%include <typemaps.i>

/* The header's visibility macro means nothing to SWIG. */
#define ENRICH_API

/* ---- names: enrich_store_open -> store_open, ENRICH_E_IO -> E_IO ---- */
%rename("%(regex:/^(enrich_|ENRICH_)(.+)$/\\2/)s") "";

/* ---- not bindable --------------------------------------------------- */
/* Callbacks into the host language: bindings report progress themselves. */
%ignore enrich_store_set_progress;
%ignore enrich_progress_fn;
/* The delivery's per-object callback (a C function pointer): bindings that
 * want it would need a trampoline; they list the tree after a flush or
 * close instead (docs/python.md, docs/go.md). */
%ignore enrich_delivery_set_object_callback;
%ignore enrich_object_fn;
/* A borrowed span is returned as the language's byte type, never as a
 * struct holding a raw pointer. */
%ignore enrich_buf;
/* enrich_store_load takes an options struct that C fills from
 * ENRICH_LOAD_OPTIONS_INIT; a binding calls the flat helper below instead
 * (its language-level API has its own keyword or option names). */
%ignore enrich_store_load;
%ignore enrich_load_options;
/* Likewise enrich_store_apply (its load options; and "no check" of the
 * expected checkpoint is a flag there, since not every language has a
 * NULL string). */
%ignore enrich_store_apply;
/* Raw destructors: the handle classes' destructors call them, and a second
 * way to free would let a binding free twice. */
%ignore enrich_store_close;
%ignore enrich_pipeline_free;
%ignore enrich_ctx_free;

/* ---- handles: opaque classes, freed by the C destructors ------------- */
/* The C structs stay incomplete; SWIG only needs to know they are classes
 * with no constructor (the factories are the *_open/_compile/_create
 * functions, whose out-parameter typemaps hand back an owned object). */
%nodefaultctor enrich_store;
%nodefaultctor enrich_pipeline;
%nodefaultctor enrich_ctx;
%nodefaultctor enrich_delivery;
struct enrich_store {};
struct enrich_pipeline {};
struct enrich_ctx {};
struct enrich_delivery {};
%extend enrich_store    { ~enrich_store()    { enrich_store_close($self); } }
%extend enrich_pipeline { ~enrich_pipeline() { enrich_pipeline_free($self); } }
%extend enrich_ctx      { ~enrich_ctx()      { enrich_ctx_free($self); } }
/* A delivery's destructor publishes what is buffered (close with no
 * flags). enrich_delivery_close stays callable because its flags
 * (DISCARD) and its status matter: a binding that calls it must first
 * give up the handle's ownership (Python: thisown = False; Go never calls
 * DeleteDelivery), so that exactly one of the two runs. */
%extend enrich_delivery { ~enrich_delivery() { enrich_delivery_close($self, 0); } }

/* ---- the language overlay: typemaps for the canonical names ---------- */
#if defined(SWIGPYTHON)
%include "enrich_python.i"
#elif defined(SWIGGO)
%include "enrich_go.i"
#endif

/* ---- canonical buffer names ------------------------------------------ */
/* Every input span of the header is (src, src_len) except the lookup key;
 * every output buffer is (dst, dst_cap) followed, possibly later, by
 * size_t *written. */
%apply (const void *src, size_t src_len) { (const void *key, size_t key_len) };
%apply (const void *src, size_t src_len) { (const void *config, size_t config_len) };
%apply (void *dst, size_t dst_cap) { (char *dst, size_t dst_cap) };

/* Plain scalar outputs. */
%apply size_t *OUTPUT { size_t *loaded };
%apply size_t *OUTPUT { size_t *applied };
%apply int *OUTPUT { int *switched };
%apply int64_t *OUTPUT { int64_t *min, int64_t *max };
%apply uint64_t *OUTPUT { uint64_t *offset };
%apply int64_t *OUTPUT { int64_t *ms };
/* enrich_json_error_at: where a JSON text breaks. */
%apply size_t *OUTPUT { size_t *offset, size_t *line, size_t *column };

%include "enrich/version.h"
%include "enrich/enrich.h"
%include "enrich/aws.h"
%include "enrich/delivery.h"

/* ---- binding glue ------------------------------------------------------ */
%inline %{
/* enrich_store_load with its options as arguments (NULL key: the existing
 * table's; NULL csv_types: none). */
enrich_status enrich_bind_store_load(enrich_store *store, const char *table, const char *key,
                                     enrich_load_format format, const char *csv_types,
                                     unsigned flags, const void *src, size_t src_len,
                                     size_t *loaded)
{
    enrich_load_options o = ENRICH_LOAD_OPTIONS_INIT;
    o.format = format;
    o.flags = flags;
    o.key = key;
    o.csv_types = csv_types;
    return enrich_store_load(store, table, &o, src, src_len, loaded);
}

/* enrich_store_apply with its options as arguments. table_or_none NULL
 * (or "" where the language has no NULL): the checkpoint alone moves.
 * check 0: expect is not compared (NULL in C). value_or_none NULL (or
 * ""): the checkpoint is deleted. */
enrich_status enrich_bind_store_apply(enrich_store *store, const char *table_or_none,
                                      const char *key, enrich_load_format format,
                                      unsigned flags, const void *src, size_t src_len,
                                      const char *checkpoint, int check, const char *expect,
                                      const char *value_or_none, size_t *applied)
{
    enrich_load_options o = ENRICH_LOAD_OPTIONS_INIT;
    o.format = format;
    o.flags = flags;
    o.key = key;
    return enrich_store_apply(store, table_or_none, &o, src, src_len, checkpoint,
                              check ? (expect ? expect : "") : NULL, value_or_none, applied);
}

/* enrich_store_verify with a damaged store's report as a result, not an
 * error: ENRICH_E_CORRUPT comes back as ENRICH_OK with the report written
 * (its "ok" is false), so the bindings can return what was found. */
enrich_status enrich_bind_store_verify(enrich_store *store, unsigned flags, void *dst,
                                       size_t dst_cap, size_t *written)
{
    enrich_status st = enrich_store_verify(store, flags, dst, dst_cap, written);
    return st == ENRICH_E_CORRUPT ? ENRICH_OK : st;
}
%}
