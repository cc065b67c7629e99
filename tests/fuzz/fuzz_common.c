/* The fuzz targets' shared store (see fuzz_common.h). */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enrich_store *store;
static char dir[256];
static char path[300];
static char lock[310];

void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    abort();
}

static void cleanup(void)
{
    enrich_store_close(store);
    store = NULL;
    unlink(path);
    unlink(lock);
    rmdir(dir);
}

static const char items[] =
    "{\"productId\":{\"S\":\"PROD-001\"},\"productName\":{\"S\":\"Wireless Headphones\"},"
    "\"category\":{\"S\":\"Electronics\"},\"price\":{\"N\":\"49.99\"}}\n"
    "{\"productId\":{\"S\":\"PROD-002\"},\"productName\":{\"S\":\"Smart Watch\"},"
    "\"category\":{\"S\":\"Wearables\"},\"price\":{\"N\":\"79.99\"},"
    "\"tags\":{\"SS\":[\"a\",\"b\"]},\"dims\":{\"M\":{\"w\":{\"N\":\"1\"}}}}\n"
    "{\"productId\":{\"N\":\"42\"},\"productName\":{\"S\":\"Numbered\"}}\n";
static const char regional[] = "{\"region\":\"eu\",\"sku\":\"A1\",\"stock\":3}\n"
                               "{\"region\":\"us\",\"sku\":\"A1\",\"stock\":0}\n";

enrich_store *fuzz_store(void)
{
    if (store)
        return store;
    const char *tmp = getenv("TMPDIR");
    /* /dev/shm keeps LMDB's fsyncs off the disk when it is there. */
    if (!tmp || !*tmp)
        tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/enrich-fuzz-XXXXXX", tmp);
    if (!mkdtemp(dir))
        fuzz_fail(__FILE__, __LINE__, "mkdtemp");
    snprintf(path, sizeof path, "%s/store.lmdb", dir);
    snprintf(lock, sizeof lock, "%s-lock", path);
    enrich_store *w = NULL;
    FUZZ_CHECK(enrich_store_open(path, ENRICH_STORE_CREATE, &w) == ENRICH_OK);
    enrich_load_options o = ENRICH_LOAD_OPTIONS_INIT;
    o.format = ENRICH_LOAD_DYNAMODB;
    o.key = "productId";
    FUZZ_CHECK(enrich_store_load(w, "products", &o, items, sizeof items - 1, NULL) == ENRICH_OK);
    o.format = ENRICH_LOAD_NDJSON;
    o.key = "region,sku";
    FUZZ_CHECK(enrich_store_load(w, "regional", &o, regional, sizeof regional - 1, NULL) ==
               ENRICH_OK);
    enrich_store_close(w);
    FUZZ_CHECK(enrich_store_open(path, ENRICH_STORE_RDONLY, &store) == ENRICH_OK);
    atexit(cleanup);
    return store;
}
