/* bindings/python/enrich_python.i: the Python overlay of bindings/enrich.i.
 *
 * Included by enrich.i before the header, so these typemaps apply to it.
 * The module it builds is the low-level layer `enrich.capi` (swig -module
 * capi); the Pythonic classes live in enrich/__init__.py.
 *
 *  - bytes in: any object with the buffer protocol (bytes, bytearray,
 *    memoryview, mmap) is borrowed through a Py_buffer held until the
 *    wrapper returns, so it stays valid and unresizable while the
 *    interpreter lock is released; a str is passed as its UTF-8 form
 *    (cached in the str object, not copied for ASCII text); None is NULL.
 *  - bytes out: the caller gives a capacity; the wrapper allocates one
 *    bytes object of that size, the C call writes straight into it, and it
 *    is shrunk in place to *written. No second copy.
 *  - errors: a status other than ENRICH_OK raises the enrich.Error subclass
 *    of its code (from enrich._errors), with the handle's errmsg as detail.
 *  - the interpreter lock is released around the calls that can take long.
 */

/* Docstrings: each function's doc comment from the public headers
 * (generated at build time by mkdocstrings.py), and the binding's own
 * helper. */
%include "capi_doc.i"
%feature("docstring") enrich_bind_store_load
"enrich_status enrich_bind_store_load(enrich_store *store, const char *table, const char *key, enrich_load_format format, const char *csv_types, unsigned flags, const void *src, size_t src_len, size_t *loaded)\n\n"
"enrich_store_load() with its options as arguments (the binding's glue: C\n"
"fills an enrich_load_options instead). key None: the existing table's key;\n"
"csv_types None: none. Returns the number of items loaded; a status other\n"
"than ENRICH_OK raises the enrich.Error subclass of its code.\n";

%begin %{
#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
%}

%{
#include <stdint.h>

/* The handle whose errmsg explains a failure is the call's first argument
 * when it is a store, a ctx or a delivery (pipeline_compile and
 * delivery_open write their own message buffer instead: see errbuf below).
 * SWIG names the first argument arg1 in every wrapper; _Generic picks the
 * errmsg function by its type, and anything else has no detail. */
enum { ENRICH_PY_NODETAIL, ENRICH_PY_STORE, ENRICH_PY_CTX, ENRICH_PY_DELIVERY };
#define ENRICH_PY_DETAIL_KIND(h) _Generic((h),                      \
        enrich_store *: ENRICH_PY_STORE,                            \
        const enrich_store *: ENRICH_PY_STORE,                      \
        enrich_ctx *: ENRICH_PY_CTX,                                \
        const enrich_ctx *: ENRICH_PY_CTX,                          \
        enrich_delivery *: ENRICH_PY_DELIVERY,                      \
        const enrich_delivery *: ENRICH_PY_DELIVERY,                \
        default: ENRICH_PY_NODETAIL)
#define ENRICH_PY_DETAIL(h) \
    enrich_py_detail(ENRICH_PY_DETAIL_KIND(h), (const void *)(uintptr_t)(h))

static const char *enrich_py_detail(int kind, const void *h)
{
    if (h == NULL)
        return "";
    if (kind == ENRICH_PY_STORE)
        return enrich_store_errmsg((const enrich_store *)h);
    if (kind == ENRICH_PY_CTX)
        return enrich_ctx_errmsg((const enrich_ctx *)h);
    if (kind == ENRICH_PY_DELIVERY)
        return enrich_delivery_errmsg((const enrich_delivery *)h);
    return "";
}

/* Raise the enrich.Error subclass of code: enrich._errors.error_for(code,
 * message, detail) builds the instance. Falls back to RuntimeError when
 * the module is used outside its package. */
static void enrich_py_raise(int code, const char *detail)
{
    static PyObject *factory = NULL;
    const char *msg = enrich_strerror(code);
    if (factory == NULL) {
        PyObject *mod = PyImport_ImportModule("enrich._errors");
        if (mod != NULL) {
            factory = PyObject_GetAttrString(mod, "error_for");
            Py_DECREF(mod);
        }
        if (factory == NULL) {
            PyErr_Clear();
            PyErr_Format(PyExc_RuntimeError, "%s%s%s", msg, *detail ? ": " : "", detail);
            return;
        }
    }
    PyObject *exc = PyObject_CallFunction(factory, "iss", code, msg, detail);
    if (exc == NULL)
        return; /* the factory's own exception stands */
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
}
%}

/* ---- status: raise on anything but ENRICH_OK ------------------------- */
%typemap(out) enrich_status {
    if ($1 != ENRICH_OK) {
        enrich_py_raise($1, ENRICH_PY_DETAIL(arg1));
        SWIG_fail;
    }
    $result = SWIG_Py_Void();
}

/* enrich_delivery_close frees its handle: no errmsg to read afterwards. */
%typemap(out) enrich_status enrich_delivery_close {
    if ($1 != ENRICH_OK) {
        enrich_py_raise($1, "");
        SWIG_fail;
    }
    $result = SWIG_Py_Void();
}

/* pipeline_compile, delivery_open and store_open_ex: the detail is in the call's own
 * message buffer (never the shared store's), raised from its argout, which
 * runs after the handle's. */
%typemap(out) enrich_status enrich_pipeline_compile, enrich_status enrich_delivery_open,
              enrich_status enrich_store_open_ex {
    $result = SWIG_Py_Void();
}
%typemap(in, numinputs=0) (char *errbuf, size_t errbuf_cap) (char buf[512]) {
    buf[0] = '\0';
    $1 = buf;
    $2 = sizeof buf;
}
%typemap(argout) (char *errbuf, size_t errbuf_cap) {
    if (result != ENRICH_OK) {
        Py_XDECREF($result);
        $result = NULL;
        enrich_py_raise(result, $1);
        SWIG_fail;
    }
}

/* ---- input bytes ------------------------------------------------------ */
%typemap(in) (const void *src, size_t src_len) (Py_buffer view, int have_view = 0) {
    if ($input == Py_None) {
        $1 = NULL;
        $2 = 0;
    } else if (PyUnicode_Check($input)) {
        Py_ssize_t n = 0;
        const char *s = PyUnicode_AsUTF8AndSize($input, &n);
        if (s == NULL)
            SWIG_fail;
        $1 = (void *)s;
        $2 = (size_t)n;
    } else {
        if (PyObject_GetBuffer($input, &view, PyBUF_SIMPLE) != 0)
            SWIG_fail;
        have_view = 1;
        $1 = view.buf;
        $2 = (size_t)view.len;
    }
}
%typemap(freearg) (const void *src, size_t src_len) {
    if (have_view$argnum)
        PyBuffer_Release(&view$argnum);
}
%typemap(typecheck, precedence=SWIG_TYPECHECK_STRING) (const void *src, size_t src_len) {
    $1 = $input == Py_None || PyUnicode_Check($input) || PyObject_CheckBuffer($input);
}

/* ---- file names: str, bytes or os.PathLike --------------------------- */
%typemap(in) const char *path (PyObject *fs = NULL), const char *dst_path (PyObject *fs = NULL),
             const char *root_dir (PyObject *fs = NULL) {
    if (!PyUnicode_FSConverter($input, &fs))
        SWIG_fail;
    $1 = PyBytes_AS_STRING(fs);
}
%typemap(freearg) const char *path, const char *dst_path, const char *root_dir {
    Py_XDECREF(fs$argnum);
}

/* ---- output bytes ------------------------------------------------------ */
/* Python passes the capacity; the bytes object is the buffer. */
%typemap(in) (void *dst, size_t dst_cap) (PyObject *out = NULL) {
    size_t cap = PyLong_AsSize_t($input);
    if (cap == (size_t)-1 && PyErr_Occurred())
        SWIG_fail;
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(cap ? cap : 1));
    if (out == NULL)
        SWIG_fail;
    $1 = PyBytes_AS_STRING(out);
    $2 = cap;
}
%typemap(argout) (void *dst, size_t dst_cap) {
    $result = SWIG_Python_AppendOutput($result, out$argnum);
    out$argnum = NULL;
}
%typemap(freearg) (void *dst, size_t dst_cap) {
    Py_XDECREF(out$argnum);
}
/* Every `size_t *written` follows its dst (argouts run in argument order),
 * so the result is that one bytes object: shrink it in place. */
%typemap(in, numinputs=0) size_t *written (size_t n = 0) {
    $1 = &n;
}
%typemap(argout) size_t *written {
    if (PyBytes_CheckExact($result) && _PyBytes_Resize(&$result, (Py_ssize_t)*$1) < 0)
        SWIG_fail;
}

/* ---- borrowed spans: one copy into a bytes object --------------------- */
%typemap(out) enrich_buf {
    $result = PyBytes_FromStringAndSize($1.ptr ? (const char *)$1.ptr : "", (Py_ssize_t)$1.len);
}

/* ---- new handles: owned by the proxy, freed by its destructor ---------- */
%define ENRICH_PY_HANDLE_OUT(TYPE)
%typemap(in, numinputs=0) TYPE **out (TYPE *h = NULL) {
    $1 = &h;
}
%typemap(argout) TYPE **out {
    $result = SWIG_Python_AppendOutput($result,
                                       SWIG_NewPointerObj(*$1, $*1_descriptor, SWIG_POINTER_OWN));
}
%enddef
ENRICH_PY_HANDLE_OUT(enrich_store)
ENRICH_PY_HANDLE_OUT(enrich_pipeline)
ENRICH_PY_HANDLE_OUT(enrich_ctx)
ENRICH_PY_HANDLE_OUT(enrich_delivery)

/* ---- calls that run without the interpreter lock ---------------------- */
/* Their buffers are Py_buffer views or bytes objects the wrapper holds, so
 * nothing they touch can move or die meanwhile. A ctx must not be used by
 * two threads at once: the Pythonic layer serializes each Context. */
%define ENRICH_PY_NOGIL(FN)
%exception FN {
    Py_BEGIN_ALLOW_THREADS
    $action
    Py_END_ALLOW_THREADS
}
%enddef
ENRICH_PY_NOGIL(enrich_store_open)
ENRICH_PY_NOGIL(enrich_bind_store_load)
ENRICH_PY_NOGIL(enrich_bind_store_apply)
ENRICH_PY_NOGIL(enrich_store_refresh)
ENRICH_PY_NOGIL(enrich_store_put)
ENRICH_PY_NOGIL(enrich_store_delete)
ENRICH_PY_NOGIL(enrich_store_copy)
ENRICH_PY_NOGIL(enrich_bind_store_verify)
ENRICH_PY_NOGIL(enrich_pipeline_compile)
ENRICH_PY_NOGIL(enrich_batch_run)
ENRICH_PY_NOGIL(enrich_aws_batch_run)
ENRICH_PY_NOGIL(enrich_encode)
ENRICH_PY_NOGIL(enrich_aws_encode)
ENRICH_PY_NOGIL(enrich_gzip)
/* A delivery is used by one thread at a time: enrich.Delivery serializes
 * its calls (and the Context whose batch it runs or writes). */
ENRICH_PY_NOGIL(enrich_delivery_open)
ENRICH_PY_NOGIL(enrich_delivery_run)
ENRICH_PY_NOGIL(enrich_delivery_write)
ENRICH_PY_NOGIL(enrich_delivery_flush)
ENRICH_PY_NOGIL(enrich_delivery_close)

/* ---- lifetime: a handle keeps the handle it was made from alive -------- */
/* A ctx must be freed before its pipeline, and a pipeline before its store,
 * whatever order Python's garbage collector finalizes objects in. Each
 * SWIG proxy's owning object (SwigPyObject, not tracked by the collector)
 * holds a strong reference to its parent's in its `next` slot, and SWIG
 * frees an object's handle before dropping `next`. The Pythonic layer calls
 * this right after each *_compile/*_create. */
%inline %{
static PyObject *enrich_py_keep_parent(PyObject *child, PyObject *parent)
{
    SwigPyObject *c = SWIG_Python_GetSwigThis(child);
    SwigPyObject *p = SWIG_Python_GetSwigThis(parent);
    if (c == NULL || p == NULL) {
        PyErr_SetString(PyExc_TypeError, "keep_parent: not SWIG handles");
        return NULL;
    }
    if (c->next != NULL) {
        PyErr_SetString(PyExc_ValueError, "keep_parent: already linked");
        return NULL;
    }
    Py_INCREF((PyObject *)p);
    c->next = (PyObject *)p;
    Py_RETURN_NONE;
}
%}
