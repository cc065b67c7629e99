/* The floor's LMDB environment, shared by bench-floor and bench-lookups so
 * that both time mdb_get under the same flags. Header-only. */
#ifndef BENCH_MDB_H
#define BENCH_MDB_H

#include <lmdb.h>

#include "common.h"

/* store opened read-only (no TLS, no read-ahead) and table's handle (NULL:
 * the main tree) made and published to the environment by a committed
 * transaction, so that the read transactions of the timed loops can use
 * it after a reset. Dies on failure. */
static inline void bench_mdb_open(const char *store, const char *table, MDB_env **env,
                                  MDB_dbi *dbi)
{
    MDB_txn *txn;
    int rc = mdb_env_create(env);
    if (!rc)
        rc = mdb_env_set_maxdbs(*env, 64);
    if (!rc)
        rc = mdb_env_set_maxreaders(*env, 126);
    if (!rc)
        rc = mdb_env_open(*env, store, MDB_RDONLY | MDB_NOSUBDIR | MDB_NOTLS | MDB_NORDAHEAD,
                          0644);
    if (rc)
        bench_die("%s: %s", store, mdb_strerror(rc));
    rc = mdb_txn_begin(*env, NULL, MDB_RDONLY, &txn);
    if (!rc)
        rc = mdb_dbi_open(txn, table, 0, dbi);
    if (!rc)
        rc = mdb_txn_commit(txn);
    if (rc)
        bench_die("%s: table %s: %s", store, table ? table : "(main)", mdb_strerror(rc));
}

#endif /* BENCH_MDB_H */
