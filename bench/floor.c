/* bench-floor: the physical limits of this machine on the bench workload.
 *
 *   bench-floor mdb-get --store PATH --events FILE [--table products] [--plain]
 *                       [--batch 500] [--reps 3]
 *       a bare mdb_get loop over the events' keys (extracted before timing),
 *       one read transaction per batch (renew/reset), in libenrich's own
 *       store file (the named table) or, with --plain, a plain LMDB file.
 *   bench-floor memcpy  --events FILE [--batch 500] [--reps 3]
 *       a memcpy of each batch of input into an output buffer.
 *
 * Prints one JSON object. Rates are per event (no-key events count too, as
 * they do for libenrich; they cost no mdb_get). */
#include "mdb.h"

int main(int argc, char **argv)
{
    if (argc < 2)
        bench_die("usage: bench-floor mdb-get|memcpy --events FILE ...");
    const char *mode = argv[1];
    bench_opts o = {.table = "products", .batch = 500, .reps = 3};
    int plain = 0;
    for (int i = 2; i < argc; i++) {
        if (bench_common_opt(argc, argv, &i, &o))
            continue;
        if (!strcmp(argv[i], "--plain"))
            plain = 1;
        else
            bench_die("unknown option %s", argv[i]);
    }
    const char *store = o.store, *events = o.events, *table = o.table;
    size_t batch = o.batch, reps = o.reps, max_events = o.max_events;
    if (!events || !batch || !reps)
        bench_die("--events FILE is required");
    bench_file ev = bench_map(events);
    bench_batches bb = bench_split(ev.p, ev.n, batch, max_events);
    double *eps = bench_xmalloc(reps * sizeof *eps);
    unsigned long long check = 0;
    size_t gets = 0, found = 0;
    size_t bytes = bb.off[bb.n] - bb.off[0];
    bench_json j = bj_begin(stdout);

    if (!strcmp(mode, "memcpy")) {
        size_t maxb = 0;
        for (size_t b = 0; b < bb.n; b++)
            if (bb.off[b + 1] - bb.off[b] > maxb)
                maxb = bb.off[b + 1] - bb.off[b];
        char *dst = bench_xmalloc(maxb + 64);
        memset(dst, 0, maxb + 64);
        for (size_t r = 0; r <= reps; r++) {
            double t0 = bench_now();
            for (size_t b = 0; b < bb.n; b++) {
                size_t n = bb.off[b + 1] - bb.off[b];
                memcpy(dst, ev.p + bb.off[b], n);
                check += (unsigned char)dst[n - 1];
                __asm__ volatile("" ::"r"(dst) : "memory");
            }
            double t = bench_now() - t0;
            if (r > 0) /* the first pass is a warm-up */
                eps[r - 1] = (double)bb.events / t;
        }
        free(dst);
    } else if (!strcmp(mode, "mdb-get")) {
        if (!store)
            bench_die("--store PATH is required");
        bench_keys keys = bench_keys_of(&ev, &bb); /* untimed */
        const char **kp = keys.p;
        const size_t *kl = keys.len;
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        bench_mdb_open(store, plain ? NULL : table, &env, &dbi);
        /* One read txn, reset/renewed per batch. */
        int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
        if (rc)
            bench_die("%s: %s", store, mdb_strerror(rc));
        mdb_txn_reset(txn);
        for (size_t r = 0; r <= reps; r++) {
            double t0 = bench_now();
            gets = found = 0;
            for (size_t b = 0; b < bb.n; b++) {
                if ((rc = mdb_txn_renew(txn)))
                    bench_die("renew: %s", mdb_strerror(rc));
                for (size_t i = bb.first[b]; i < bb.first[b + 1]; i++) {
                    if (!kl[i])
                        continue;
                    MDB_val k = {kl[i], (void *)kp[i]}, v;
                    gets++;
                    rc = mdb_get(txn, dbi, &k, &v);
                    if (rc && rc != MDB_NOTFOUND)
                        bench_die("mdb_get: %s", mdb_strerror(rc));
                    if (rc == MDB_SUCCESS) {
                        found++;
                        /* Read the value as enrichment would (copy it out). */
                        check += v.mv_size + ((const unsigned char *)v.mv_data)[v.mv_size - 1];
                    }
                }
                mdb_txn_reset(txn);
            }
            double t = bench_now() - t0;
            if (r > 0)
                eps[r - 1] = (double)bb.events / t;
        }
        mdb_txn_abort(txn);
        mdb_env_close(env);
        bench_keys_free(&keys);
    } else {
        bench_die("unknown mode %s", mode);
    }
    double med = bench_median(eps, reps);
    bench_mem m = bench_memory();
    bj_open(&j, NULL, '{');
    bj_str(&j, "cmd", mode);
    bj_num(&j, "events", (double)bb.events);
    bj_num(&j, "event_bytes", (double)bytes);
    bj_num(&j, "gets", (double)gets);
    bj_num(&j, "found", (double)found);
    bj_num(&j, "events_per_s", med);
    bj_num(&j, "mb_per_s", med * (double)bytes / (double)bb.events / 1e6);
    bj_num(&j, "checksum", (double)(check % 1000000007ULL));
    bj_num(&j, "vmhwm_kb", (double)m.hwm);
    bj_close(&j, '}');
    bench_free_batches(&bb);
    free(eps);
    return 0;
}
