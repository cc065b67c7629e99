/* The walk behind enrich_store_verify (store_verify.c), for the store's
 * own use and for tests that damage files. Never installed. */
#ifndef ENRICH_STORE_VERIFY_H
#define ENRICH_STORE_VERIFY_H

#include "common.h"

/* Called for every byte range of the file the snapshot uses: meta pages,
 * page headers and offset arrays, nodes, item bytes on overflow pages.
 * Offsets are from the start of the file. */
typedef void (*store_verify_visit)(void *user, uint64_t off, size_t len);

/* Verify the store file held in map[0..len) (see enrich_store_verify) and
 * append the report (a JSON object without "path" and "seconds") to
 * report. want_txnid: the commit the newest meta page must hold (0: any);
 * when it holds another, ENRICH_E_NOTFOUND (retry). ENRICH_OK when
 * nothing is damaged, ENRICH_E_CORRUPT when something is, ENRICH_E_NOMEM. */
ENRICH_INTERNAL enrich_status store_verify_map(const unsigned char *map, size_t len,
                                               uint64_t want_txnid, unsigned flags,
                                               ebuf *report, store_verify_visit fn, void *user);

/* LMDB trusts the node offsets of a page, and on a damaged page may read
 * up to 128 KiB past its start: past the end of the file for the last
 * pages, which is SIGBUS in a mapping. At open, the pages of the file's
 * last 128 KiB (up to last_pg) are read with pread and each checked on its
 * own: ENRICH_E_CORRUPT (errmsg says which page) when a branch or leaf
 * page there has a node outside itself. Elsewhere such reads stay inside
 * the file and LMDB's own checks (page type, page numbers) or the item
 * checksum see the damage. */
/* store_verify_map flag beside ENRICH_VERIFY_QUICK: only the trees LMDB
 * itself reads when a store is opened and a table resolved (the main tree,
 * which names the tables, and the meta table), page by page, without the
 * file's CRC32C and without judging whether the file is a libenrich store
 * at all (meta_init does). */
#define STORE_VERIFY_DIRECTORY 0x100u

/* Every open: LMDB follows the main tree's and the meta table's pages
 * with its own, weaker checks (a node flagged as holding duplicates makes
 * 0.9's cursor code dereference NULL), so they are read here first.
 * ENRICH_E_CORRUPT with the finding in s->errmsg. Microseconds: a few
 * pages. */
ENRICH_INTERNAL enrich_status store_verify_directory(enrich_store *s);

/* ENRICH_STORE_VERIFY: the full verify of a store being opened;
 * ENRICH_E_CORRUPT with the first finding in s->errmsg. */
ENRICH_INTERNAL enrich_status store_verify_open(enrich_store *s);

ENRICH_INTERNAL enrich_status store_tail_check(int fd, uint64_t file_bytes, uint64_t last_pg,
                                               size_t psize, char *errmsg, const char *path);

#endif
