/* enrich_store_verify: read every page of a store's file and say what is
 * damaged.
 *
 * LMDB trusts its file: a lookup follows page numbers and node offsets as
 * it finds them, and it has no checksums, so damage inside a valid file is
 * seen only when a lookup happens to cross it (docs/reliability.md). This
 * walk reads the data file itself, as bytes, in LMDB's on-disk format
 * (docs/store-format.md describes it): both meta pages, then every tree
 * from its root, checking each page's header, its node offsets and sizes,
 * key order within a page and against the bounds its parent gives, the
 * depth of every leaf and the page counts the tree's record states. Every
 * page may be reached once (from a tree, as an overflow run or as a free
 * page listed in the free-page tree); a second visit is damage. Every item
 * is decoded (item.c), its checksum checked, and its key attributes
 * re-encoded and compared with the key it is stored under. The tables of
 * the main tree and the records of the store's meta table must agree.
 *
 * The walk reads a private read-only mapping of the file, never through
 * LMDB, so a damaged page cannot make it fault: every offset is checked
 * against the page and every page number against the file before use. A
 * read transaction is held meanwhile, so the snapshot being read cannot be
 * overwritten by a concurrent load. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"
#include "store_verify.h"
#include "lmdb_format.h"

#define DAMAGE_LISTED 100    /* entries kept in the report; all are counted */

enum { SEEN_NONE, SEEN_META, SEEN_TREE, SEEN_FREE };
enum tree_kind { T_FREE, T_MAIN, T_META, T_TABLE };

/* A named tree of the main tree: a table, or the store's meta table. */
typedef struct named_db {
    char *name;
    db_record db;
    uint64_t page; /* the main tree's leaf that holds its record */
    bool has_meta; /* a "table:<name>" record names it */
    char *spec;    /* that record's key spec */
} named_db;

/* Counts of one walk of one tree, compared with its record. */
typedef struct tree_count {
    uint64_t branch, leaf, overflow, entries;
} tree_count;

typedef struct verifier {
    const unsigned char *map;
    uint64_t npages; /* pages the snapshot uses: last page + 1 */
    size_t psize;
    unsigned flags;
    uint8_t *seen;
    ebuf damage; /* the report's "damage" array members, comma-separated */
    uint64_t ndamage;
    /* The tree being walked. */
    enum tree_kind kind;
    const char *table;
    table_key key;
    tree_count count;
    ebuf scratch;
    /* Totals. */
    uint64_t items, items_checksummed, items_unchecked, pages_tree, pages_free;
    named_db *names;
    size_t nnames, names_cap;
    char *format; /* the meta table's "format" value */
    store_verify_visit visit;
    void *visit_user;
} verifier;

/* A JSON string of bytes for a report: printable ASCII as it is, every
 * other byte as \xHH (keys are bytes, not necessarily text). */
static void put_bytes(ebuf *o, const unsigned char *p, size_t n)
{
    ebuf t = {0};
    size_t shown = n > 96 ? 96 : n;
    for (size_t i = 0; i < shown; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
            ebuf_putc(&t, (char)p[i]);
        else
            ebuf_printf(&t, "\\x%02x", p[i]);
    }
    if (shown < n)
        ebuf_puts(&t, "...");
    ebuf_json_string(o, t.p ? t.p : "", t.len);
    if (t.oom)
        o->oom = true;
    ebuf_free(&t);
}

static void damage(verifier *v, uint64_t page, const unsigned char *key, size_t key_len,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Record one finding: where (table, page, key when known) and what. */
static void damage(verifier *v, uint64_t page, const unsigned char *key, size_t key_len,
                   const char *fmt, ...)
{
    v->ndamage++;
    if (v->ndamage > DAMAGE_LISTED)
        return;
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    ebuf *o = &v->damage;
    if (o->len)
        ebuf_putc(o, ',');
    ebuf_puts(o, "{\"table\":");
    if (v->kind == T_TABLE)
        ebuf_json_string(o, v->table, strlen(v->table));
    else
        ebuf_puts(o, v->kind == T_FREE   ? "\"(free pages)\""
                     : v->kind == T_MAIN ? "\"(table directory)\""
                                         : "\"" STORE_META_DB "\"");
    if (page != NO_PAGE)
        ebuf_printf(o, ",\"page\":%llu", (unsigned long long)page);
    if (key) {
        ebuf_puts(o, ",\"key\":");
        put_bytes(o, key, key_len);
    }
    ebuf_puts(o, ",\"what\":");
    ebuf_json_string(o, what, strlen(what));
    ebuf_putc(o, '}');
}

static void visit(verifier *v, uint64_t pgno, size_t off, size_t len)
{
    if (v->visit && len)
        v->visit(v->visit_user, pgno * v->psize + off, len);
}

/* Claim pages [pgno, pgno + n) for what; false (and damage) when one is
 * out of the file or claimed already. */
static bool claim(verifier *v, uint64_t pgno, uint64_t n, uint8_t what, const char *role)
{
    if (pgno < 2 || n == 0 || pgno >= v->npages || n > v->npages - pgno) {
        damage(v, NO_PAGE, NULL, 0, "%s page %llu%s is outside the file's %llu pages", role,
               (unsigned long long)pgno, n > 1 ? " (and its run)" : "",
               (unsigned long long)v->npages);
        return false;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (v->seen[pgno + i] != SEEN_NONE) {
            damage(v, pgno + i, NULL, 0, "%s page reached a second time", role);
            return false;
        }
    }
    memset(v->seen + pgno, what, n);
    return true;
}

/* Key order of the tree: the free-page tree's keys are native 8-byte
 * integers (transaction ids), every other tree's plain bytes. */
static int key_cmp(const verifier *v, const unsigned char *a, size_t an, const unsigned char *b,
                   size_t bn)
{
    if (v->kind == T_FREE && an == 8 && bn == 8) {
        uint64_t x = rd64(a), y = rd64(b);
        return x < y ? -1 : x > y;
    }
    size_t n = an < bn ? an : bn;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

typedef struct bound {
    const unsigned char *p; /* NULL: unbounded */
    size_t n;
} bound;

static void visit_item(verifier *v, uint64_t pgno, const unsigned char *key, size_t klen,
                       const unsigned char *val, size_t vlen);
static void leaf_value(verifier *v, uint64_t pgno, const unsigned char *key, size_t klen,
                       const unsigned char *val, size_t vlen);

/* A leaf node's value: inline, or (F_BIGDATA) on a run of overflow pages.
 * NULL (with damage recorded) when the run is not a valid one. */
static const unsigned char *node_value(verifier *v, uint64_t pgno, const unsigned char *node,
                                       const unsigned char *key, size_t klen, size_t dsize)
{
    unsigned nflags = rd16(node + 4);
    const unsigned char *data = node + NODEHDR + klen;
    if (!(nflags & F_BIGDATA))
        return data;
    uint64_t ov = rd64(data);
    if (ov < 2 || ov >= v->npages) {
        damage(v, pgno, key, klen, "overflow page number %llu is outside the file",
               (unsigned long long)ov);
        return NULL;
    }
    const unsigned char *op = v->map + ov * v->psize;
    uint64_t n = rd32(op + 12);
    if ((rd16(op + 10) & (P_BRANCH | P_LEAF | P_OVERFLOW | P_META)) != P_OVERFLOW ||
        rd64(op) != ov) {
        damage(v, ov, key, klen, "overflow page has a bad header");
        return NULL;
    }
    if (n == 0 || (uint64_t)dsize + PAGEHDR > n * v->psize ||
        (n > 1 && (uint64_t)dsize + PAGEHDR <= (n - 1) * v->psize)) {
        damage(v, ov, key, klen, "value of %zu bytes does not fit its %llu overflow pages",
               dsize, (unsigned long long)n);
        return NULL;
    }
    if (!claim(v, ov, n, SEEN_TREE, "overflow"))
        return NULL;
    v->count.overflow += n;
    visit(v, ov, 0, 8);
    visit(v, ov, 10, PAGEHDR - 10 + dsize);
    return op + PAGEHDR;
}

static void walk(verifier *v, uint64_t pgno, unsigned depth, unsigned want_depth, bound lo,
                 bound hi, bool root)
{
    if (!claim(v, pgno, 1, SEEN_TREE, "tree"))
        return;
    const unsigned char *pg = v->map + pgno * v->psize;
    unsigned flags = rd16(pg + 10), lower = rd16(pg + 12), upper = rd16(pg + 14);
    unsigned type = flags & (P_BRANCH | P_LEAF | P_OVERFLOW | P_META | P_LEAF2 | P_SUBP);
    bool leaf = depth + 1 == want_depth;
    if (rd64(pg) != pgno) {
        damage(v, pgno, lo.p, lo.n, "page header names page %llu",
               (unsigned long long)rd64(pg));
        return;
    }
    if (type != (leaf ? P_LEAF : P_BRANCH)) {
        damage(v, pgno, lo.p, lo.n, "page of type 0x%x where the tree's depth wants a %s",
               type, leaf ? "leaf" : "branch");
        return;
    }
    if (lower < PAGEHDR || (lower & 1) || upper < lower || upper > v->psize) {
        damage(v, pgno, lo.p, lo.n, "page bounds lower %u upper %u are impossible", lower,
               upper);
        return;
    }
    unsigned nkeys = (lower - PAGEHDR) / 2;
    if (nkeys == 0 || (!leaf && nkeys < 2 && !root)) {
        damage(v, pgno, lo.p, lo.n, "%s page holds %u keys", leaf ? "leaf" : "branch", nkeys);
        return;
    }
    /* Page number, then flags, bounds and offsets (mp_pad is unused). */
    visit(v, pgno, 0, 8);
    visit(v, pgno, 10, lower - 10);
    leaf ? v->count.leaf++ : v->count.branch++;
    const unsigned char *prev = NULL;
    size_t prev_n = 0;
    for (unsigned i = 0; i < nkeys; i++) {
        unsigned off = rd16(pg + PAGEHDR + 2 * i);
        if (off < upper || off > v->psize - NODEHDR) {
            damage(v, pgno, prev, prev_n, "node %u at offset %u is outside the page's nodes",
                   i, off);
            return;
        }
        const unsigned char *node = pg + off;
        unsigned nflags = rd16(node + 4), klen = rd16(node + 6);
        uint64_t dsize = leaf ? (uint64_t)rd16(node) | (uint64_t)rd16(node + 2) << 16 : 0;
        uint64_t end = (uint64_t)off + NODEHDR + klen;
        if (leaf)
            end += (nflags & F_BIGDATA) ? 8 : dsize;
        if (end > v->psize) {
            damage(v, pgno, prev, prev_n, "node %u runs past the end of the page", i);
            return;
        }
        /* The bytes that mean something: a leaf node whole; of a branch
         * node its child's page number and key size, and its key (but the
         * first node's key, which LMDB never reads). A separator changed
         * within the bounds of its neighbours routes every key as before:
         * it is marked as meaning nothing (the damage test holds that
         * verify finds every change to the rest). */
        if (leaf)
            visit(v, pgno, off, (size_t)(end - off));
        else
            visit(v, pgno, off, i == 0 ? 6 : NODEHDR);
        const unsigned char *key = node + NODEHDR;
        /* A branch's first key is never compared (LMDB ignores it). */
        if (leaf || i > 0) {
            if ((prev && key_cmp(v, prev, prev_n, key, klen) >= 0) ||
                (lo.p && key_cmp(v, key, klen, lo.p, lo.n) < 0) ||
                (hi.p && key_cmp(v, key, klen, hi.p, hi.n) >= 0)) {
                damage(v, pgno, key, klen, "key %u is out of order", i);
                return;
            }
            prev = key;
            prev_n = klen;
        }
        if (!leaf) {
            uint64_t child = (uint64_t)rd16(node) | (uint64_t)rd16(node + 2) << 16 |
                             (uint64_t)nflags << 32;
            bound clo = i == 0 ? lo : (bound){key, klen};
            bound chi = hi;
            if (i + 1 < nkeys) {
                unsigned noff = rd16(pg + PAGEHDR + 2 * (i + 1));
                if (noff >= upper && noff <= v->psize - NODEHDR &&
                    noff + NODEHDR + rd16(pg + noff + 6) <= v->psize)
                    chi = (bound){pg + noff + NODEHDR, rd16(pg + noff + 6)};
            }
            walk(v, child, depth + 1, want_depth, clo, chi, false);
            continue;
        }
        v->count.entries++;
        if (v->kind == T_TABLE || v->kind == T_META || v->kind == T_FREE) {
            if (nflags & ~(unsigned)F_BIGDATA) {
                damage(v, pgno, key, klen, "node flags 0x%x on a value", nflags);
                continue;
            }
        } else if (nflags != F_SUBDATA) {
            /* Plain data in the main tree (another program's LMDB file)
             * is no danger to LMDB at open, only a record flagged for
             * duplicates is: the directory check leaves the rest to
             * meta_init. */
            if (!(v->flags & STORE_VERIFY_DIRECTORY) || (nflags & ~(unsigned)F_BIGDATA))
                damage(v, pgno, key, klen, "an entry of the table directory is not a table "
                       "(flags 0x%x)", nflags);
            continue;
        }
        if (dsize > SIZE_MAX) {
            damage(v, pgno, key, klen, "value size %llu", (unsigned long long)dsize);
            continue;
        }
        const unsigned char *val = node_value(v, pgno, node, key, klen, (size_t)dsize);
        if (val)
            leaf_value(v, pgno, key, klen, val, (size_t)dsize);
    }
}

static void leaf_value(verifier *v, uint64_t pgno, const unsigned char *key, size_t klen,
                       const unsigned char *val, size_t vlen)
{
    switch (v->kind) {
    case T_TABLE:
        visit_item(v, pgno, key, klen, val, vlen);
        return;
    case T_FREE: {
        /* A list of free page numbers: its length first. */
        if (klen != 8 || vlen < 8 || vlen % 8 || rd64(val) != vlen / 8 - 1) {
            damage(v, pgno, key, klen, "free-page list of %zu bytes is malformed", vlen);
            return;
        }
        for (uint64_t i = 1; i < vlen / 8; i++) {
            uint64_t fp = rd64(val + 8 * i);
            if (claim(v, fp, 1, SEEN_FREE, "free"))
                v->pages_free++;
        }
        return;
    }
    case T_MAIN: {
        if (vlen != DB_RECORD) {
            damage(v, pgno, key, klen, "table record of %zu bytes", vlen);
            return;
        }
        if (!array_reserve(&v->names, &v->names_cap, v->nnames + 1, sizeof *v->names, 16)) {
            v->damage.oom = true;
            return;
        }
        named_db *d = &v->names[v->nnames];
        d->name = malloc(klen + 1);
        if (!d->name) {
            v->damage.oom = true;
            return;
        }
        memcpy(d->name, key, klen);
        d->name[klen] = '\0';
        db_read(val, &d->db);
        d->page = pgno;
        d->has_meta = false;
        d->spec = NULL;
        v->nnames++;
        return;
    }
    case T_META: {
        static const char fmt_key[] = "format", tbl[] = "table:";
        if (klen == sizeof fmt_key - 1 && memcmp(key, fmt_key, klen) == 0) {
            free(v->format);
            v->format = strndup((const char *)val, vlen);
            return;
        }
        if (klen > sizeof tbl - 1 && memcmp(key, tbl, sizeof tbl - 1) == 0) {
            size_t nl = klen - (sizeof tbl - 1);
            for (size_t i = 0; i < v->nnames; i++) {
                named_db *d = &v->names[i];
                if (strlen(d->name) == nl && memcmp(d->name, key + sizeof tbl - 1, nl) == 0) {
                    d->has_meta = true;
                    free(d->spec);
                    d->spec = strndup((const char *)val, vlen);
                    if (!d->spec)
                        v->damage.oom = true;
                    return;
                }
            }
            damage(v, pgno, key, klen, "registers a table the store does not hold");
            return;
        }
        if (store_checkpoint_record_valid(key, klen, val, vlen))
            return;
        damage(v, pgno, key, klen, "a record this store format does not have");
        return;
    }
    }
}

/* An item: its layout, its checksum, and the key its key attributes make,
 * which must be the key it is stored under. */
static void visit_item(verifier *v, uint64_t pgno, const unsigned char *key, size_t klen,
                       const unsigned char *val, size_t vlen)
{
    v->items++;
    item_view iv;
    if (!item_view_parse(val, vlen, &iv)) {
        damage(v, pgno, key, klen, "item layout is broken");
        return;
    }
    item_sum sum = item_checksum(val, vlen, &iv);
    if (sum == ITEM_SUM_BAD) {
        damage(v, pgno, key, klen, "item checksum does not match its bytes");
        return;
    }
    sum == ITEM_SUM_OK ? v->items_checksummed++ : v->items_unchecked++;
    if (iv.nkey != v->key.n) {
        damage(v, pgno, key, klen, "item has %u key attributes, the table %zu", iv.nkey,
               v->key.n);
        return;
    }
    ebuf *k = &v->scratch;
    k->len = 0;
    for (uint32_t i = 0; i < iv.nkey; i++) {
        item_member m;
        item_member_at(&iv, i, &m);
        const char *attr = v->key.attrs[i];
        size_t alen = strlen(attr);
        /* The member's name literal is the attribute's, quoted (names of
         * key attributes are checked plain: no escapes to decode). */
        if (m.name_len != alen + 2 || memcmp(m.name + 1, attr, alen) != 0) {
            damage(v, pgno, key, klen, "key attribute %u of the item is not \"%.100s\"", i,
                   attr);
            return;
        }
        if (i)
            ebuf_putc(k, '\0');
        if (m.value[0] == '"') {
            size_t end = 0;
            if (m.value_len < 2 || !jskip_string(m.value, m.value_len, &end) ||
                end != m.value_len) {
                damage(v, pgno, key, klen, "key attribute \"%.100s\" is not a string", attr);
                return;
            }
            jstring_decode(m.value, (jspan){0, m.value_len}, k);
        } else {
            ebuf_put(k, m.value, m.value_len);
        }
    }
    if (k->oom) {
        v->damage.oom = true;
        return;
    }
    if (k->len != klen || memcmp(k->p, key, klen) != 0)
        damage(v, pgno, key, klen, "item's key attributes make another key");
}

/* Walk one tree from its record; compare the counts it states. */
static void walk_db(verifier *v, const db_record *d, uint64_t rec_page)
{
    memset(&v->count, 0, sizeof v->count);
    if (d->root == NO_PAGE) {
        if (d->depth || d->entries || d->branch || d->leaf || d->overflow)
            damage(v, rec_page, NULL, 0, "an empty tree's record states pages or entries");
        return;
    }
    /* The database flags (MDB_REVERSEKEY .. MDB_REVERSEDUP, 0x02..0x40):
     * integer keys for the free-page tree, none for the others. The free
     * tree's record also keeps the environment's persistent flags, of
     * which a libenrich store may have MDB_NOSUBDIR only. */
    unsigned want_flags = v->kind == T_FREE ? 0x08u /* MDB_INTEGERKEY */ : 0u;
    unsigned got = v->kind == T_FREE ? d->flags & ~0x4000u /* MDB_NOSUBDIR */ : d->flags;
    if (got != want_flags) {
        damage(v, rec_page, NULL, 0, "tree flags 0x%x, expected 0x%x", got, want_flags);
        return;
    }
    if (d->depth == 0 || d->depth > MAX_DEPTH) {
        damage(v, rec_page, NULL, 0, "tree depth %u", d->depth);
        return;
    }
    uint64_t before = v->ndamage;
    walk(v, d->root, 0, d->depth, (bound){NULL, 0}, (bound){NULL, 0}, true);
    if (v->ndamage != before)
        return; /* the counts would only repeat it */
    if (v->count.branch != d->branch || v->count.leaf != d->leaf ||
        v->count.overflow != d->overflow || v->count.entries != d->entries)
        damage(v, rec_page, NULL, 0,
               "tree holds %llu/%llu/%llu branch/leaf/overflow pages and %llu entries; its "
               "record says %llu/%llu/%llu and %llu",
               (unsigned long long)v->count.branch, (unsigned long long)v->count.leaf,
               (unsigned long long)v->count.overflow, (unsigned long long)v->count.entries,
               (unsigned long long)d->branch, (unsigned long long)d->leaf,
               (unsigned long long)d->overflow, (unsigned long long)d->entries);
    v->pages_tree += v->count.branch + v->count.leaf + v->count.overflow;
}

/* The meta pages' bytes that mean something: of the newest, its flags and
 * everything but the fixed-map address and the map size (LMDB maps at
 * least the file, whatever the size says); of the other, what decides
 * which one is newest (magic, version, page size, commit id). */
static void meta_ranges(store_verify_visit fn, void *user, size_t psize, int newest)
{
    for (int i = 0; i < 2; i++) {
        uint64_t base = (uint64_t)i * psize;
        fn(user, base + 10, 2);           /* P_META */
        fn(user, base + PAGEHDR, 8);      /* magic, version */
        if (i == newest) {
            fn(user, base + PAGEHDR + 24, META_BYTES - 24);
        } else {
            fn(user, base + PAGEHDR + 24, 4); /* page size */
            fn(user, base + PAGEHDR + META_BYTES - 8, 8);
        }
    }
}

/* The newest meta page, after checking both: page T % 2 holds commit T,
 * the other commit T - 1 (or both 0 before the first commit). */
static int pick_meta(verifier *v, size_t len, meta_page m[2], uint64_t want_txnid, ebuf *rep)
{
    meta_read(v->map, len, &m[0]);
    size_t psize = m[0].ok ? m[0].psize : 4096;
    meta_read(len > psize ? v->map + psize : v->map, len > psize ? len - psize : 0, &m[1]);
    v->kind = T_MAIN;
    if (!m[0].ok && !m[1].ok) {
        damage(v, 0, NULL, 0, "neither meta page is an LMDB meta page");
        return -1;
    }
    int n = !m[0].ok ? 1 : !m[1].ok ? 0 : m[1].txnid > m[0].txnid;
    if (!m[n ^ 1].ok)
        damage(v, (uint64_t)(n ^ 1), NULL, 0, "meta page is not an LMDB meta page");
    else if (m[0].psize != m[1].psize)
        damage(v, 1, NULL, 0, "the meta pages disagree on the page size");
    else if (m[n].txnid % 2 != (uint64_t)n ||
             (m[n].txnid > 0 && m[n ^ 1].txnid != m[n].txnid - 1) ||
             (m[n].txnid == 0 && m[n ^ 1].txnid != 0))
        damage(v, (uint64_t)n, NULL, 0, "meta pages hold commits %llu and %llu",
               (unsigned long long)m[0].txnid, (unsigned long long)m[1].txnid);
    if (want_txnid && m[n].txnid != want_txnid) {
        /* A commit raced the read transaction's start: the caller retries. */
        ebuf_printf(rep, "retry");
        return -2;
    }
    return n;
}

#define TRUST_REACH (PAGEHDR + 65535u + NODEHDR + 65535u + 20u)
/* A walk of the pages a lookup can reach, for store_tail_check. */
typedef struct tail_walk {
    const unsigned char *map;
    uint64_t npages, first_zone;
    size_t psize;
    uint64_t bad;
    unsigned budget; /* page visits left: a damaged branch cannot loop us */
} tail_walk;
static bool tail_page(tail_walk *t, uint64_t pgno, unsigned depth_left);
static bool tail_named(tail_walk *t, uint64_t pgno, unsigned depth_left);

enrich_status store_verify_map(const unsigned char *map, size_t len, uint64_t want_txnid,
                               unsigned flags, ebuf *report, store_verify_visit fn,
                               void *user)
{
    verifier v = {0};
    v.map = map;
    v.flags = flags;
    v.visit = fn;
    v.visit_user = user;
    enrich_status st = ENRICH_OK;
    meta_page m[2];
    ebuf retry = {0};
    int n = len >= 2 * PAGEHDR ? pick_meta(&v, len, m, want_txnid, &retry) : -1;
    if (n == -2) {
        ebuf_free(&retry);
        ebuf_free(&v.damage);
        return ENRICH_E_NOTFOUND;
    }
    if (len < 2 * PAGEHDR) {
        v.kind = T_MAIN;
        damage(&v, 0, NULL, 0, "file of %zu bytes is shorter than two meta pages", len);
    }
    uint64_t txnid = 0;
    if (n >= 0) {
        v.psize = m[n].psize;
        txnid = m[n].txnid;
        if (m[n].last_pg >= len / v.psize) {
            damage(&v, NO_PAGE, NULL, 0, "the file ends before its last page (%llu of %zu "
                   "bytes)", (unsigned long long)(m[n].last_pg + 1) * v.psize, len);
        } else {
            v.npages = m[n].last_pg + 1;
            v.seen = calloc(v.npages, 1);
            if (!v.seen) {
                ebuf_free(&v.damage);
                return ENRICH_E_NOMEM;
            }
            v.seen[0] = v.seen[1] = SEEN_META;
        }
    }
    uint32_t file_crc = 0;
    if (v.seen && fn)
        meta_ranges(fn, user, v.psize, n);
    if (v.seen) {
        /* The directory check of every open reads a few pages, not the file. */
        bool directory = flags & STORE_VERIFY_DIRECTORY;
        if (!directory)
            file_crc = crc32c(map, (size_t)(v.npages * v.psize));
        bool quick = (flags & ENRICH_VERIFY_QUICK) || directory;
        v.kind = T_FREE;
        if (!quick)
            walk_db(&v, &m[n].free_db, (uint64_t)n);
        v.kind = T_MAIN;
        walk_db(&v, &m[n].main_db, (uint64_t)n);
        /* The meta table first (it gives every table its key), then the
         * tables in name order. */
        named_db *meta = NULL;
        for (size_t i = 0; i < v.nnames; i++) {
            if (strcmp(v.names[i].name, STORE_META_DB) == 0)
                meta = &v.names[i];
        }
        if (!meta) {
            /* At open a new store has no meta table yet, and another
             * program's LMDB file has none: meta_init judges those. */
            if (!directory)
                damage(&v, NO_PAGE, NULL, 0, "no %s: not a libenrich store, or its "
                       "directory is damaged", STORE_META_DB);
        } else {
            v.kind = T_META;
            walk_db(&v, &meta->db, meta->page);
            meta->has_meta = true;
            if (!directory && (!v.format || strcmp(v.format, "1") != 0))
                damage(&v, NO_PAGE, NULL, 0, "the store's format record is %s",
                       v.format ? "not 1" : "missing");
        }
        for (size_t i = 0; i < v.nnames && !quick; i++) {
            named_db *d = &v.names[i];
            if (d == meta)
                continue;
            v.kind = T_TABLE;
            v.table = d->name;
            if (!d->has_meta) {
                damage(&v, d->page, NULL, 0, "no key record in %s for this table",
                       STORE_META_DB);
                continue;
            }
            table_key_free(&v.key);
            if (!d->spec || table_key_parse(d->spec, &v.key) != ENRICH_OK) {
                damage(&v, d->page, NULL, 0, "the table's key record cannot be read");
                continue;
            }
            walk_db(&v, &d->db, d->page);
        }
        /* What an open refuses (store_tail_check): a reachable page near
         * the end of the file with nodes outside itself. */
        uint64_t file_pages = len / v.psize;
        uint64_t zone = (TRUST_REACH + v.psize - 1) / v.psize + 1;
        tail_walk t = {map, v.npages, file_pages > zone ? file_pages - zone : 0, v.psize, 0,
                       1u << 22};
        const db_record *main_db = &m[n].main_db;
        if (!directory && main_db->root != NO_PAGE &&
            (!tail_page(&t, main_db->root, main_db->depth ? main_db->depth - 1u : 0) ||
             !tail_named(&t, main_db->root, main_db->depth ? main_db->depth - 1u : 0))) {
            v.kind = T_MAIN;
            damage(&v, t.bad, NULL, 0, "a page near the end of the file has nodes outside "
                   "itself (opens refuse the store)");
        }
        if (!quick) {
            uint64_t unreached = 0;
            for (uint64_t p = 2; p < v.npages; p++)
                unreached += v.seen[p] == SEEN_NONE;
            v.kind = T_MAIN;
            if (unreached)
                damage(&v, NO_PAGE, NULL, 0, "%llu pages belong to no tree and are not free",
                       (unsigned long long)unreached);
        }
    }
    ebuf *r = report;
    ebuf_printf(r, "{\"mode\":\"%s\",\"ok\":%s,\"page_size\":%zu,\"pages\":%llu,"
                   "\"txnid\":%llu,\"file_crc32c\":\"%08x\"",
                (flags & ENRICH_VERIFY_QUICK) ? "quick" : "full", v.ndamage ? "false" : "true",
                v.psize, (unsigned long long)v.npages, (unsigned long long)txnid, file_crc);
    if (!(flags & ENRICH_VERIFY_QUICK))
        ebuf_printf(r, ",\"pages_tree\":%llu,\"pages_free\":%llu,\"items\":%llu,"
                       "\"items_checksummed\":%llu,\"items_without_checksum\":%llu",
                    (unsigned long long)v.pages_tree, (unsigned long long)v.pages_free,
                    (unsigned long long)v.items, (unsigned long long)v.items_checksummed,
                    (unsigned long long)v.items_unchecked);
    ebuf_printf(r, ",\"damage_count\":%llu,\"damage\":[", (unsigned long long)v.ndamage);
    ebuf_put(r, v.damage.p ? v.damage.p : "", v.damage.len);
    ebuf_puts(r, "]}");
    if (v.damage.oom)
        r->oom = true;
    if (v.ndamage)
        st = ENRICH_E_CORRUPT;
    for (size_t i = 0; i < v.nnames; i++) {
        free(v.names[i].name);
        free(v.names[i].spec);
    }
    free(v.names);
    free(v.format);
    free(v.seen);
    table_key_free(&v.key);
    ebuf_free(&v.scratch);
    ebuf_free(&v.damage);
    ebuf_free(&retry);
    return st;
}

/* ---------------------------------------------------------------- */
/* The pages near the end of the file (store_tail_check)             */
/* ---------------------------------------------------------------- */

/* TRUST_REACH (above): how far past the start of a page LMDB (and the
 * item reader after it) may read when it trusts the page: the offsets
 * array (up to 32 767 entries after the header), a node at a 16-bit offset
 * with a 16-bit key size, and an item's header after the key. */

/* The page at pg, alone: if it says it is a branch or leaf page, is every
 * node inside it? Other page types LMDB refuses by type before reading. */
static bool page_self_consistent(const unsigned char *pg, size_t psize)
{
    unsigned flags = rd16(pg + 10), lower = rd16(pg + 12), upper = rd16(pg + 14);
    /* LMDB tests single bits: any page with the branch bit is searched as
     * a branch, else any with the leaf bit as a leaf, whatever else is
     * set. */
    unsigned type = (flags & P_BRANCH) ? P_BRANCH : (flags & P_LEAF) ? P_LEAF : 0;
    if (!type)
        return true;
    if (lower < PAGEHDR || upper < lower || upper > psize)
        return false;
    for (unsigned i = 0; i < (lower - PAGEHDR) / 2; i++) {
        unsigned off = rd16(pg + PAGEHDR + 2 * i);
        if (off < upper || off > psize - NODEHDR)
            return false;
        const unsigned char *node = pg + off;
        uint64_t end = (uint64_t)off + NODEHDR + rd16(node + 6);
        if (type == P_LEAF)
            end += (rd16(node + 4) & F_BIGDATA)
                       ? 8
                       : ((uint64_t)rd16(node) | (uint64_t)rd16(node + 2) << 16);
        if (end > psize)
            return false;
    }
    return true;
}

/* The trees' pages a lookup can reach, checked on their own when they lie
 * in the tail zone (first_zone on). Only branch pages are read outside it,
 * so the cost is a small fraction of the file. false: a reachable page in
 * the zone is not self-consistent (*bad names it). */

static bool tail_page(tail_walk *t, uint64_t pgno, unsigned depth_left)
{
    if (pgno < 2 || pgno >= t->npages || t->budget == 0)
        return true; /* LMDB refuses the page number (or it is not ours to judge) */
    t->budget--;
    const unsigned char *pg = t->map + pgno * t->psize;
    if (pgno >= t->first_zone && !page_self_consistent(pg, t->psize)) {
        t->bad = pgno;
        return false;
    }
    unsigned flags = rd16(pg + 10), lower = rd16(pg + 12), upper = rd16(pg + 14);
    if (!(flags & P_BRANCH) || depth_left == 0 || !page_self_consistent(pg, t->psize) ||
        lower < PAGEHDR)
        return true; /* a leaf, or a branch LMDB cannot follow far */
    (void)upper;
    for (unsigned i = 0; i < (lower - PAGEHDR) / 2; i++) {
        const unsigned char *node = pg + rd16(pg + PAGEHDR + 2 * i);
        uint64_t child = (uint64_t)rd16(node) | (uint64_t)rd16(node + 2) << 16 |
                         (uint64_t)rd16(node + 4) << 32;
        if (!tail_page(t, child, depth_left - 1))
            return false;
    }
    return true;
}

/* The main tree's leaves hold the named trees' records: walk each. */
static bool tail_named(tail_walk *t, uint64_t pgno, unsigned depth_left)
{
    if (pgno < 2 || pgno >= t->npages || t->budget == 0)
        return true;
    const unsigned char *pg = t->map + pgno * t->psize;
    if (!page_self_consistent(pg, t->psize))
        return true; /* judged by tail_page */
    unsigned flags = rd16(pg + 10), lower = rd16(pg + 12);
    if (lower < PAGEHDR)
        return true;
    for (unsigned i = 0; i < (lower - PAGEHDR) / 2; i++) {
        const unsigned char *node = pg + rd16(pg + PAGEHDR + 2 * i);
        if (flags & P_BRANCH) {
            uint64_t child = (uint64_t)rd16(node) | (uint64_t)rd16(node + 2) << 16 |
                             (uint64_t)rd16(node + 4) << 32;
            if (depth_left && !tail_named(t, child, depth_left - 1))
                return false;
        } else if ((flags & P_LEAF) && rd16(node + 4) == F_SUBDATA &&
                   ((uint64_t)rd16(node) | (uint64_t)rd16(node + 2) << 16) == DB_RECORD) {
            db_record d;
            db_read(node + NODEHDR + rd16(node + 6), &d);
            if (d.root != NO_PAGE && !tail_page(t, d.root, d.depth ? d.depth - 1u : 0))
                return false;
        }
    }
    return true;
}

enrich_status store_tail_check(int fd, uint64_t file_bytes, uint64_t last_pg, size_t psize,
                               char *errmsg, const char *path)
{
    (void)last_pg;
    if (psize == 0 || file_bytes < 2 * (uint64_t)psize || file_bytes > SIZE_MAX)
        return ENRICH_OK;
    void *m = mmap(NULL, (size_t)file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
        return ENRICH_OK; /* nothing to judge with; LMDB decides */
    const unsigned char *map = m;
    meta_page mp[2];
    meta_read(map, (size_t)file_bytes, &mp[0]);
    meta_read(map + psize, (size_t)file_bytes - psize, &mp[1]);
    enrich_status st = ENRICH_OK;
    int n = !mp[0].ok ? 1 : !mp[1].ok ? 0 : mp[1].txnid > mp[0].txnid;
    if (mp[n].ok && mp[n].psize == psize) {
        uint64_t file_pages = file_bytes / psize;
        uint64_t zone = (TRUST_REACH + psize - 1) / psize + 1;
        tail_walk t = {map, mp[n].last_pg + 1 < file_pages ? mp[n].last_pg + 1 : file_pages,
                       file_pages > zone ? file_pages - zone : 0, psize, 0, 1u << 22};
        const db_record *main_db = &mp[n].main_db;
        if (main_db->root != NO_PAGE &&
            (!tail_page(&t, main_db->root, main_db->depth ? main_db->depth - 1u : 0) ||
             !tail_named(&t, main_db->root, main_db->depth ? main_db->depth - 1u : 0))) {
            errmsg_set(errmsg, "%s: damaged (page %llu, near the end of the file, has nodes "
                       "outside itself: a lookup could read past the end of the file; "
                       "'enrich verify' says more)", path, (unsigned long long)t.bad);
            st = ENRICH_E_CORRUPT;
        }
    }
    munmap(m, (size_t)file_bytes);
    return st;
}

/* The data file of an open store, mapped privately and read-only. */
static enrich_status map_data_file(enrich_store *s, const unsigned char **map, size_t *len)
{
    int fd = -1;
    if (mdb_env_get_fd(s->env, &fd) != MDB_SUCCESS || fd < 0) {
        errmsg_set(s->errmsg, "verify: the store's data file has no descriptor");
        return ENRICH_E_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        errmsg_set(s->errmsg, "verify: %s: %s", s->path, strerror(errno));
        return ENRICH_E_IO;
    }
    *len = (size_t)st.st_size;
    if (*len == 0) {
        *map = NULL;
        return ENRICH_OK;
    }
    void *m = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
        errmsg_set(s->errmsg, "verify: map %s: %s", s->path, strerror(errno));
        return errno == ENOMEM ? ENRICH_E_NOMEM : ENRICH_E_IO;
    }
    *map = m;
    return ENRICH_OK;
}

/* A commit between the read transaction's start and the meta read means
 * a retry; it takes a writer committing in that gap every time. */
#define VERIFY_RETRIES 100

/* The walk on the store's current snapshot: the report in rep. */
static enrich_status verify_store(enrich_store *store, unsigned flags, ebuf *rep)
{
    enrich_status st = ENRICH_E_NOTFOUND;
    for (int attempt = 0; attempt < VERIFY_RETRIES && st == ENRICH_E_NOTFOUND; attempt++) {
        /* The read transaction pins the snapshot's pages: a concurrent
         * load cannot reuse them while they are read. */
        MDB_txn *txn;
        if ((st = store_read_begin(store, &txn, store->errmsg)) != ENRICH_OK)
            return st;
        const unsigned char *map = NULL;
        size_t len = 0;
        st = map_data_file(store, &map, &len);
        if (st == ENRICH_OK) {
            rep->len = 0;
            st = store_verify_map(map, len, store->nolock ? 0 : mdb_txn_id(txn), flags, rep,
                                  NULL, NULL);
            if (map)
                munmap((void *)(uintptr_t)map, len);
        }
        store_txn_abort(store, txn);
    }
    if (st == ENRICH_E_NOTFOUND) {
        errmsg_set(store->errmsg, "verify: no stable snapshot after %d attempts",
                   VERIFY_RETRIES);
        st = ENRICH_E_STORE;
    }
    return st;
}

/* A verify at open: ENRICH_E_CORRUPT with "<path>: damaged (<when>): <the
 * first finding>" in s->errmsg; ENRICH_E_NOMEM when the walk ran out of
 * memory (a finding may then be an allocation that failed, not the file). */
static enrich_status verify_at_open(enrich_store *s, unsigned flags, const char *when)
{
    ebuf rep = {0};
    enrich_status st = verify_store(s, flags, &rep);
    if ((st == ENRICH_OK || st == ENRICH_E_CORRUPT) && rep.oom) {
        st = ENRICH_E_NOMEM;
    } else if (st == ENRICH_E_CORRUPT) {
        const char *what = rep.p ? strstr(rep.p, "\"damage\":[") : NULL;
        const char *end = what ? strchr(what, '}') : NULL;
        errmsg_set(s->errmsg, "%s: damaged (%s): %.*s", s->path, when,
                   what && end ? (int)(end - what - 10 + 1) : 0, what ? what + 10 : "");
    }
    ebuf_free(&rep);
    return st;
}

enrich_status store_verify_open(enrich_store *s)
{
    return verify_at_open(s, 0, "verified at open");
}

enrich_status store_verify_directory(enrich_store *s)
{
    return verify_at_open(s, STORE_VERIFY_DIRECTORY, "its table directory, checked at open");
}

enrich_status enrich_store_verify(enrich_store *store, unsigned flags, void *dst,
                                  size_t dst_cap, size_t *written)
{
    if (written)
        *written = 0;
    if (!store || (!dst && dst_cap) || (flags & ~(unsigned)ENRICH_VERIFY_QUICK))
        return ENRICH_E_INVALID;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ebuf rep = {0};
    enrich_status st = verify_store(store, flags, &rep);
    if (st != ENRICH_OK && st != ENRICH_E_CORRUPT) {
        ebuf_free(&rep);
        return st;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* The path and the time go in front of what the walk wrote. */
    ebuf out = {0};
    ebuf_puts(&out, "{\"path\":");
    ebuf_json_string(&out, store->path, strlen(store->path));
    ebuf_printf(&out, ",\"seconds\":%.3f,", secs);
    if (rep.len > 1)
        ebuf_put(&out, rep.p + 1, rep.len - 1);
    ebuf_free(&rep);
    if (out.oom) {
        ebuf_free(&out);
        return ENRICH_E_NOMEM;
    }
    if (written)
        *written = out.len;
    if (out.len > dst_cap) {
        ebuf_free(&out);
        errmsg_set(store->errmsg, "verify: the report needs %zu bytes", written ? *written : 0);
        return ENRICH_E_DST_SIZE;
    }
    memcpy(dst, out.p, out.len);
    ebuf_free(&out);
    if (st == ENRICH_E_CORRUPT)
        errmsg_set(store->errmsg, "verify: %s is damaged (the report lists where)", store->path);
    return st;
}
