/* bench-cjson-lmdb: the "obvious" C implementation of the seed's Lambda,
 * a peer for enrich-bench. Each event is parsed into a cJSON tree, its
 * productId looked up with mdb_get in a plain LMDB file (key: productId,
 * value: the item's other members as JSON text), the item's JSON parsed and
 * its members copied into the event, the status and timestamp added, and
 * the event printed with cJSON_PrintUnformatted into an NDJSON buffer.
 *
 *   bench-cjson-lmdb load --db PATH --items items.ndjson
 *   bench-cjson-lmdb run  --db PATH --events FILE [--batch 500] [--reps 3]
 *                         [--mode full|parse|print]
 *
 * --mode parse times cJSON_ParseWithLength + cJSON_Delete alone; --mode
 * print times cJSON_PrintUnformatted of already-parsed events alone. One
 * read transaction and one clock read per batch (generous to the peer). */
#include <cjson/cJSON.h>
#include <lmdb.h>

#include "../common.h"

static void mdb_check(int rc, const char *what)
{
    if (rc)
        bench_die("%s: %s", what, mdb_strerror(rc));
}

static MDB_env *open_env(const char *path, int rdonly)
{
    MDB_env *env;
    mdb_check(mdb_env_create(&env), "env");
    if (!rdonly)
        mdb_check(mdb_env_set_mapsize(env, (size_t)64 << 30), "mapsize");
    mdb_check(mdb_env_open(env, path, (rdonly ? MDB_RDONLY : 0) | MDB_NOSUBDIR | MDB_NOTLS, 0644),
              path);
    return env;
}

static int cmd_load(const char *db, const char *items)
{
    bench_file in = bench_map(items);
    unlink(db);
    char lock[4096];
    snprintf(lock, sizeof lock, "%s-lock", db);
    unlink(lock);
    double t0 = bench_now();
    MDB_env *env = open_env(db, 0);
    MDB_txn *txn;
    MDB_dbi dbi;
    mdb_check(mdb_txn_begin(env, NULL, 0, &txn), "txn");
    mdb_check(mdb_dbi_open(txn, NULL, 0, &dbi), "dbi");
    size_t pos = 0, n = 0;
    while (pos < in.n) {
        const char *nl = memchr(in.p + pos, '\n', in.n - pos);
        size_t end = nl ? (size_t)(nl - in.p) : in.n;
        if (end > pos) {
            cJSON *it = cJSON_ParseWithLength(in.p + pos, end - pos);
            cJSON *k = cJSON_DetachItemFromObjectCaseSensitive(it, "productId");
            if (!it || !cJSON_IsString(k))
                bench_die("%s: bad item at byte %zu", items, pos);
            char *val = cJSON_PrintUnformatted(it);
            MDB_val kv = {strlen(k->valuestring), k->valuestring}, vv = {strlen(val), val};
            mdb_check(mdb_put(txn, dbi, &kv, &vv, 0), "put");
            cJSON_free(val);
            cJSON_Delete(k);
            cJSON_Delete(it);
            n++;
        }
        pos = end + 1;
    }
    mdb_check(mdb_txn_commit(txn), "commit");
    mdb_env_close(env);
    double t = bench_now() - t0;
    bench_json j = bj_begin(stdout);
    bj_open(&j, NULL, '{');
    bj_str(&j, "cmd", "load");
    bj_num(&j, "items", (double)n);
    bj_num(&j, "seconds", t);
    bj_num(&j, "items_per_s", (double)n / t);
    bj_close(&j, '}');
    return 0;
}

static void now_iso(char *buf, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

typedef struct obuf {
    char *p;
    size_t len, cap;
} obuf;

static void ob_put(obuf *o, const char *s, size_t n)
{
    if (o->len + n > o->cap) {
        size_t c = o->cap ? o->cap * 2 : 1 << 16;
        while (c < o->len + n)
            c *= 2;
        o->p = bench_xrealloc(o->p, c);
        o->cap = c;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static int cmd_run(const char *db, const char *events, size_t batch, size_t reps,
                   size_t max_events, const char *mode)
{
    bench_file ev = bench_map(events);
    bench_batches bb = bench_split(ev.p, ev.n, batch, max_events);
    int m_full = !strcmp(mode, "full"), m_parse = !strcmp(mode, "parse"),
        m_print = !strcmp(mode, "print");
    if (!m_full && !m_parse && !m_print)
        bench_die("unknown mode %s", mode);
    MDB_env *env = m_full ? open_env(db, 1) : NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi = 0;
    if (env) {
        mdb_check(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), "txn");
        mdb_check(mdb_dbi_open(txn, NULL, 0, &dbi), "dbi");
        mdb_txn_reset(txn);
    }
    double *eps = bench_xmalloc(reps * sizeof *eps);
    size_t counts[3] = {0, 0, 0}, out_bytes = 0;
    obuf out = {0};
    cJSON **trees = bench_xmalloc(batch * sizeof *trees);
    for (size_t r = 0; r <= reps; r++) {
        double busy = 0;
        counts[0] = counts[1] = counts[2] = 0;
        out_bytes = 0;
        double t0 = bench_now();
        for (size_t b = 0; b < bb.n; b++) {
            out.len = 0;
            if (m_print) {
                /* Parse untimed, then time the printing alone. */
                size_t k = 0;
                for (size_t i = bb.first[b]; i < bb.first[b + 1]; i++)
                    trees[k++] = cJSON_ParseWithLength(ev.p + bb.line[i], bench_line_len(&bb, ev.p, i));
                double p0 = bench_now();
                for (size_t i = 0; i < k; i++) {
                    char *s = cJSON_PrintUnformatted(trees[i]);
                    ob_put(&out, s, strlen(s));
                    ob_put(&out, "\n", 1);
                    cJSON_free(s);
                }
                busy += bench_now() - p0;
                for (size_t i = 0; i < k; i++)
                    cJSON_Delete(trees[i]);
                out_bytes += out.len;
                continue;
            }
            if (m_parse) {
                for (size_t i = bb.first[b]; i < bb.first[b + 1]; i++) {
                    cJSON *e = cJSON_ParseWithLength(ev.p + bb.line[i], bench_line_len(&bb, ev.p, i));
                    if (!e)
                        bench_die("bad event %zu", i);
                    cJSON_Delete(e);
                }
                continue;
            }
            mdb_check(mdb_txn_renew(txn), "renew");
            char ts[40];
            now_iso(ts, sizeof ts);
            for (size_t i = bb.first[b]; i < bb.first[b + 1]; i++) {
                cJSON *e = cJSON_ParseWithLength(ev.p + bb.line[i], bench_line_len(&bb, ev.p, i));
                if (!e)
                    bench_die("bad event %zu", i);
                const cJSON *pid = cJSON_GetObjectItemCaseSensitive(e, "productId");
                const char *status;
                if (!cJSON_IsString(pid) || !pid->valuestring[0]) {
                    status = "no_product_id";
                    counts[2]++;
                } else {
                    MDB_val k = {strlen(pid->valuestring), pid->valuestring}, v;
                    int rc = mdb_get(txn, dbi, &k, &v);
                    if (rc == MDB_NOTFOUND) {
                        status = "product_not_found";
                        counts[1]++;
                    } else {
                        mdb_check(rc, "get");
                        cJSON *it = cJSON_ParseWithLength(v.mv_data, v.mv_size);
                        cJSON *f = it ? it->child : NULL;
                        for (; f; f = f->next)
                            cJSON_AddItemToObject(e, f->string, cJSON_Duplicate(f, 1));
                        cJSON_Delete(it);
                        cJSON_AddStringToObject(e, "enrichmentTimestamp", ts);
                        status = "success";
                        counts[0]++;
                    }
                }
                cJSON_AddStringToObject(e, "enrichmentStatus", status);
                char *s = cJSON_PrintUnformatted(e);
                ob_put(&out, s, strlen(s));
                ob_put(&out, "\n", 1);
                cJSON_free(s);
                cJSON_Delete(e);
            }
            mdb_txn_reset(txn);
            out_bytes += out.len;
        }
        double t = m_print ? busy : bench_now() - t0;
        if (r > 0) /* the first pass is a warm-up */
            eps[r - 1] = (double)bb.events / t;
    }
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
    double med = bench_median(eps, reps);
    bench_mem m = bench_memory();
    bench_json j = bj_begin(stdout);
    bj_open(&j, NULL, '{');
    bj_str(&j, "cmd", "run");
    bj_str(&j, "mode", mode);
    bj_num(&j, "events", (double)bb.events);
    bj_num(&j, "events_per_s", med);
    bj_num(&j, "mb_per_s", med * (double)(bb.off[bb.n] - bb.off[0]) / (double)bb.events / 1e6);
    bj_num(&j, "output_bytes", (double)out_bytes);
    bj_num(&j, "success", (double)counts[0]);
    bj_num(&j, "not_found", (double)counts[1]);
    bj_num(&j, "no_key", (double)counts[2]);
    bj_num(&j, "vmhwm_kb", (double)m.hwm);
    bj_close(&j, '}');
    free(out.p);
    free(trees);
    free(eps);
    bench_free_batches(&bb);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        bench_die("usage: bench-cjson-lmdb load|run --db PATH ...");
    const char *db = NULL, *items = NULL, *mode = "full";
    bench_opts o = {.batch = 500, .reps = 3};
    for (int i = 2; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(argv[i], "--db")) db = v, i++;
        else if (!strcmp(argv[i], "--items")) items = v, i++;
        else if (!strcmp(argv[i], "--mode")) mode = v, i++;
        else if (!strcmp(argv[i], "--store") || !strcmp(argv[i], "--table") ||
                 !bench_common_opt(argc, argv, &i, &o))
            bench_die("unknown option %s", argv[i]); /* --db names its file */
    }
    const char *events = o.events;
    size_t batch = o.batch, reps = o.reps, max_events = o.max_events;
    if (!strcmp(argv[1], "load") && db && items)
        return cmd_load(db, items);
    if (!strcmp(argv[1], "run") && (db || strcmp(mode, "full")) && events && batch && reps)
        return cmd_run(db, events, batch, reps, max_events, mode);
    bench_die("usage: bench-cjson-lmdb load --db PATH --items FILE | run --db PATH --events FILE");
    return 2;
}
