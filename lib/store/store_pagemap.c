/* The data file's second mapping, which the page-checked lookup reads
 * (store_walk.c, store_snap.c).
 *
 * LMDB's own map address is not part of its API (mdb_env_info's
 * me_mapaddr is only the fixed-map address), so the walk reads a read-only
 * shared mapping of the same file: the same page-cache pages, so the same
 * bytes, with no copy. Two things follow from owning it:
 *
 *  - Its address range is reserved far beyond the file (reading past the
 *    end of a file mapping is SIGBUS, but the walk never reads a page
 *    beyond the file's known end). A writer that grows the file, in this
 *    process or another, does not move it; only LMDB's own map growing
 *    past the reservation remaps it, under map_lock held for writing.
 *  - LMDB's own mapping is then touched by readers only for the meta pages
 *    and table opens, so when a reader must remap it (another process grew
 *    the map) the unmap has almost no page-table entries to tear down: the
 *    23-37 ms munmap of docs/reliability.md came from the lookups' pages. */
#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "lmdb_format.h"
#include "store_internal.h"

#define GIB ((size_t)1 << 30)

size_t store_reader_mapsize(uint64_t file_bytes)
{
    uint64_t want = file_bytes > (uint64_t)(SIZE_MAX / 16) ? SIZE_MAX / 2 : file_bytes * 8;
    if (want < GIB)
        want = GIB;
    return (size_t)((want + GIB - 1) / GIB * GIB);
}

static bool file_size(const store_env *e, uint64_t *bytes)
{
    int fd;
    struct stat st;
    if (mdb_env_get_fd(e->env, &fd) != MDB_SUCCESS || fd < 0 || fstat(fd, &st) != 0 ||
        st.st_size < 0)
        return false;
    *bytes = (uint64_t)st.st_size;
    return true;
}

static void map_reserve(store_env *e, size_t lmdb_mapsize)
{
    int fd;
    uint64_t bytes;
    if (mdb_env_get_fd(e->env, &fd) != MDB_SUCCESS || fd < 0 || !file_size(e, &bytes))
        return;
    size_t len = store_reader_mapsize(bytes);
    if (lmdb_mapsize > len)
        len = lmdb_mapsize; /* LMDB never uses pages past its own map */
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return; /* lookups fall back to mdb_get */
    /* The lookups' pages are random reads: no read-ahead around them. */
    madvise(p, len, MADV_RANDOM);
    e->pmap = p;
    e->pmap_len = len;
    __atomic_store_n(&e->file_pages, bytes / e->psize, __ATOMIC_RELEASE);
}

void store_pagemap_open(store_env *e)
{
    MDB_stat st;
    MDB_envinfo info;
    e->pmap = NULL;
    e->pmap_len = 0;
    if (sizeof(size_t) < 8 || mdb_env_stat(e->env, &st) != MDB_SUCCESS ||
        mdb_env_info(e->env, &info) != MDB_SUCCESS || st.ms_psize < 512)
        return;
    e->psize = st.ms_psize;
    map_reserve(e, info.me_mapsize);
}

void store_pagemap_close(store_env *e)
{
    if (e->pmap)
        munmap((void *)(uintptr_t)e->pmap, e->pmap_len);
    e->pmap = NULL;
    e->pmap_len = 0;
}

void store_pagemap_fit(store_env *e)
{
    MDB_envinfo info;
    if (!e->pmap || mdb_env_info(e->env, &info) != MDB_SUCCESS ||
        info.me_mapsize <= e->pmap_len)
        return;
    store_pagemap_close(e);
    map_reserve(e, info.me_mapsize);
}

bool store_pagemap_view(store_env *e, uint64_t txnid, walk_map *m, walk_tree *main_tree)
{
    if (!e->pmap)
        return false;
    size_t psize = e->psize;
    /* Commit T's meta page is page T % 2 (LMDB alternates them). */
    size_t at = (size_t)(txnid & 1) * psize;
    if (at + psize > e->pmap_len)
        return false;
    uint64_t known = __atomic_load_n(&e->file_pages, __ATOMIC_ACQUIRE);
    if (known <= (txnid & 1))
        return false;
    meta_page mp;
    meta_read(e->pmap + at, psize, &mp);
    if (!mp.ok || mp.txnid != txnid || mp.psize != psize)
        return false;
    uint64_t need = mp.last_pg + 1;
    if (need > known) {
        /* The file grew since (a commit): learn its new end once. */
        uint64_t bytes;
        if (file_size(e, &bytes)) {
            known = bytes / psize;
            __atomic_store_n(&e->file_pages, known, __ATOMIC_RELEASE);
        }
    }
    uint64_t npages = need < known ? need : known;
    if (npages > e->pmap_len / psize)
        npages = e->pmap_len / psize;
    m->base = e->pmap;
    m->npages = npages;
    m->psize = psize;
    main_tree->root = mp.main_db.root;
    main_tree->depth = mp.main_db.depth;
    main_tree->branch_pages = mp.main_db.branch;
    return true;
}
