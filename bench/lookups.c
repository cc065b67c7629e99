/* bench-lookups: the lookups alone, libenrich's page walk against LMDB's
 * mdb_get, on the same keys in the same process.
 *
 *   bench-lookups --store PATH --events FILE [--table products]
 *                 [--batch 500] [--reps 5] [--max-events N]
 *
 * The keys are the events' (extracted before timing, as bench-floor does);
 * every batch of them is looked up three ways, each in one snapshot per
 * batch: the walk one key at a time (store_snap_get, what a lone event
 * costs), the walk 32 keys at a time (store_snap_get_many, what the
 * engine's lookahead window asks), and mdb_get in a read transaction of its
 * own environment on the same file (the floor's loop). The three run in
 * turn within each repetition, so that the machine's drift falls on all of
 * them alike; the figures are medians over the repetitions.
 *
 * This program links the library's internals (lib/store), which the other
 * bench programs never do: it times a part of the hot path that the public
 * API does not expose alone. Prints one JSON object. */
#include "ctx.h" /* ENGINE_WINDOW: the keys the engine looks up at a time */
#include "mdb.h"
#include "store.h"

#define LOOKUPS_WINDOW ENGINE_WINDOW

static double time_walk_one(enrich_store *st, store_table t, const bench_batches *bb,
                            const bench_keys *k, unsigned long long *check)
{
    store_snap *snap = NULL;
    char err[512];
    double t0 = bench_now();
    for (size_t b = 0; b < bb->n; b++) {
        if (store_snap_begin(st, &snap, err))
            bench_die("snapshot: %s", err);
        for (size_t i = bb->first[b]; i < bb->first[b + 1]; i++) {
            const void *v;
            size_t vl;
            if (k->len[i] && store_snap_get(snap, t, k->p[i], k->len[i], &v, &vl) == ENRICH_OK)
                *check += vl + ((const unsigned char *)v)[0];
        }
        store_snap_end(st, snap);
    }
    double secs = bench_now() - t0;
    store_snap_free(snap);
    return secs;
}

static double time_walk_many(enrich_store *st, store_table t, const bench_batches *bb,
                             const bench_keys *k, unsigned long long *check)
{
    store_snap *snap = NULL;
    char err[512];
    store_req reqs[LOOKUPS_WINDOW];
    double t0 = bench_now();
    for (size_t b = 0; b < bb->n; b++) {
        if (store_snap_begin(st, &snap, err))
            bench_die("snapshot: %s", err);
        size_t i = bb->first[b], end = bb->first[b + 1];
        while (i < end) {
            size_t n = 0;
            for (; i < end && n < LOOKUPS_WINDOW; i++) {
                if (!k->len[i])
                    continue;
                reqs[n].key = k->p[i];
                reqs[n].key_len = k->len[i];
                n++;
            }
            store_snap_get_many(snap, t, reqs, n);
            for (size_t r = 0; r < n; r++) {
                if (reqs[r].st == ENRICH_OK)
                    *check += reqs[r].val_len + ((const unsigned char *)reqs[r].val)[0];
            }
        }
        store_snap_end(st, snap);
    }
    double secs = bench_now() - t0;
    store_snap_free(snap);
    return secs;
}

static double time_mdb_get(MDB_env *env, MDB_dbi dbi, const bench_batches *bb, const bench_keys *k,
                           unsigned long long *check)
{
    MDB_txn *txn;
    int rc;
    if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)))
        bench_die("mdb_txn_begin: %s", mdb_strerror(rc));
    mdb_txn_reset(txn);
    double t0 = bench_now();
    for (size_t b = 0; b < bb->n; b++) {
        if ((rc = mdb_txn_renew(txn)))
            bench_die("mdb_txn_renew: %s", mdb_strerror(rc));
        for (size_t i = bb->first[b]; i < bb->first[b + 1]; i++) {
            MDB_val key = {k->len[i], (void *)k->p[i]}, v;
            if (k->len[i] && mdb_get(txn, dbi, &key, &v) == MDB_SUCCESS)
                *check += v.mv_size + ((const unsigned char *)v.mv_data)[0];
        }
        mdb_txn_reset(txn);
    }
    double secs = bench_now() - t0;
    mdb_txn_abort(txn);
    return secs;
}

int main(int argc, char **argv)
{
    bench_opts o = {.table = "products", .batch = 500, .reps = 5};
    for (int i = 1; i < argc; i++) {
        if (!bench_common_opt(argc, argv, &i, &o))
            bench_die("unknown option %s", argv[i]);
    }
    const char *store = o.store, *events = o.events, *table = o.table;
    size_t batch = o.batch, reps = o.reps, max_events = o.max_events;
    if (!store || !events || !batch || !reps)
        bench_die("usage: bench-lookups --store PATH --events FILE [--table T] [--batch N] "
                  "[--reps N] [--max-events N]");
    bench_file ev = bench_map(events);
    bench_batches bb = bench_split(ev.p, ev.n, batch, max_events);
    bench_keys k = bench_keys_of(&ev, &bb);
    size_t lookups = k.with_key;
    if (!lookups)
        bench_die("%s: no event has a key", events);

    enrich_store *st;
    char why[512] = "";
    if (enrich_store_open_ex(store, ENRICH_STORE_RDONLY, &st, why, sizeof why))
        bench_die("%s: %s", store, why);
    store_table t;
    size_t nkey;
    char err[512];
    if (store_table_resolve(st, table, &t, &nkey, err))
        bench_die("%s: %s", store, err);

    MDB_env *env;
    MDB_dbi dbi;
    bench_mdb_open(store, table, &env, &dbi);

    double *one = bench_xmalloc(reps * sizeof *one), *many = bench_xmalloc(reps * sizeof *many),
           *get = bench_xmalloc(reps * sizeof *get), *ratio = bench_xmalloc(reps * sizeof *ratio);
    unsigned long long c1 = 0, c2 = 0, c3 = 0;
    for (size_t r = 0; r <= reps; r++) { /* the first pass warms the pages */
        unsigned long long a = 0, b = 0, c = 0;
        double s1 = time_walk_one(st, t, &bb, &k, &a);
        double s2 = time_walk_many(st, t, &bb, &k, &b);
        double s3 = time_mdb_get(env, dbi, &bb, &k, &c);
        if (a != b || a != c)
            bench_die("the three ways found different values (%llu, %llu, %llu)", a, b, c);
        if (r == 0)
            continue;
        c1 += a, c2 += b, c3 += c;
        one[r - 1] = s1 * 1e9 / (double)lookups;
        many[r - 1] = s2 * 1e9 / (double)lookups;
        get[r - 1] = s3 * 1e9 / (double)lookups;
        ratio[r - 1] = s2 / s3;
    }
    bench_json j = bj_begin(stdout);
    bj_open(&j, NULL, '{');
    bj_str(&j, "cmd", "lookups");
    bj_num(&j, "lookups", (double)lookups);
    bj_num(&j, "reps", (double)reps);
    bj_num(&j, "walk_one_ns", bench_median(one, reps));
    bj_num(&j, "walk_many_ns", bench_median(many, reps));
    bj_num(&j, "mdb_get_ns", bench_median(get, reps));
    /* Per repetition, then the median: both sides from the same moment. */
    bj_num(&j, "walk_many_over_mdb_get", bench_median(ratio, reps));
    bj_num(&j, "checksum", (double)((c1 + c2 + c3) % 1000000007ULL));
    bj_close(&j, '}');
    mdb_env_close(env);
    enrich_store_close(st);
    free(one);
    free(many);
    free(get);
    free(ratio);
    bench_keys_free(&k);
    bench_free_batches(&bb);
    return 0;
}
