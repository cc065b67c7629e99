/* The page-checked lookup (lib/store/store_walk.c) on real LMDB files:
 * trees of one leaf and of several levels, values on overflow pages,
 * missing keys on every side, empty tables; each damage kind the walk
 * checks, made by hand on a copy of the file's bytes (a malloc'd copy, so
 * that ASan and valgrind see any read outside it); and a differential test
 * against LMDB's own mdb_get on random stores, for every key and for random
 * misses, one key at a time and in batches. Also through the store API:
 * the snapshot's lookups agree with mdb_get. */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "testutil.h"

#include "common.h"
#include "lmdb_format.h"
#include "store.h"
#include "store_walk.h"

static bool under_valgrind(void)
{
    return getenv("ENRICH_UNDER_VALGRIND") != NULL;
}

/* A plain LMDB file with one named table "t" of the given pairs. */
typedef struct kv {
    unsigned char key[511];
    size_t klen;
    unsigned char *val;
    size_t vlen;
} kv;

static MDB_env *env_open(const char *path, unsigned flags)
{
    MDB_env *env;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 4), 0);
    ck_assert_int_eq(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
    ck_assert_int_eq(mdb_env_open(env, path, MDB_NOSUBDIR | flags, 0644), 0);
    return env;
}

static void write_table(const char *path, const kv *items, size_t n)
{
    MDB_env *env = env_open(path, 0);
    MDB_txn *txn;
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "t", MDB_CREATE, &dbi), 0);
    for (size_t i = 0; i < n; i++) {
        MDB_val k = {items[i].klen, (void *)items[i].key}, v = {items[i].vlen, items[i].val};
        ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    }
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* The file's bytes and the walk's view of table "t". */
typedef struct tree_file {
    unsigned char *bytes;
    size_t len;
    walk_map map;
    walk_tree tree;
    db_record rec;
} tree_file;

static void tree_load(tree_file *f, const char *path)
{
    f->bytes = (unsigned char *)tu_read_file(path, &f->len);
    ck_assert_ptr_nonnull(f->bytes);
    meta_page m[2];
    meta_read(f->bytes, f->len, &m[0]);
    ck_assert(m[0].ok);
    meta_read(f->bytes + m[0].psize, f->len - m[0].psize, &m[1]);
    int n = !m[1].ok ? 0 : m[1].txnid > m[0].txnid;
    f->map.base = f->bytes;
    f->map.psize = m[n].psize;
    f->map.npages = f->len / m[n].psize;
    ck_assert_uint_le(m[n].last_pg + 1, f->map.npages);
    walk_tree main_tree = {m[n].main_db.root, m[n].main_db.depth, m[n].main_db.branch};
    const void *rec;
    size_t rec_len;
    const char *why = NULL;
    ck_assert_int_eq(walk_get(&f->map, &main_tree, WALK_TABLES, "t", 1, &rec, &rec_len, &why),
                     ENRICH_OK);
    ck_assert_uint_eq(rec_len, DB_RECORD);
    db_read(rec, &f->rec);
    f->tree.root = f->rec.root;
    f->tree.depth = f->rec.depth;
    f->tree.branch_pages = f->rec.branch;
}

/* walk_get_many over reqs in both of its ways of searching the bottom
 * branch level (key after key; side by side, as in a tree with more branch
 * pages than stay cached): every answer, value and reason must be
 * walk_get's, one key at a time. */
static void check_many(const walk_map *map, const walk_tree *tree, store_req *reqs, size_t n)
{
    for (int wide = 0; wide < 2; wide++) {
        walk_tree t = *tree;
        t.branch_pages = wide ? UINT64_MAX : 0;
        for (size_t i = 0; i < n; i++) {
            reqs[i].val = NULL;
            reqs[i].val_len = 0;
            reqs[i].why = NULL;
            reqs[i].st = ENRICH_E_INVALID;
        }
        walk_get_many(map, &t, reqs, n);
        for (size_t i = 0; i < n; i++) {
            const void *v = NULL;
            size_t vl = 0;
            const char *why = NULL;
            enrich_status st =
                walk_get(map, tree, WALK_ITEMS, reqs[i].key, reqs[i].key_len, &v, &vl, &why);
            ck_assert_msg(reqs[i].st == st, "key %zu (wide %d): batch %d, alone %d", i, wide,
                          reqs[i].st, st);
            if (st == ENRICH_OK)
                ck_assert(reqs[i].val == v && reqs[i].val_len == vl);
            if (st == ENRICH_E_CORRUPT)
                ck_assert_str_eq(reqs[i].why, why);
        }
    }
}

static enrich_status get(const tree_file *f, const void *key, size_t klen, const void **val,
                         size_t *vlen)
{
    const char *why = NULL;
    enrich_status st = walk_get(&f->map, &f->tree, WALK_ITEMS, key, klen, val, vlen, &why);
    if (st == ENRICH_E_CORRUPT)
        ck_assert_ptr_nonnull(why);
    return st;
}

/* Items "k00000".."k<n>", values of vlen bytes (each its own pattern). */
static kv *seq_items(size_t n, size_t vlen)
{
    kv *items = calloc(n, sizeof *items);
    for (size_t i = 0; i < n; i++) {
        items[i].klen = (size_t)snprintf((char *)items[i].key, sizeof items[i].key, "k%05zu", i);
        items[i].vlen = vlen;
        items[i].val = malloc(vlen ? vlen : 1);
        for (size_t j = 0; j < vlen; j++)
            items[i].val[j] = (unsigned char)(i * 7 + j);
    }
    return items;
}

static void items_free(kv *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i].val);
    free(items);
}

/* Every item found with its bytes; the misses around them not found. */
static void check_all(const tree_file *f, const kv *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const void *v;
        size_t vl;
        ck_assert_int_eq(get(f, items[i].key, items[i].klen, &v, &vl), ENRICH_OK);
        ck_assert_uint_eq(vl, items[i].vlen);
        ck_assert(vl == 0 || memcmp(v, items[i].val, vl) == 0);
        /* Inside the file's bytes, whole. */
        ck_assert((const unsigned char *)v >= f->bytes &&
                  (const unsigned char *)v + vl <= f->bytes + f->len);
    }
    static const char *misses[] = {"", "a", "k", "k0000", "k00000\x01", "k000005", "k99999",
                                   "l", "\xff\xff"};
    for (size_t i = 0; i < sizeof misses / sizeof *misses; i++) {
        const void *v;
        size_t vl;
        size_t kl = strlen(misses[i]);
        bool present = false;
        for (size_t j = 0; j < n && !present; j++)
            present = items[j].klen == kl && memcmp(items[j].key, misses[i], kl) == 0;
        if (!present)
            ck_assert_int_eq(get(f, misses[i], kl, &v, &vl), ENRICH_E_NOTFOUND);
    }
}

static char *tmp_path(char **dir)
{
    *dir = tu_tmpdir();
    return tu_join(*dir, "w.mdb");
}

START_TEST(walk_single_leaf)
{
    char *dir, *path = tmp_path(&dir);
    kv *items = seq_items(10, 20);
    write_table(path, items, 10);
    tree_file f;
    tree_load(&f, path);
    ck_assert_uint_eq(f.rec.depth, 1);
    check_all(&f, items, 10);
    items_free(items, 10);
    free(f.bytes);
    free(path);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(walk_multi_level_and_batches)
{
    size_t n = under_valgrind() ? 16000 : 40000; /* depth 3 needs > ~12 500 */
    char *dir, *path = tmp_path(&dir);
    kv *items = seq_items(n, 60);
    write_table(path, items, n);
    tree_file f;
    tree_load(&f, path);
    ck_assert_uint_ge(f.rec.depth, 3);
    check_all(&f, items, n);
    /* Batches: the same answers as one at a time, in input order, with
     * misses and repeats mixed in. */
    size_t nb = 777;
    store_req *reqs = calloc(nb, sizeof *reqs);
    char (*keys)[16] = calloc(nb, 16);
    uint64_t seed = 5;
    for (size_t i = 0; i < nb; i++) {
        size_t k = (size_t)(tu_splitmix64(&seed) % (n + n / 4));
        reqs[i].key_len = (size_t)snprintf(keys[i], 16, "k%05zu", k);
        reqs[i].key = keys[i];
    }
    check_many(&f.map, &f.tree, reqs, nb);
    free(keys);
    free(reqs);
    items_free(items, n);
    free(f.bytes);
    free(path);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(walk_overflow_values)
{
    char *dir, *path = tmp_path(&dir);
    size_t n = 60;
    kv *items = seq_items(n, 10);
    for (size_t i = 0; i < n; i += 3) { /* one, two, many pages */
        free(items[i].val);
        items[i].vlen = 3000 + i * 900;
        items[i].val = malloc(items[i].vlen);
        for (size_t j = 0; j < items[i].vlen; j++)
            items[i].val[j] = (unsigned char)(j ^ i);
    }
    write_table(path, items, n);
    tree_file f;
    tree_load(&f, path);
    ck_assert_uint_gt(f.rec.overflow, 0);
    check_all(&f, items, n);
    items_free(items, n);
    free(f.bytes);
    free(path);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(walk_empty_table)
{
    char *dir, *path = tmp_path(&dir);
    write_table(path, NULL, 0);
    tree_file f;
    tree_load(&f, path);
    ck_assert_uint_eq(f.tree.root, NO_PAGE);
    const void *v;
    size_t vl;
    ck_assert_int_eq(get(&f, "k", 1, &v, &vl), ENRICH_E_NOTFOUND);
    store_req r = {.key = "k", .key_len = 1};
    walk_get_many(&f.map, &f.tree, &r, 1);
    ck_assert_int_eq(r.st, ENRICH_E_NOTFOUND);
    free(f.bytes);
    free(path);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Damage, kind by kind                                              */
/* ---------------------------------------------------------------- */

/* A two-level tree (a branch root over leaves), with an overflow value. */
typedef struct damage_fixture {
    char *dir, *path;
    kv *items;
    size_t n;
    tree_file f;
    unsigned char *pristine;
} damage_fixture;

static void fixture_make(damage_fixture *d)
{
    d->path = tmp_path(&d->dir);
    d->n = 400;
    d->items = seq_items(d->n, 40);
    free(d->items[200].val);
    d->items[200].vlen = 9000;
    d->items[200].val = calloc(1, 9000);
    write_table(d->path, d->items, d->n);
    tree_load(&d->f, d->path);
    ck_assert_uint_eq(d->f.rec.depth, 2);
    d->pristine = malloc(d->f.len);
    memcpy(d->pristine, d->f.bytes, d->f.len);
}

static void fixture_reset(damage_fixture *d)
{
    memcpy(d->f.bytes, d->pristine, d->f.len);
}

static void fixture_free(damage_fixture *d)
{
    items_free(d->items, d->n);
    free(d->f.bytes);
    free(d->pristine);
    free(d->path);
    tu_rmtree(d->dir);
    free(d->dir);
}

static unsigned char *page(damage_fixture *d, uint64_t pgno)
{
    return d->f.bytes + pgno * d->f.map.psize;
}

/* Node i of a page (its offset from the page's offsets array). */
static unsigned char *node(unsigned char *pg, unsigned i)
{
    return pg + rd16(pg + PAGEHDR + 2 * i);
}

static void wr16(unsigned char *p, uint16_t v)
{
    memcpy(p, &v, 2);
}

static void wr64(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

/* Counts of outcomes over every item: the damage must give ENRICH_E_CORRUPT
 * for want_corrupt keys at least (key must be among them when not NULL),
 * and leave every other key found with its bytes or (where a damaged page
 * hides it) not found, never a wrong value. */
static void expect_damage(damage_fixture *d, const char *key, const char *what)
{
    size_t corrupt = 0;
    bool key_corrupt = key == NULL;
    for (size_t i = 0; i < d->n; i++) {
        const void *v;
        size_t vl;
        const char *why = NULL;
        enrich_status st = walk_get(&d->f.map, &d->f.tree, WALK_ITEMS, d->items[i].key,
                                    d->items[i].klen, &v, &vl, &why);
        if (st == ENRICH_E_CORRUPT) {
            corrupt++;
            ck_assert_ptr_nonnull(why);
            if (key && d->items[i].klen == strlen(key) &&
                memcmp(d->items[i].key, key, d->items[i].klen) == 0)
                key_corrupt = true;
        } else if (st == ENRICH_OK) {
            ck_assert_msg(vl == d->items[i].vlen && memcmp(v, d->items[i].val, vl) == 0,
                          "%s: a wrong value for key %zu", what, i);
        } else {
            ck_assert_int_eq(st, ENRICH_E_NOTFOUND);
        }
    }
    ck_assert_msg(corrupt > 0 && key_corrupt, "%s: %zu keys corrupt", what, corrupt);
    /* The batch walk agrees. */
    store_req *reqs = calloc(d->n, sizeof *reqs);
    for (size_t i = 0; i < d->n; i++) {
        reqs[i].key = d->items[i].key;
        reqs[i].key_len = d->items[i].klen;
    }
    check_many(&d->f.map, &d->f.tree, reqs, d->n);
    free(reqs);
    fixture_reset(d);
}

/* The leaf holding key, found by the healthy walk. */
static uint64_t leaf_of(damage_fixture *d, const char *key)
{
    const void *v;
    size_t vl;
    ck_assert_int_eq(get(&d->f, key, strlen(key), &v, &vl), ENRICH_OK);
    return (uint64_t)((const unsigned char *)v - d->f.bytes) / d->f.map.psize;
}

/* The index of key's node on its leaf page. */
static unsigned node_index(unsigned char *pg, const char *key)
{
    unsigned n = (rd16(pg + PAGE_LOWER_AT) - PAGEHDR) / 2;
    for (unsigned i = 0; i < n; i++) {
        unsigned char *nd = node(pg, i);
        if (rd16(nd + 6) == strlen(key) && memcmp(nd + NODEHDR, key, strlen(key)) == 0)
            return i;
    }
    ck_abort_msg("no node for %s", key);
    return 0;
}

START_TEST(walk_every_damage_kind)
{
    damage_fixture d;
    fixture_make(&d);
    uint64_t root = d.f.tree.root;
    unsigned char *rp = page(&d, root);
    uint64_t leaf = leaf_of(&d, "k00100");
    unsigned char *lp = page(&d, leaf);
    unsigned ki = node_index(lp, "k00100");

    /* A branch's child number outside the file, and one below page 2. */
    wr16(node(rp, 1), 0xffff);
    wr16(node(rp, 1) + 4, 0x7fff);
    expect_damage(&d, NULL, "child page outside the file");
    wr16(node(rp, 1), 1);
    wr16(node(rp, 1) + 2, 0);
    wr16(node(rp, 1) + 4, 0);
    expect_damage(&d, NULL, "child page 1 (a meta page)");
    /* A page whose header names another page. */
    wr64(lp, leaf + 1);
    expect_damage(&d, "k00100", "header names another page");
    /* Page types against the level. */
    wr16(rp + PAGE_FLAGS_AT, P_LEAF);
    expect_damage(&d, "k00100", "a leaf where a branch belongs");
    wr16(lp + PAGE_FLAGS_AT, P_BRANCH);
    expect_damage(&d, "k00100", "a branch where a leaf belongs");
    wr16(lp + PAGE_FLAGS_AT, P_OVERFLOW);
    expect_damage(&d, "k00100", "an overflow page where a leaf belongs");
    wr16(lp + PAGE_FLAGS_AT, P_LEAF | P_LEAF2);
    expect_damage(&d, "k00100", "a LEAF2 page in a table without duplicates");
    /* Impossible bounds. */
    wr16(lp + PAGE_LOWER_AT, 8);
    expect_damage(&d, "k00100", "lower inside the header");
    wr16(lp + PAGE_UPPER_AT, (uint16_t)(d.f.map.psize + 1));
    expect_damage(&d, "k00100", "upper past the page");
    wr16(lp + PAGE_LOWER_AT, (uint16_t)(rd16(lp + PAGE_UPPER_AT) + 2));
    expect_damage(&d, "k00100", "lower above upper");
    /* A node offset outside the nodes, or at the page's very end. */
    wr16(lp + PAGEHDR + 2 * ki, 20);
    expect_damage(&d, "k00100", "a node offset inside the offsets");
    wr16(lp + PAGEHDR + 2 * ki, (uint16_t)(d.f.map.psize - 4));
    expect_damage(&d, "k00100", "a node at the page's last bytes");
    /* Key and inline value running past the page. */
    wr16(node(lp, ki) + 6, 0xfff0);
    expect_damage(&d, NULL, "a key size past the page");
    wr16(node(lp, ki), 0xfff0);
    expect_damage(&d, "k00100", "a value size past the page");
    wr16(node(rp, 1) + 6, 0xfff0);
    expect_damage(&d, NULL, "a branch key size past the page");
    /* Node flags a table without duplicates never has. */
    wr16(node(lp, ki) + 4, F_DUPDATA);
    expect_damage(&d, "k00100", "F_DUPDATA on a value");
    wr16(node(lp, ki) + 4, F_SUBDATA);
    expect_damage(&d, "k00100", "F_SUBDATA on a value");
    wr16(node(lp, ki) + 4, F_BIGDATA | F_DUPDATA);
    expect_damage(&d, "k00100", "F_BIGDATA | F_DUPDATA on a value");

    /* The overflow value: its reference, its page, its run. */
    uint64_t big_leaf = 0;
    {
        const void *v;
        size_t vl;
        ck_assert_int_eq(get(&d.f, "k00200", 6, &v, &vl), ENRICH_OK);
        ck_assert_uint_eq(vl, 9000);
        uint64_t ov = (uint64_t)((const unsigned char *)v - d.f.bytes) / d.f.map.psize;
        /* The leaf that refers to it: the one whose node for k00200 has
         * F_BIGDATA. */
        for (uint64_t p = 2; p < d.f.map.npages && !big_leaf; p++) {
            unsigned char *pg = page(&d, p);
            if ((rd16(pg + PAGE_FLAGS_AT) & P_TYPE_BITS) != P_LEAF)
                continue;
            unsigned nk = (rd16(pg + PAGE_LOWER_AT) - PAGEHDR) / 2;
            for (unsigned i = 0; i < nk; i++) {
                unsigned char *nd = node(pg, i);
                if (rd16(nd + 6) == 6 && memcmp(nd + NODEHDR, "k00200", 6) == 0 &&
                    (rd16(nd + 4) & F_BIGDATA)) {
                    ck_assert_uint_eq(rd64(nd + NODEHDR + 6), ov);
                    big_leaf = p;
                    unsigned char *ref = nd + NODEHDR + 6;
                    wr64(ref, d.f.map.npages + 3);
                    expect_damage(&d, "k00200", "an overflow page outside the file");
                    wr64(ref, leaf);
                    expect_damage(&d, "k00200", "an overflow reference to a leaf page");
                    wr16(nd, 0xffff); /* 9000 -> 65535 bytes: more than its 3 pages */
                    expect_damage(&d, "k00200", "a value larger than its overflow run");
                }
            }
        }
        ck_assert_uint_ne(big_leaf, 0);
        unsigned char *op = page(&d, ov);
        uint32_t many = (uint32_t)(d.f.map.npages - ov + 1);
        memcpy(op + PAGE_OVPAGES_AT, &many, 4);
        expect_damage(&d, "k00200", "an overflow run past the file's end");
        memset(op + PAGE_OVPAGES_AT, 0, 4);
        expect_damage(&d, "k00200", "an overflow run of no pages");
        wr64(op, ov + 1);
        expect_damage(&d, "k00200", "an overflow page naming another page");
    }
    /* The tree's record: depth 0 and deeper than any tree. */
    d.f.tree.depth = 0;
    expect_damage(&d, NULL, "depth 0");
    d.f.tree.depth = MAX_DEPTH + 1;
    expect_damage(&d, NULL, "depth past LMDB's limit");
    d.f.tree.depth = 3; /* a leaf where the record's depth wants a branch */
    expect_damage(&d, NULL, "a record deeper than the tree");
    d.f.tree.depth = 2;
    /* The map's bound: a snapshot that ends before the tree's pages. */
    uint64_t npages = d.f.map.npages;
    d.f.map.npages = leaf;
    expect_damage(&d, "k00100", "pages past the snapshot's end");
    d.f.map.npages = npages;
    fixture_free(&d);
}
END_TEST

/* Random bytes over the whole file, many times: no read outside it (ASan,
 * valgrind), and every answer a value of the healthy store, a miss, or
 * ENRICH_E_CORRUPT. */
START_TEST(walk_random_damage_never_reads_outside)
{
    damage_fixture d;
    fixture_make(&d);
    uint64_t seed = 99;
    size_t runs = under_valgrind() ? 60 : 2000;
    size_t corrupt = 0;
    store_req *reqs = calloc(d.n, sizeof *reqs);
    for (size_t i = 0; i < d.n; i++) {
        reqs[i].key = d.items[i].key;
        reqs[i].key_len = d.items[i].klen;
    }
    for (size_t r = 0; r < runs; r++) {
        size_t off = 2 * d.f.map.psize + (size_t)(tu_splitmix64(&seed) % (d.f.len - 2 * d.f.map.psize));
        size_t n = 1 + (size_t)(tu_splitmix64(&seed) % 64);
        for (size_t i = off; i < off + n && i < d.f.len; i++)
            d.f.bytes[i] = (unsigned char)tu_splitmix64(&seed);
        for (size_t i = 0; i < d.n; i++) {
            const void *v;
            size_t vl;
            const char *why;
            enrich_status st = walk_get(&d.f.map, &d.f.tree, WALK_ITEMS, d.items[i].key,
                                        d.items[i].klen, &v, &vl, &why);
            if (st == ENRICH_OK) {
                ck_assert((const unsigned char *)v >= d.f.bytes &&
                          (const unsigned char *)v + vl <= d.f.bytes + d.f.len);
                /* The value's bytes themselves may be what changed: the
                 * item checksum sees that, not the walk. */
            }
            corrupt += st == ENRICH_E_CORRUPT;
        }
        /* The batch walk, both ways, reads nothing outside either and
         * gives the same answers and reasons. */
        check_many(&d.f.map, &d.f.tree, reqs, d.n);
        fixture_reset(&d);
    }
    ck_assert_uint_gt(corrupt, 0);
    free(reqs);
    fixture_free(&d);
}
END_TEST

/* ---------------------------------------------------------------- */
/* Differential: the walk and mdb_get on random stores                */
/* ---------------------------------------------------------------- */

START_TEST(walk_agrees_with_mdb_get)
{
    uint64_t seed = 1000 + (uint64_t)_i;
    size_t n = under_valgrind() ? 800 : 5000 + (size_t)(tu_splitmix64(&seed) % 20000);
    kv *items = calloc(n, sizeof *items);
    for (size_t i = 0; i < n; i++) {
        /* Keys of 1..511 random bytes (NULs, 0xff, shared prefixes). */
        size_t kl = 1 + (size_t)(tu_splitmix64(&seed) % (i % 10 == 0 ? 511 : 24));
        for (size_t j = 0; j < kl; j++)
            items[i].key[j] = (unsigned char)(tu_splitmix64(&seed) % (i % 3 ? 4 : 256));
        items[i].klen = kl;
        size_t vl = i % 50 == 0 ? (size_t)(tu_splitmix64(&seed) % 20000)
                                : (size_t)(tu_splitmix64(&seed) % 300);
        items[i].vlen = vl;
        items[i].val = malloc(vl ? vl : 1);
        for (size_t j = 0; j < vl; j++)
            items[i].val[j] = (unsigned char)tu_splitmix64(&seed);
    }
    char *dir, *path = tmp_path(&dir);
    write_table(path, items, n); /* duplicates: the last put wins, in both */
    tree_file f;
    tree_load(&f, path);
    MDB_env *env = env_open(path, MDB_RDONLY);
    MDB_txn *txn;
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "t", 0, &dbi), 0);
    size_t probes = 2 * n;
    store_req *reqs = calloc(probes, sizeof *reqs);
    unsigned char (*miss)[32] = calloc(n, 32);
    size_t hits = 0;
    for (size_t p = 0; p < probes; p++) {
        const unsigned char *key;
        size_t kl;
        if (p < n) {
            key = items[p].key;
            kl = items[p].klen;
        } else { /* random misses, and near misses: a key cut or extended */
            size_t i = p - n;
            kl = 1 + (size_t)(tu_splitmix64(&seed) % 31);
            if (i % 2 && items[i].klen >= kl) {
                memcpy(miss[i], items[i].key, kl);
                if (kl == items[i].klen && kl < 32)
                    miss[i][kl++] = 0;
            } else {
                for (size_t j = 0; j < kl; j++)
                    miss[i][j] = (unsigned char)(tu_splitmix64(&seed) % 5);
            }
            key = miss[i];
        }
        reqs[p].key = key;
        reqs[p].key_len = kl;
        MDB_val k = {kl, (void *)key}, v;
        int rc = mdb_get(txn, dbi, &k, &v);
        const void *wv;
        size_t wl;
        enrich_status st = get(&f, key, kl, &wv, &wl);
        ck_assert_msg(rc == MDB_SUCCESS ? st == ENRICH_OK : st == ENRICH_E_NOTFOUND,
                      "probe %zu: mdb_get %d, walk %d", p, rc, st);
        if (rc == MDB_SUCCESS) {
            hits++;
            ck_assert_uint_eq(wl, v.mv_size);
            ck_assert(wl == 0 || memcmp(wv, v.mv_data, wl) == 0);
            /* The same place in the file as LMDB's own answer. */
            ck_assert_uint_eq((size_t)((const unsigned char *)wv - f.bytes) % f.map.psize,
                              (size_t)((uintptr_t)v.mv_data % f.map.psize));
        }
    }
    ck_assert_uint_ge(hits, n * 9 / 10);
    check_many(&f.map, &f.tree, reqs, probes);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    free(miss);
    free(reqs);
    items_free(items, n);
    free(f.bytes);
    free(path);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* The store's snapshot lookups (the walk over the second mapping) give
 * LMDB's answers, one at a time and in batches, on a libenrich store. */
START_TEST(walk_store_snapshot_agrees)
{
    char *dir = tu_tmpdir();
    char *path = tu_join(dir, "s.mdb");
    enrich_store *s = NULL;
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_CREATE, &s), ENRICH_OK);
    ebuf b = {0};
    size_t n = under_valgrind() ? 2000 : 30000;
    for (size_t i = 0; i < n; i++)
        ebuf_printf(&b, "{\"id\":\"i%zu\",\"v\":%zu}\n", i * 3, i);
    ck_assert_int_eq(tu_load(s, "t", "id", ENRICH_LOAD_NDJSON, NULL, 0, b.p, b.len, NULL),
                     ENRICH_OK);
    enrich_store_close(s);
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_RDONLY, &s), ENRICH_OK);
    store_table t;
    size_t nkey;
    char err[ENRICH_ERRMSG_CAP];
    ck_assert_int_eq(store_table_resolve(s, "t", &t, &nkey, err), ENRICH_OK);
    store_snap *snap = NULL;
    ck_assert_int_eq(store_snap_begin(s, &snap, err), ENRICH_OK);
    size_t probes = n * 2;
    store_req *reqs = calloc(probes, sizeof *reqs);
    char (*keys)[24] = calloc(probes, 24);
    for (size_t p = 0; p < probes; p++) {
        reqs[p].key_len = (size_t)snprintf(keys[p], 24, "i%zu", p * 3 / 2);
        reqs[p].key = keys[p];
    }
    store_snap_get_many(snap, t, reqs, probes);
    size_t hits = 0;
    for (size_t p = 0; p < probes; p++) {
        const void *v;
        size_t vl;
        enrich_status st = store_snap_get(snap, t, reqs[p].key, reqs[p].key_len, &v, &vl);
        ck_assert_int_eq(st, reqs[p].st);
        bool present = (p * 3 / 2) % 3 == 0 && (p * 3 / 2) / 3 < n;
        ck_assert_int_eq(st, present ? ENRICH_OK : ENRICH_E_NOTFOUND);
        if (st == ENRICH_OK) {
            hits++;
            ck_assert_uint_eq(vl, reqs[p].val_len);
            ck_assert(memcmp(v, reqs[p].val, vl) == 0);
            item_view iv;
            ck_assert(item_view_parse(v, vl, &iv));
            ck_assert_int_eq(item_checksum(v, vl, &iv), ITEM_SUM_OK);
        }
    }
    ck_assert_uint_gt(hits, 0);
    store_snap_end(s, snap);
    store_snap_free(snap);
    /* And enrich_store_get, which takes the same path. */
    char out[256];
    size_t w;
    ck_assert_int_eq(enrich_store_get(s, "t", "i3", 2, out, sizeof out, &w), ENRICH_OK);
    ck_assert_int_eq(enrich_store_get(s, "t", "i4", 2, out, sizeof out, &w), ENRICH_E_NOTFOUND);
    enrich_store_close(s);
    free(keys);
    free(reqs);
    ebuf_free(&b);
    free(path);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* A table with LMDB's duplicate keys (MDB_DUPSORT), which libenrich never
 * makes but another LMDB program could add to a store: its lookups go
 * through mdb_get, one at a time and in batches. A key with two values has
 * a node flagged F_DUPDATA, which the walk would refuse as damage: its
 * answer (LMDB's first value) shows that mdb_get answered. */
START_TEST(walk_falls_back_to_mdb_get_for_dupsort_tables)
{
    char *dir = tu_tmpdir();
    char *path = tu_join(dir, "s.mdb");
    enrich_store *s = NULL;
    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_CREATE, &s), ENRICH_OK);
    ebuf b = {0};
    for (int i = 0; i < 500; i++)
        ebuf_printf(&b, "{\"id\":\"k%03d\",\"v\":%d}\n", i, i);
    ck_assert_int_eq(tu_load(s, "a", "id", ENRICH_LOAD_NDJSON, NULL, 0, b.p, b.len, NULL),
                     ENRICH_OK);
    enrich_store_close(s);
    /* Table "d": table "a"'s items under MDB_DUPSORT, k007 twice. */
    MDB_env *env;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 256), 0);
    ck_assert_int_eq(mdb_env_set_mapsize(env, (size_t)64 << 20), 0);
    ck_assert_int_eq(mdb_env_open(env, path, MDB_NOSUBDIR, 0644), 0);
    MDB_txn *txn;
    MDB_dbi a, d, meta;
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "a", 0, &a), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "d", MDB_CREATE | MDB_DUPSORT, &d), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "__enrich_meta", 0, &meta), 0);
    MDB_cursor *c;
    ck_assert_int_eq(mdb_cursor_open(txn, a, &c), 0);
    MDB_val k, v;
    const void *v7 = NULL;
    size_t v7_len = 0;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        ck_assert_int_eq(mdb_put(txn, d, &k, &v, 0), 0);
        if (k.mv_size == 4 && memcmp(k.mv_data, "k007", 4) == 0) {
            v7 = v.mv_data;
            v7_len = v.mv_size;
        }
    }
    mdb_cursor_close(c);
    ck_assert_ptr_nonnull(v7);
    /* A second value for k007 that sorts after the first: a copy with its
     * last byte raised (bytes, not an item: only mdb_get reads it). */
    unsigned char *second = malloc(v7_len);
    memcpy(second, v7, v7_len);
    second[v7_len - 1] = 0xff;
    k = (MDB_val){4, "k007"};
    v = (MDB_val){v7_len, second};
    ck_assert_int_eq(mdb_put(txn, d, &k, &v, 0), 0);
    MDB_val mk = {7, "table:d"}, mv = {2, "id"};
    ck_assert_int_eq(mdb_put(txn, meta, &mk, &mv, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    free(second);

    ck_assert_int_eq(enrich_store_open(path, ENRICH_STORE_RDONLY, &s), ENRICH_OK);
    store_table ta, td;
    size_t nkey;
    char err[ENRICH_ERRMSG_CAP];
    ck_assert_int_eq(store_table_resolve(s, "a", &ta, &nkey, err), ENRICH_OK);
    ck_assert_int_eq(store_table_resolve(s, "d", &td, &nkey, err), ENRICH_OK);
    store_snap *snap = NULL;
    ck_assert_int_eq(store_snap_begin(s, &snap, err), ENRICH_OK);
    store_req reqs[520];
    char keys[520][8];
    for (int i = 0; i < 520; i++) {
        reqs[i].key_len = (size_t)snprintf(keys[i], sizeof keys[i], "k%03d", i);
        reqs[i].key = keys[i];
    }
    store_snap_get_many(snap, td, reqs, 520);
    for (int i = 0; i < 520; i++) {
        const void *va, *vd;
        size_t la, ld;
        enrich_status sa = store_snap_get(snap, ta, keys[i], 4, &va, &la);
        enrich_status sd = store_snap_get(snap, td, keys[i], 4, &vd, &ld);
        ck_assert_int_eq(sa, i < 500 ? ENRICH_OK : ENRICH_E_NOTFOUND);
        ck_assert_int_eq(sd, sa);
        ck_assert_int_eq(reqs[i].st, sa);
        if (sa == ENRICH_OK) {
            ck_assert(la == ld && memcmp(va, vd, la) == 0);
            ck_assert(reqs[i].val_len == la && memcmp(reqs[i].val, va, la) == 0);
        }
    }
    store_snap_end(s, snap);
    store_snap_free(snap);
    /* And a batch through the engine (the memo off: the window's path). */
    enrich_pipeline *pl = NULL;
    static const char rules[] = "{\"lookups\":[{\"key\":\"id\",\"table\":\"d\"}]}";
    ck_assert_int_eq(enrich_pipeline_compile(s, rules, sizeof rules - 1, &pl, NULL, 0),
                     ENRICH_OK);
    enrich_ctx *ctx = NULL;
    ck_assert_int_eq(enrich_ctx_create(pl, &ctx), ENRICH_OK);
    ck_assert_int_eq(enrich_ctx_set_option(ctx, ENRICH_OPT_LOOKUP_CACHE, 0), ENRICH_OK);
    ebuf ev = {0};
    for (int i = 0; i < 40; i++)
        ebuf_printf(&ev, "{\"id\":\"k%03d\"}\n", i * 13);
    ck_assert_int_eq(enrich_batch_run(ctx, ENRICH_INPUT_NDJSON, ev.p, ev.len), ENRICH_OK);
    for (int i = 0; i < 40; i++) {
        enrich_buf r = enrich_batch_record(ctx, (size_t)i);
        char want[32];
        snprintf(want, sizeof want, "\"v\":%d", i * 13);
        ck_assert_int_eq(enrich_batch_outcome(ctx, (size_t)i),
                         i * 13 < 500 ? ENRICH_OUTCOME_SUCCESS : ENRICH_OUTCOME_NOT_FOUND);
        if (i * 13 < 500)
            ck_assert_msg(memmem(r.ptr, r.len, want, strlen(want)), "%.*s", (int)r.len,
                          (const char *)r.ptr);
    }
    enrich_ctx_free(ctx);
    enrich_pipeline_free(pl);
    enrich_store_close(s);
    ebuf_free(&ev);
    ebuf_free(&b);
    free(path);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

static Suite *walk_suite(void)
{
    Suite *s = suite_create("walk");
    TCase *tc = tcase_create("walk");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, walk_single_leaf);
    tcase_add_test(tc, walk_multi_level_and_batches);
    tcase_add_test(tc, walk_overflow_values);
    tcase_add_test(tc, walk_empty_table);
    tcase_add_test(tc, walk_every_damage_kind);
    tcase_add_test(tc, walk_random_damage_never_reads_outside);
    tcase_add_loop_test(tc, walk_agrees_with_mdb_get, 0, 4);
    tcase_add_test(tc, walk_store_snapshot_agrees);
    tcase_add_test(tc, walk_falls_back_to_mdb_get_for_dupsort_tables);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(walk_suite());
}
