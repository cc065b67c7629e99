/* The hot path: enrich a batch of events.
 *
 * Each event is validated by the scanner (no tree), its key is looked up
 * in the batch's read snapshot (store_snap_get), and the pre-encoded
 * reference members are spliced before the event's closing brace. Only
 * when the event already holds a member that enrichment overwrites is the
 * object rebuilt, member by member from the original bytes, so numbers and
 * strings are never re-encoded. All buffers live in the ctx and are reused
 * across batches: no allocation per event once they have grown.
 *
 * Everything that runs per event (scanning, lookups, attachments, emit)
 * and per batch (run_ndjson, run_array, engine_batch_begin/end) stays in
 * this one translation unit on purpose, so that the compiler inlines the
 * per-event helpers into the loops. The ctx's lifecycle and options are in
 * ctx.c and the result accessors in results.c: neither runs per event. */
#include <string.h>

#include "ctx.h"

enum lookup_result { LK_HIT, LK_MISS, LK_NO_KEY, LK_ERROR };

/* ---------------------------------------------------------------- */
/* Small helpers                                                     */
/* ---------------------------------------------------------------- */

static const jmember *find_member(const char *s, const jmembers *ms, const rname *name)
{
    for (size_t i = 0; i < ms->n; i++) {
        if (jname_equals(s, &ms->v[i], name->dec, name->dec_len))
            return &ms->v[i];
    }
    return NULL;
}

/* Does the event member carry the name whose JSON literal is lit? Both
 * sides come from JSON text; only escapes make the bytes differ. */
static bool member_is(const char *ev, const jmember *m, const char *lit, size_t lit_len)
{
    /* Every literal here comes from ebuf_json_string, which escapes only
     * '"', '\\' and control characters, none of which an unescaped name can
     * hold: for a plain event name the bytes decide. */
    if (!m->name_escaped)
        return m->name.len == lit_len && mem_equal(ev + m->name.off, lit, lit_len);
    ebuf a = {0}, b = {0};
    jstring_decode(ev, m->name, &a);
    jstring_decode(lit, (jspan){0, lit_len}, &b);
    bool eq = !a.oom && !b.oom && a.len == b.len && (a.len == 0 || !memcmp(a.p, b.p, a.len));
    ebuf_free(&a);
    ebuf_free(&b);
    return eq;
}

static void att_clear(enrich_ctx *ctx)
{
    ctx->natt = 0;
    ctx->att_bytes = 0;
    ctx->att_foreign = false;
}

/* The array is reused across events: growing is the exception. */
static inline attach *att_push(enrich_ctx *ctx, const char *lit, size_t lit_len,
                               size_t val_len, uint8_t policy)
{
    if (ctx->natt == ctx->att_cap &&
        !array_reserve(&ctx->att, &ctx->att_cap, ctx->natt + 1, sizeof *ctx->att, 32))
        return NULL;
    attach *a = &ctx->att[ctx->natt++];
    a->lit = lit;
    a->lit_len = lit_len;
    a->val_len = val_len;
    a->dropped = false;
    a->policy = policy;
    ctx->att_bytes += lit_len + val_len + 2; /* ',' and ':' */
    return a;
}

static bool att_add(enrich_ctx *ctx, const char *lit, size_t lit_len, const char *val,
                    size_t val_len, uint8_t policy)
{
    attach *a = att_push(ctx, lit, lit_len, val_len, policy);
    if (!a)
        return false;
    a->val = val;
    a->scratch_off = 0;
    a->in_scratch = false;
    return true;
}

static bool att_add_scratch(enrich_ctx *ctx, const rname *name, size_t off, uint8_t policy)
{
    attach *a = att_push(ctx, name->lit, name->lit_len, ctx->scratch.len - off, policy);
    if (!a)
        return false;
    a->val = NULL;
    a->scratch_off = off;
    a->in_scratch = true;
    return true;
}

/* ---------------------------------------------------------------- */
/* One lookup                                                        */
/* ---------------------------------------------------------------- */

/* Append the bytes of one key part (string contents or number text). */
static enum lookup_result key_part(enrich_ctx *ctx, const char *base, const jmember *m,
                                   enrich_status *err)
{
    if (m->type == J_NULL)
        return LK_NO_KEY;
    if (m->type == J_NUMBER) {
        ebuf_put(&ctx->key, base + m->value.off, m->value.len);
        return LK_HIT;
    }
    if (m->type != J_STRING) {
        *err = ENRICH_E_KEY_TYPE;
        return LK_ERROR;
    }
    size_t n = m->value.len - 2;
    if (n == 0)
        return LK_NO_KEY; /* the seed treats "" like a missing id */
    if (m->value_escaped) /* the scanner saw a backslash */
        jstring_decode(base, m->value, &ctx->key);
    else
        ebuf_put(&ctx->key, base + m->value.off + 1, n);
    return LK_HIT;
}

/* Follow a dotted path from the top-level members to the key's member:
 * a missing member, or null on the way, means no key; any other
 * non-object on the way is a key of the wrong type. */
static enum lookup_result resolve_path(enrich_ctx *ctx, const char *ev, const key_path *kp,
                                       enrich_status *err)
{
    const jpath *p = &kp->path;
    if (p->n == 1) { /* the common case: a top-level key, no walk state */
        const jmember *m = jmembers_find(ev, &ctx->members, p->segs[0].name, p->segs[0].len);
        return m ? key_part(ctx, ev, m, err) : LK_NO_KEY;
    }
    jpath_end end;
    enrich_status rc = jpath_walk(ev, &ctx->members, &kp->path, ctx->max_depth, &ctx->sub, &end);
    if (rc) {
        *err = rc;
        return LK_ERROR;
    }
    if (!end.m) {
        if (!end.blocker || end.blocker->type == J_NULL)
            return LK_NO_KEY;
        *err = ENRICH_E_KEY_TYPE;
        return LK_ERROR;
    }
    return key_part(ctx, end.base, end.m, err);
}

/* The key of lookup lk for the event ev, into ctx->key: LK_HIT when it
 * is there to look up, else LK_NO_KEY or LK_ERROR (*err). */
/* Inlined into both callers: the per-event path had it inline before the
 * window existed, and a call costs ~20 instructions an event. */
__attribute__((always_inline)) static inline enum lookup_result
lookup_key(enrich_ctx *ctx, const char *ev, const lookup *lk, enrich_status *err)
{
    ctx->key.len = 0;
    for (size_t k = 0; k < lk->nkeys; k++) {
        if (k > 0)
            ebuf_putc(&ctx->key, '\0');
        enum lookup_result r;
        int at = ctx->shape.key_at;
        if (k == 0 && ctx->shape_same && at != SHAPE_UNKNOWN && lk == ctx->p->lookups)
            r = at == SHAPE_ABSENT ? LK_NO_KEY : key_part(ctx, ev, &ctx->members.v[at], err);
        else
            r = resolve_path(ctx, ev, &lk->keys[k], err);
        if (r != LK_HIT)
            return r;
    }
    if (ctx->key.oom) {
        *err = ENRICH_E_NOMEM;
        return LK_ERROR;
    }
    if (ctx->key.len > ctx->p->max_key) {
        *err = ENRICH_E_KEY_TOO_LONG;
        return LK_ERROR;
    }
    return LK_HIT;
}

/* A memoised answer: its layout and checksum were checked when it was
 * read from this snapshot, and LMDB never changes its bytes while the
 * snapshot lasts. Only its header is read again; each entry is checked as
 * it is attached (item_member_get), which keeps bytes changed by a writer
 * outside LMDB from being read out of bounds. */
static enum lookup_result memo_answer(const void *val, size_t val_len, item_view *item,
                                      enrich_status *err)
{
    if (!val)
        return LK_MISS;
    if (!item_view_open(val, val_len, item)) {
        *err = ENRICH_E_CORRUPT;
        return LK_ERROR;
    }
    return LK_HIT;
}

/* The store's answer rc for ctx->key (not memoised; hash from lcache_get). */
static enum lookup_result store_answer(enrich_ctx *ctx, const lookup *lk, uint32_t hash,
                                       enrich_status rc, const void *val, size_t val_len,
                                       item_view *item, enrich_status *err)
{
    if (rc == ENRICH_E_NOTFOUND) {
        lcache_put(&ctx->lcache, lk->table_handle, ctx->key.p, ctx->key.len, hash, NULL, 0);
        return LK_MISS;
    }
    if (rc != ENRICH_OK) {
        /* Through mdb_get (store_snap.c says when), a failure renewed the
         * snapshot for the rest of the batch (store.h): what the memo
         * holds is void if that moved it to a newer commit. The page walk
         * leaves the snapshot as it was, and the memo with it. */
        lcache_begin(&ctx->lcache, store_snap_id(ctx->snap), ctx->lcache.map_gen);
        *err = rc;
        return LK_ERROR;
    }
    /* A damaged item is never memoised, nor attached: its layout, then
     * its checksum (a few per cent of a lookup, docs/performance.md). */
    if (!item_view_parse(val, val_len, item) ||
        item_checksum(val, val_len, item) == ITEM_SUM_BAD) {
        *err = ENRICH_E_CORRUPT;
        return LK_ERROR;
    }
    lcache_put(&ctx->lcache, lk->table_handle, ctx->key.p, ctx->key.len, hash, val, val_len);
    return LK_HIT;
}

enum { PRE_KEY, PRE_MEMO, PRE_STORE };

/* The first lookup of a windowed event, decided by window_prepare: the
 * key back in ctx->key (the error message and the memo read it), then the
 * answer as lookup_one would have reached it. */
static enum lookup_result pre_answer(enrich_ctx *ctx, const lookup *lk, const pre_lookup *pre,
                                     item_view *item, enrich_status *err)
{
    ctx->key.len = 0;
    if (pre->key_len) /* win_keys.p may be NULL when no key was made */
        ebuf_put(&ctx->key, ctx->win_keys.p + pre->key_off, pre->key_len);
    switch (pre->state) {
    case PRE_KEY:
        *err = pre->err;
        return (enum lookup_result)pre->res;
    case PRE_MEMO:
        return memo_answer(pre->val, pre->val_len, item, err);
    default: {
        const store_req *r = &ctx->win_reqs[pre->req];
        ctx->lcache.probed = pre->probed; /* lcache_put stores what was probed */
        return store_answer(ctx, lk, pre->hash, r->st, r->val, r->val_len, item, err);
    }
    }
}

/* *at: the hit's value in the map, when the memo probed its key (NULL
 * otherwise), and *at_set the memo set it probed. *run: with run_ok, a
 * memo hit whose item's attachments attach_memo holds with a verdict for
 * this event's layout; item is then not opened (the run replaces it). */
static enum lookup_result lookup_one(enrich_ctx *ctx, const char *ev, const lookup *lk,
                                     item_view *item, enrich_status *err, bool run_ok,
                                     const void **at, size_t *at_set, const amemo_entry **run)
{
    *at = NULL;
    if (ctx->pre && lk == ctx->p->lookups)
        return pre_answer(ctx, lk, ctx->pre, item, err);
    enum lookup_result r = lookup_key(ctx, ev, lk, err);
    if (r != LK_HIT)
        return r;
    uint32_t hash = 0;
    const void *val;
    size_t val_len;
    if (lcache_get(&ctx->lcache, lk->table_handle, ctx->key.p, ctx->key.len, &hash, &val,
                   &val_len)) {
        *at = val;
        *at_set = lcache_set(&ctx->lcache, hash);
        if (run_ok && val) {
            const amemo_entry *e = amemo_find(&ctx->amemo, ctx->lcache.epoch, *at_set, val);
            if (e && e->gen == ctx->shape.gen && e->extra == (const void *)ctx->extra_name) {
                *run = e;
                ctx->amemo_hits++;
                return LK_HIT;
            }
        }
        return memo_answer(val, val_len, item, err);
    }
    enrich_status rc = store_snap_get(ctx->snap, lk->table_handle, ctx->key.p, ctx->key.len,
                                      &val, &val_len);
    if (rc == ENRICH_OK && ctx->lcache.probed) {
        *at = val;
        *at_set = lcache_set(&ctx->lcache, hash);
    }
    return store_answer(ctx, lk, hash, rc, val, val_len, item, err);
}

/* Add one selected member: as an attachment, or (nest) into the nested
 * object being built in scratch. */
static inline bool attach_member(enrich_ctx *ctx, const lookup *lk, bool nest, bool *first,
                                 const char *out_lit, size_t out_len, const item_member *im)
{
    if (!nest)
        return att_add(ctx, out_lit, out_len, im->value, im->value_len, lk->on_conflict);
    if (!*first)
        ebuf_putc(&ctx->scratch, ',');
    ebuf_put(&ctx->scratch, out_lit, out_len);
    ebuf_putc(&ctx->scratch, ':');
    ebuf_put(&ctx->scratch, im->value, im->value_len);
    *first = false;
    return true;
}

/* "fields": "all": every member after the key attributes, renamed where
 * the rule set says. */
static bool attach_all(enrich_ctx *ctx, const lookup *lk, const item_view *item, bool nest)
{
    bool first = true;
    if (item->nkey < item->count)
        ctx->att_foreign = true; /* names from the item (unless renamed) */
    for (uint32_t i = item->nkey; i < item->count; i++) {
        item_member im;
        if (!item_member_get(item, i, &im)) {
            ctx->fault_lookup = lk; /* damaged: the record fails (enrich_object) */
            return true;
        }
        const char *out_lit = im.name;
        size_t out_len = im.name_len;
        for (size_t r = 0; r < lk->nfields; r++) {
            const rname *src = &lk->fields[r].src;
            if (src->lit_len == im.name_len && mem_equal(src->lit, im.name, im.name_len)) {
                out_lit = lk->fields[r].out.lit;
                out_len = lk->fields[r].out.lit_len;
                break;
            }
        }
        if (!attach_member(ctx, lk, nest, &first, out_lit, out_len, &im))
            return false;
    }
    return true;
}

/* A list of fields: each search starts after the last match (the first
 * after the key attributes) and wraps, so a list in the item's own order
 * reads each member once. With fields_required, a listed field the item
 * lacks stops here: ctx->missing_field names it and the record fails (a
 * rare path, kept out of the arguments of the common one). */
static bool attach_listed(enrich_ctx *ctx, const lookup *lk, const item_view *item, bool nest)
{
    bool first = true;
    uint32_t next = item->nkey < item->count ? item->nkey : 0;
    for (size_t i = 0; i < lk->nfields; i++) {
        const field_map *f = &lk->fields[i];
        item_member im;
        uint32_t j = next, tried = 0;
        for (; tried < item->count; tried++, j = j + 1 < item->count ? j + 1 : 0) {
            if (!item_member_get(item, j, &im)) {
                ctx->fault_lookup = lk; /* damaged: the record fails (enrich_object) */
                return true;
            }
            if (im.name_len == f->src.lit_len && mem_equal(im.name, f->src.lit, im.name_len))
                break;
        }
        if (tried == item->count) {
            if (lk->fields_required) {
                ctx->fault_lookup = lk;
                ctx->missing_field = f;
                return true;
            }
            continue; /* this item lacks the field: nothing to attach */
        }
        next = j + 1 < item->count ? j + 1 : 0;
        if (!attach_member(ctx, lk, nest, &first, f->out.lit, f->out.lit_len, &im))
            return false;
    }
    return true;
}

/* Attach the members a hit selects: all (minus the key attributes), or
 * the listed ones, renamed, optionally nested under one object. */
static bool attach_hit(enrich_ctx *ctx, const lookup *lk, const item_view *item)
{
    bool nest = lk->nest.dec_len > 0;
    size_t nest_off = ctx->scratch.len;
    if (nest)
        ebuf_putc(&ctx->scratch, '{');
    bool ok = lk->all_fields ? attach_all(ctx, lk, item, nest)
                             : attach_listed(ctx, lk, item, nest);
    if (!ok || !nest)
        return ok;
    ebuf_putc(&ctx->scratch, '}');
    return att_add_scratch(ctx, &lk->nest, nest_off, lk->on_conflict);
}

static bool attach_defaults(enrich_ctx *ctx, const lookup *lk)
{
    if (lk->ndefaults == 0)
        return true;
    bool nest = lk->nest.dec_len > 0;
    size_t nest_off = ctx->scratch.len;
    if (nest)
        ebuf_putc(&ctx->scratch, '{');
    for (size_t d = 0; d < lk->ndefaults; d++) {
        const rname *out = &lk->defaults_names[d].out;
        if (nest) {
            if (d)
                ebuf_putc(&ctx->scratch, ',');
            ebuf_put(&ctx->scratch, out->lit, out->lit_len);
            ebuf_putc(&ctx->scratch, ':');
            ebuf_put(&ctx->scratch, lk->defaults_values[d], lk->defaults_value_lens[d]);
        } else if (!att_add(ctx, out->lit, out->lit_len, lk->defaults_values[d],
                            lk->defaults_value_lens[d], lk->on_conflict)) {
            return false;
        }
    }
    if (nest) {
        ebuf_putc(&ctx->scratch, '}');
        return att_add_scratch(ctx, &lk->nest, nest_off, lk->on_conflict);
    }
    return true;
}

/* ---------------------------------------------------------------- */
/* Records                                                           */
/* ---------------------------------------------------------------- */

static rec *rec_push(enrich_ctx *ctx)
{
    if (ctx->nrecs == ctx->recs_cap &&
        !array_reserve(&ctx->recs, &ctx->recs_cap, ctx->nrecs + 1, sizeof *ctx->recs, 256))
        return NULL;
    rec *r = &ctx->recs[ctx->nrecs++];
    r->off = ctx->out.len;
    r->len = 0;
    r->ts_len = 0;
    r->error = 0;
    r->outcome = ENRICH_OUTCOME_SUCCESS;
    r->result = 0; /* the AWS layer sets it (enrich_result) */
    r->id_off = 0;
    r->id_len = 0;
    r->id_plain = 0;
    r->arrival_ms = -1;
    return r;
}

static void rec_close(enrich_ctx *ctx, rec *r)
{
    r->len = ctx->out.len - r->off;
    ebuf_putc(&ctx->out, '\n');
    ctx->counts[r->outcome]++;
}

/* Where a lookup met damage, for the record's message: the table and the
 * key (bytes outside printable ASCII as \xHH, composite parts joined by
 * \x00, at most 96 of them). */
static void corrupt_detail(ebuf *msg, const lookup *lk, const ebuf *key)
{
    ebuf_printf(msg, "table %s, key \"", lk->table);
    size_t n = key->len > 96 ? 96 : key->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key->p[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"')
            ebuf_putc(msg, (char)c);
        else
            ebuf_printf(msg, "\\x%02x", c);
    }
    ebuf_puts(msg, n < key->len ? "...\"" : "\"");
}

/* The error message member's value: the status text, plus the key path
 * when a key was at fault; the table and key when the store was damaged
 * there, and the table, key and field when a hit lacked a required field
 * (ctx->fault_lookup and ctx->missing_field, set on those rare paths by
 * enrich_object and attach_hit, cleared here). */
static void error_value(enrich_ctx *ctx, enrich_status code, const rname *path)
{
    const lookup *lk = ctx->fault_lookup;
    const field_map *missing = ctx->missing_field;
    ctx->fault_lookup = NULL;
    ctx->missing_field = NULL;
    ebuf msg = {0};
    ebuf_puts(&msg, enrich_strerror(code));
    if (path || (lk && code == ENRICH_E_CORRUPT)) {
        ebuf_puts(&msg, " (");
        if (path)
            ebuf_put(&msg, path->dec, path->dec_len);
        if (lk && code == ENRICH_E_CORRUPT) {
            if (path)
                ebuf_puts(&msg, "; ");
            corrupt_detail(&msg, lk, &ctx->key);
        }
        ebuf_putc(&msg, ')');
    }
    if (missing) {
        ebuf_puts(&msg, ": table ");
        ebuf_puts(&msg, lk->table);
        ebuf_puts(&msg, ", key ");
        for (size_t i = 0; i < ctx->key.len; i++)
            ebuf_putc(&msg, ctx->key.p[i] ? ctx->key.p[i] : ',');
        ebuf_puts(&msg, ": no field ");
        ebuf_put(&msg, missing->src.dec, missing->src.dec_len);
    }
    ebuf_json_string(&ctx->scratch, msg.p ? msg.p : "", msg.len);
    if (msg.oom)
        ctx->scratch.oom = true;
    ebuf_free(&msg);
}

/* An event that is not a JSON object cannot be spliced: it becomes a new
 * object carrying the error and the original bytes, base64-encoded (they
 * may not even be UTF-8), like Firehose's processing-failed records. */
static void emit_raw_error(enrich_ctx *ctx, rec *r, const char *ev, size_t len,
                           enrich_status code)
{
    const enrich_pipeline *p = ctx->p;
    r->outcome = ENRICH_OUTCOME_ERROR;
    r->error = (int16_t)code;
    ebuf *o = &ctx->out;
    ebuf_putc(o, '{');
    ebuf_put(o, p->status_field.lit, p->status_field.lit_len);
    ebuf_putc(o, ':');
    ebuf_put(o, p->word[ENRICH_OUTCOME_ERROR].lit, p->word[ENRICH_OUTCOME_ERROR].lit_len);
    ebuf_putc(o, ',');
    ebuf_put(o, p->error_field.lit, p->error_field.lit_len);
    ebuf_putc(o, ':');
    ctx->scratch.len = 0;
    error_value(ctx, code, NULL);
    ebuf_put(o, ctx->scratch.p, ctx->scratch.len);
    if (p->ts_when == TS_ALWAYS) {
        ebuf_putc(o, ',');
        ebuf_put(o, p->ts_field.lit, p->ts_field.lit_len);
        ebuf_putc(o, ':');
        ebuf_put(o, ctx->ts_lit, sizeof ctx->ts_lit);
    }
    if (ctx->extra_name) {
        ebuf_putc(o, ',');
        ebuf_put(o, ctx->extra_name->lit, ctx->extra_name->lit_len);
        ebuf_putc(o, ':');
        ebuf_put(o, ctx->extra_val, ctx->extra_len);
    }
    ebuf_putc(o, ',');
    ebuf_put(o, p->raw_field.lit, p->raw_field.lit_len);
    ebuf_puts(o, ":\"");
    size_t b64 = base64_encoded_len(len);
    if (ebuf_reserve(o, b64 + 2)) {
        base64_encode(ev, len, o->p + o->len);
        o->len += b64;
    }
    ebuf_puts(o, "\"}");
    rec_close(ctx, r);
}

/* Mark the event members that enrichment replaces, drop attachments the
 * event keeps, and report a conflict under the "fail" policy. Returns true
 * when the event must be rebuilt. */
static bool resolve_conflicts(enrich_ctx *ctx, const char *ev, bool *conflict)
{
    jmembers *ms = &ctx->members;
    bool rebuild = false;
    *conflict = false;
    /* One flag per event member, cleared only when one is overwritten:
     * emit reads a flag only when rebuilding, and rebuilding means some
     * member was overwritten, so an untouched array is never read. */
    ctx->removed.len = 0;
    /* A filter on name lengths (bit len % 64 of every attachment's name,
     * and whether two share one): most event members match no attachment
     * by length alone, which spares the pairwise compares. An escaped
     * name's length says nothing, so it is always compared. Made here, not
     * as attachments are added: most events of a stream skip this check
     * (att_known_clean). */
    uint64_t lens = 0;
    bool dup_len = false;
    for (size_t a = 0; a < ctx->natt; a++) {
        uint64_t bit = (uint64_t)1 << (ctx->att[a].lit_len & 63);
        dup_len |= (lens & bit) != 0;
        lens |= bit;
    }
    for (size_t i = 0; i < ms->n; i++) {
        const jmember *m = &ms->v[i];
        if (!m->name_escaped && !((lens >> (m->name.len & 63)) & 1))
            continue;
        for (size_t a = 0; a < ctx->natt; a++) {
            attach *at = &ctx->att[a];
            if (at->dropped || !member_is(ev, m, at->lit, at->lit_len))
                continue;
            if (at->policy == CONFLICT_KEEP) {
                at->dropped = true;
            } else if (at->policy == CONFLICT_FAIL) {
                *conflict = true;
                return false;
            } else {
                if (!rebuild) {
                    if (!ebuf_reserve(&ctx->removed, ms->n))
                        return false; /* removed.oom: the batch fails */
                    memset(ctx->removed.p, 0, ms->n);
                    ctx->removed.len = ms->n;
                    rebuild = true;
                }
                ctx->removed.p[i] = 1;
            }
        }
    }
    /* Two attachments with one name (a lookup's field and a status member,
     * or two lookups): the later one wins, so the output keeps one member.
     * Only possible when two of them share a length. */
    for (size_t a = 0; dup_len && a + 1 < ctx->natt; a++) {
        attach *x = &ctx->att[a];
        for (size_t b = a + 1; b < ctx->natt && !x->dropped; b++) {
            const attach *y = &ctx->att[b];
            if (!y->dropped && x->lit_len == y->lit_len && !memcmp(x->lit, y->lit, x->lit_len))
                x->dropped = true;
        }
    }
    return rebuild;
}

/* Whether this event's attachments are the ones that, with the same
 * event names (ctx->shape_same), met no conflict before: resolve_conflicts
 * would find nothing again, since its answer depends on names alone. */
static bool att_known_clean(const enrich_ctx *ctx)
{
    const event_shape *sh = &ctx->shape;
    if (ctx->natt != sh->clean_n || ctx->att_foreign)
        return false;
    for (size_t a = 0; a < ctx->natt; a++)
        if (ctx->att[a].lit != sh->clean_lit[a] || ctx->att[a].lit_len != sh->clean_len[a])
            return false;
    return true;
}

/* resolve_conflicts found nothing: remember these attachments' names. */
static void att_note_clean(enrich_ctx *ctx)
{
    event_shape *sh = &ctx->shape;
    sh->clean_n = 0;
    if (ctx->natt > SHAPE_ATTS || ctx->att_foreign)
        return;
    for (size_t a = 0; a < ctx->natt; a++) {
        if (ctx->att[a].dropped)
            return;
        sh->clean_lit[a] = ctx->att[a].lit;
        sh->clean_len[a] = ctx->att[a].lit_len;
    }
    sh->clean_n = (uint32_t)ctx->natt;
}

static void add_status(enrich_ctx *ctx, enrich_outcome outcome, enrich_status code,
                       const rname *path)
{
    const enrich_pipeline *p = ctx->p;
    const rname *w = &p->word[outcome];
    att_add(ctx, p->status_field.lit, p->status_field.lit_len, w->lit, w->lit_len,
            CONFLICT_OVERWRITE);
    if (outcome == ENRICH_OUTCOME_ERROR) {
        size_t off = ctx->scratch.len;
        error_value(ctx, code, path);
        att_add_scratch(ctx, &p->error_field, off, CONFLICT_OVERWRITE);
    }
    if (p->ts_when == TS_ALWAYS || (p->ts_when == TS_SUCCESS && outcome == ENRICH_OUTCOME_SUCCESS))
        att_add(ctx, p->ts_field.lit, p->ts_field.lit_len, ctx->ts_lit, sizeof ctx->ts_lit,
                CONFLICT_OVERWRITE);
    /* The shape's extra member comes last, so it wins over every other. */
    if (ctx->extra_name)
        att_add(ctx, ctx->extra_name->lit, ctx->extra_name->lit_len, ctx->extra_val,
                ctx->extra_len, CONFLICT_OVERWRITE);
}

/* Copy n bytes at o and return the end: the record's size is reserved
 * once, so the pieces need no capacity check each. */
static inline char *put_raw(char *o, const void *src, size_t n)
{
    mem_copy(o, src, n);
    return o + n;
}

/* tm: the event's timestamp member (or NULL); its place in the output is
 * noted in r, so a partition can be computed later. run: the first
 * lookup's attachments as output bytes (attach_memo), spliced before the
 * other attachments (never with rebuild, and only after a member). tail:
 * the rest of the record as bytes (success_tail), instead of the
 * attachments and the closing brace. */
static void emit(enrich_ctx *ctx, const char *ev, jspan root, bool rebuild, rec *r,
                 const jmember *tm, const amemo_entry *run, const ebuf *tail)
{
    ebuf *o = &ctx->out;
    const jmembers *ms = &ctx->members;
    /* An upper bound of the record: the event (a rebuild only drops
     * members) plus ',"name":value' per attachment, and the '\n' that
     * rec_close adds. */
    size_t need = root.len + 2 + ctx->att_bytes + (run ? run->len : 0) + (tail ? tail->len : 0);
    /* The room is usually there: the call only to grow. */
    if (o->oom || (need > o->cap - o->len && !ebuf_reserve(o, need)))
        return; /* o->oom is set: the batch fails with ENRICH_E_NOMEM */
    char *w = o->p + o->len;
    bool first;
    if (!rebuild) {
        /* Splice: the event's own bytes up to its closing brace. */
        if (tm) {
            r->ts_off = o->len + (tm->value.off - root.off);
            r->ts_len = (uint32_t)tm->value.len;
            r->ts_type = (uint8_t)tm->type;
        }
        w = put_raw(w, ev + root.off, root.len - 1);
        first = ms->n == 0;
        if (run) {
            w = put_raw(w, ctx->amemo.bytes.p + run->off, run->len);
            first = false;
        }
        if (tail) {
            w = put_raw(w, tail->p, tail->len);
            o->len = (size_t)(w - o->p);
            return;
        }
    } else {
        *w++ = '{';
        first = true;
        for (size_t i = 0; i < ms->n; i++) {
            if (ctx->removed.len > i && ctx->removed.p[i])
                continue;
            const jmember *m = &ms->v[i];
            if (!first)
                *w++ = ',';
            w = put_raw(w, ev + m->name.off, m->name.len);
            *w++ = ':';
            if (m == tm) {
                r->ts_off = (size_t)(w - o->p);
                r->ts_len = (uint32_t)m->value.len;
                r->ts_type = (uint8_t)m->type;
            }
            w = put_raw(w, ev + m->value.off, m->value.len);
            first = false;
        }
    }
    for (size_t a = 0; a < ctx->natt; a++) {
        const attach *at = &ctx->att[a];
        if (at->dropped)
            continue;
        if (!first)
            *w++ = ',';
        w = put_raw(w, at->lit, at->lit_len);
        *w++ = ':';
        w = put_raw(w, at->in_scratch ? ctx->scratch.p + at->scratch_off : at->val, at->val_len);
        first = false;
    }
    *w++ = '}';
    o->len = (size_t)(w - o->p);
}

/* The bytes add_status's members give a success, as emit writes them
 * after at least one member, and the closing brace: ctx->success_tail,
 * made once per batch (the timestamp is the batch's). false: out of
 * memory (the record then goes the common way). */
static bool success_tail(enrich_ctx *ctx)
{
    if (ctx->success_tail_made)
        return true;
    const enrich_pipeline *p = ctx->p;
    ebuf *t = &ctx->success_tail;
    t->len = 0;
    t->oom = false;
    const rname *w = &p->word[ENRICH_OUTCOME_SUCCESS];
    ebuf_putc(t, ',');
    ebuf_put(t, p->status_field.lit, p->status_field.lit_len);
    ebuf_putc(t, ':');
    ebuf_put(t, w->lit, w->lit_len);
    if (p->ts_when == TS_ALWAYS || p->ts_when == TS_SUCCESS) {
        ebuf_putc(t, ',');
        ebuf_put(t, p->ts_field.lit, p->ts_field.lit_len);
        ebuf_putc(t, ':');
        ebuf_put(t, ctx->ts_lit, sizeof ctx->ts_lit);
    }
    ebuf_putc(t, '}');
    ctx->success_tail_made = !t->oom;
    return ctx->success_tail_made;
}

/* The record r just emitted, spliced (no rebuild), a success without a
 * conflict: keep the first hit_atts attachments' bytes for the item at
 * hit_at, with this layout's verdict. Not when one was dropped (a name
 * two attachments share, or one the event keeps): the run would then
 * not be what the item attaches. */
static void keep_run(enrich_ctx *ctx, const rec *r, jspan root, const void *hit_at,
                     size_t hit_set, size_t hit_atts)
{
    size_t len = 0;
    for (size_t a = 0; a < ctx->natt; a++) {
        if (ctx->att[a].dropped)
            return;
        if (a < hit_atts)
            len += 1 + ctx->att[a].lit_len + 1 + ctx->att[a].val_len; /* ,"name":value */
    }
    if (ctx->members.n == 0)
        return; /* the first attachment has no comma: never a layout's */
    amemo_put(&ctx->amemo, ctx->lcache.nslots, ctx->lcache.epoch, hit_set, hit_at,
              ctx->out.p + r->off + root.len - 1, len, ctx->shape.gen, ctx->extra_name);
}

static void enrich_object(enrich_ctx *ctx, rec *r, const char *ev, jspan root, uint32_t names_gen,
                          bool names_same);

/* Scan the event at ev as jscan_value does; *same: whether it has the
 * learned names of the stream (never, with shape_off). readable: bytes
 * from ev that may be read (>= len), see jscan_value_named. */
static inline enrich_status scan_event(enrich_ctx *ctx, const char *ev, size_t len,
                                       size_t readable, bool *same, jtype *type, jspan *root,
                                       jmembers *members)
{
    *same = false;
    if (ctx->shape_off)
        return jscan_value(ev, len, ctx->max_depth, type, root, members);
    return jscan_value_named(ev, len, readable, ctx->max_depth, &ctx->shape.names, same, NULL,
                             type, root, members);
}

/* engine_event for an event followed by more of the caller's bytes:
 * readable bytes from ev may be read (the rest of an NDJSON batch). */
static void event_in(enrich_ctx *ctx, const char *ev, size_t len, size_t readable)
{
    rec *r = rec_push(ctx);
    if (!r) {
        ctx->out.oom = true;
        return;
    }
    if (len > ctx->max_record) {
        emit_raw_error(ctx, r, ev, len, ENRICH_E_TOO_LARGE);
        return;
    }
    ctx->members.n = 0;
    jtype type;
    jspan root;
    bool same;
    enrich_status rc = scan_event(ctx, ev, len, readable, &same, &type, &root, &ctx->members);
    if (rc == ENRICH_E_NOMEM) {
        ctx->out.oom = true;
        return;
    }
    if (rc || type != J_OBJECT) {
        emit_raw_error(ctx, r, ev, len, rc ? rc : ENRICH_E_NOT_OBJECT);
        return;
    }
    enrich_object(ctx, r, ev, root, ctx->shape.gen, same);
}

void engine_event(enrich_ctx *ctx, const char *ev, size_t len)
{
    event_in(ctx, ev, len, len);
}

void engine_event_scanned(enrich_ctx *ctx, const char *base, jspan root, jtype type)
{
    rec *r = rec_push(ctx);
    if (!r) {
        ctx->out.oom = true;
        return;
    }
    const char *ev = base + root.off;
    if (root.len > ctx->max_record)
        emit_raw_error(ctx, r, ev, root.len, ENRICH_E_TOO_LARGE);
    else if (type != J_OBJECT)
        emit_raw_error(ctx, r, ev, root.len, ENRICH_E_NOT_OBJECT);
    else
        enrich_object(ctx, r, base, root, 0, false);
}

/* The event is the object at ev[root]; ctx->members holds its members
 * (offsets into ev). names_gen, names_same: the generation of learned
 * names the event was scanned against, and whether it had them (names_gen
 * 0: it was not; JSON array elements). */
static void enrich_object(enrich_ctx *ctx, rec *r, const char *ev, jspan root, uint32_t names_gen,
                          bool names_same)
{
    const enrich_pipeline *p = ctx->p;
    ctx->scratch.len = 0;
    /* The learned layout's names (or a layout learned from this event,
     * after SHAPE_RELEARN_AFTER without): the key's and the timestamp's
     * places are known. */
    event_shape *sh = &ctx->shape;
    bool same = false;
    if (!ctx->shape_off) {
        /* Judged by the scanner against today's names, or against older
         * ones (a window scans ahead), or not at all. */
        same = names_gen == sh->gen ? names_same : jnames_same(&sh->names, ev, &ctx->members);
        if (same) {
            ctx->shape_hits++;
            sh->misses = 0;
        } else if (++sh->misses >= SHAPE_RELEARN_AFTER) {
            sh->misses = 0;
            same = shape_learn(sh, ev, root, &ctx->members, p);
        }
    }
    ctx->shape_same = same;
    /* The timestamp is only located here; it is parsed when a partition is
     * asked for (rec_time_ms), which most callers never do. */
    const jmember *tm = NULL;
    if (ctx->shape_same)
        tm = ctx->shape.ts_at >= 0 ? &ctx->members.v[ctx->shape.ts_at] : NULL;
    else if (p->partition_field.dec_len)
        tm = find_member(ev, &ctx->members, &p->partition_field);
    if (tm && tm->value.len > UINT32_MAX)
        tm = NULL; /* no timestamp is 4 GiB long: processing time */

    att_clear(ctx);
    enrich_outcome outcome = ENRICH_OUTCOME_SUCCESS;
    enrich_status err = ENRICH_OK;
    const rname *err_path = NULL;
    bool ok = true;
    /* One lookup, an event of the learned layout (which has members): its
     * hit's attachments may come from attach_memo, or be kept there. */
    bool run_ok = same && p->nlookups == 1 && !ctx->amemo_off && !ctx->force_rebuild;
    const amemo_entry *run = NULL;
    const void *hit_at = NULL;
    size_t hit_set = 0;
    for (size_t l = 0; l < p->nlookups && ok; l++) {
        const lookup *lk = &p->lookups[l];
        item_view item;
        enum lookup_result res =
            lookup_one(ctx, ev, lk, &item, &err, run_ok, &hit_at, &hit_set, &run);
        if (res == LK_ERROR) {
            err_path = lk->nkeys == 1 ? &lk->keys[0].display : NULL;
            ctx->fault_lookup = lk; /* rare: read by the error message */
            break;
        }
        if (run)
            break; /* the only lookup: its attachments are the run */
        if (res == LK_HIT) {
            ok = attach_hit(ctx, lk, &item);
            if (__builtin_expect(ctx->fault_lookup != NULL, 0)) {
                /* A listed field the item lacks (missing_field), or an
                 * entry found damaged as it was read. */
                err = ctx->missing_field ? ENRICH_E_ITEM : ENRICH_E_CORRUPT;
                err_path = lk->nkeys == 1 ? &lk->keys[0].display : NULL;
                break;
            }
            continue;
        }
        ok = attach_defaults(ctx, lk);
        if (lk->required) {
            enrich_outcome o = res == LK_NO_KEY ? ENRICH_OUTCOME_NO_KEY : ENRICH_OUTCOME_NOT_FOUND;
            if (o > outcome)
                outcome = o; /* no_key outranks not_found */
        }
    }
    if (!ok || err == ENRICH_E_NOMEM) {
        ctx->out.oom = true;
        return;
    }
    if (run && !ctx->extra_name && success_tail(ctx)) {
        /* The run's verdict covers the status members too (no conflict,
         * no extra member): the rest of the record is the batch's bytes
         * for a success. */
        r->outcome = ENRICH_OUTCOME_SUCCESS;
        r->error = ENRICH_OK;
        emit(ctx, ev, root, false, r, tm, run, &ctx->success_tail);
        rec_close(ctx, r);
        return;
    }
    if (err) {
        outcome = ENRICH_OUTCOME_ERROR;
        att_clear(ctx); /* a failed record carries no reference data */
    }
    size_t hit_atts = ctx->natt; /* the lookup's, before the status members */
    add_status(ctx, outcome, err, err_path);

    bool conflict = false, rebuild = false;
    ctx->removed.len = 0; /* no member flagged: what resolve_conflicts starts from */
    /* A run comes with its verdict for this layout: no conflict. */
    if (!run && (!ctx->shape_same || !att_known_clean(ctx))) {
        rebuild = resolve_conflicts(ctx, ev, &conflict);
        if (ctx->shape_same && !rebuild && !conflict)
            att_note_clean(ctx);
    }
    if (conflict) {
        /* Policy "fail": the record keeps its own members and only gets
         * the error status (which always overwrites). */
        err = ENRICH_E_CONFLICT;
        outcome = ENRICH_OUTCOME_ERROR;
        att_clear(ctx);
        ctx->scratch.len = 0;
        add_status(ctx, outcome, err, NULL);
        rebuild = resolve_conflicts(ctx, ev, &conflict);
    }
    if (ctx->scratch.oom || ctx->removed.oom) {
        ctx->out.oom = true;
        return;
    }
    r->outcome = (uint8_t)outcome;
    r->error = (int16_t)err;
    emit(ctx, ev, root, rebuild || ctx->force_rebuild, r, tm, run, NULL);
    if (run_ok && !run && hit_at && outcome == ENRICH_OUTCOME_SUCCESS && !rebuild && !conflict &&
        !ctx->out.oom)
        keep_run(ctx, r, root, hit_at, hit_set, hit_atts);
    rec_close(ctx, r);
}

void engine_failed(enrich_ctx *ctx, const char *ev, size_t len, enrich_status code)
{
    rec *r = rec_push(ctx);
    if (!r) {
        ctx->out.oom = true;
        return;
    }
    emit_raw_error(ctx, r, ev, len, code);
}

/* ---------------------------------------------------------------- */
/* Batches                                                           */
/* ---------------------------------------------------------------- */

/* ---------------------------------------------------------------- */
/* The NDJSON lookahead window                                       */
/* ---------------------------------------------------------------- */

static inline void members_swap(jmembers *a, jmembers *b)
{
    jmembers t = *a;
    *a = *b;
    *b = t;
}

/* Scan the window's NDJSON lines and decide every event's first lookup:
 * a key that cannot be made, the memo's answer, or a request to the
 * store; then ask the store for all requests at once. false: out of
 * memory, or the snapshot was renewed on the way (a damaged page met
 * through mdb_get): then the events look up one at a time. */
static bool window_prepare(enrich_ctx *ctx, size_t nw)
{
    const lookup *lk = &ctx->p->lookups[0];
    ctx->win_keys.len = 0;
    size_t nreq = 0;
    for (size_t w = 0; w < nw; w++) {
        win_event *we = &ctx->win[w];
        pre_lookup *pre = &we->pre;
        pre->state = PRE_KEY;
        pre->key_len = 0;
        pre->key_off = 0;
        we->names_gen = 0; /* JSON array elements: scanned already */
        we->names_same = false;
        if (we->need_scan) {
            /* As engine_event: the size first, then the scan. */
            we->base = we->raw;
            if (we->raw_len > ctx->max_record) {
                we->rc = ENRICH_E_TOO_LARGE;
                continue;
            }
            we->members.n = 0;
            we->names_gen = ctx->shape.gen;
            we->rc = scan_event(ctx, we->raw, we->raw_len, we->raw_len, &we->names_same,
                                &we->type, &we->root, &we->members);
            if (we->rc == ENRICH_E_NOMEM) {
                ctx->out.oom = true;
                return false;
            }
        }
        if (we->rc || we->type != J_OBJECT)
            continue;
        members_swap(&ctx->members, &we->members);
        enrich_status err = ENRICH_OK;
        /* Nothing is learned until the window's events are enriched: the
         * names it was scanned against are today's. */
        ctx->shape_same = we->names_same;
        enum lookup_result r = lookup_key(ctx, we->base, lk, &err);
        ctx->shape_same = false;
        members_swap(&ctx->members, &we->members);
        pre->key_off = ctx->win_keys.len;
        pre->key_len = ctx->key.len;
        ebuf_put(&ctx->win_keys, ctx->key.p, ctx->key.len);
        if (r != LK_HIT) {
            pre->res = (uint8_t)r;
            pre->err = err;
            continue;
        }
        uint32_t hash = 0;
        if (lcache_get(&ctx->lcache, lk->table_handle, ctx->key.p, ctx->key.len, &hash,
                       &pre->val, &pre->val_len)) {
            pre->state = PRE_MEMO;
            continue;
        }
        pre->state = PRE_STORE;
        pre->probed = ctx->lcache.probed;
        pre->hash = hash;
        pre->req = nreq++;
    }
    if (ctx->win_keys.oom || ctx->key.oom) {
        ctx->out.oom = true;
        return false;
    }
    if (nreq == 0)
        return true;
    for (size_t w = 0; w < nw; w++) {
        const pre_lookup *pre = &ctx->win[w].pre;
        if (pre->state == PRE_STORE) {
            store_req *r = &ctx->win_reqs[pre->req];
            r->key = ctx->win_keys.p + pre->key_off;
            r->key_len = pre->key_len;
        }
    }
    uint64_t id = store_snap_id(ctx->snap);
    store_snap_get_many(ctx->snap, lk->table_handle, ctx->win_reqs, nreq);
    if (store_snap_id(ctx->snap) != id) {
        /* Renewed onto a newer commit: the memo's answers of this window
         * are of the old one. */
        lcache_begin(&ctx->lcache, store_snap_id(ctx->snap), ctx->lcache.map_gen);
        return false;
    }
    return true;
}

/* Enrich the window's events in order, as engine_event (NDJSON, AWS
 * payloads), engine_event_scanned (array elements) and engine_failed
 * (AWS records that failed already) would one by one. tagged: AWS
 * records (engine_queue), each with its rec_tag and maybe its bytes in
 * ctx->decoded; NDJSON and arrays pay a branch an event for it, and only
 * in a window. */
static void window_run(enrich_ctx *ctx, size_t nw, bool tagged)
{
    ctx->windows++;
    if (tagged) {
        for (size_t w = 0; w < nw; w++) {
            win_event *we = &ctx->win[w];
            if (we->in_decoded)
                we->raw = ctx->decoded.p + we->raw_off;
        }
    }
    bool prepared = window_prepare(ctx, nw);
    if (ctx->out.oom)
        return;
    for (size_t w = 0; w < nw && !ctx->out.oom; w++) {
        win_event *we = &ctx->win[w];
        rec *r = rec_push(ctx);
        if (!r) {
            ctx->out.oom = true;
            break;
        }
        if (tagged) {
            r->id_off = we->tag.id_off;
            r->id_len = we->tag.id_len;
            r->id_plain = we->tag.id_plain;
            r->arrival_ms = we->tag.arrival_ms;
            ctx->extra_name = we->tag.extra_name;
            ctx->extra_val = we->tag.extra_val;
            ctx->extra_len = we->tag.extra_len;
        }
        if (we->rc || we->type != J_OBJECT) {
            emit_raw_error(ctx, r, we->raw, we->raw_len, we->rc ? we->rc : ENRICH_E_NOT_OBJECT);
        } else {
            members_swap(&ctx->members, &we->members);
            /* Unprepared (a renewal on the way): each event looks up alone. */
            ctx->pre = prepared ? &we->pre : NULL;
            enrich_object(ctx, r, we->base, we->root, we->names_gen, we->names_same);
            ctx->pre = NULL;
            members_swap(&ctx->members, &we->members);
        }
    }
    if (tagged)
        ctx->extra_name = NULL;
}

/* Whether the next events go through the window: unless the memo answers
 * at least 3 lookups in 4 (lookup_cache.h), most go to the store's pages,
 * and those are the cache misses the window overlaps (the window still
 * asks the memo first). While the memo answers most, each event asks it in
 * turn, so that a key repeated within a few events is its hit (a window
 * would ask for both before either answer is stored) and the window's own
 * work (~150 instructions an event) is not spent. Decided again at every
 * window. Measured (docs/performance.md): at 10 000 items, where a 4 096
 * slot memo answers ~40 % of uniform keys, 1.03-1.15 M events/s one at a
 * time against 1.26-1.36 M through the window. */
static inline bool window_pays(const enrich_ctx *ctx)
{
    return ctx->p->nlookups > 0 && !ctx->win_never &&
           (!ctx->lcache.usable || !ctx->lcache.mostly_hits);
}

void engine_flush(enrich_ctx *ctx)
{
    if (ctx->win_n && !ctx->out.oom)
        window_run(ctx, ctx->win_n, true);
    ctx->win_n = 0;
    ctx->decoded.len = 0;
    ctx->win_on = window_pays(ctx);
}

static void run_ndjson(enrich_ctx *ctx, const char *s, size_t n)
{
    bool windowed = window_pays(ctx);
    size_t pos = 0, nw = 0, fetched = 0;
    while (pos < n && !ctx->out.oom) {
        /* Only while the window runs: then the lookups' misses keep the
         * hardware from streaming the lines in (1 000 000 items: 1.04x).
         * Where the memo answers, it streams them alone, and the
         * prefetches' instructions cost (1 000 items: 0.96x). */
        if (windowed)
            mem_prefetch_ahead(s, n, pos, &fetched); /* common.h */
        const char *nl = memchr(s + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - s) : n;
        size_t len = end - pos;
        if (len && s[pos + len - 1] == '\r')
            len--;
        size_t k = 0;
        while (k < len && (s[pos + k] == ' ' || s[pos + k] == '\t' || s[pos + k] == '\r'))
            k++;
        if (k < len) {
            if (!windowed) {
                event_in(ctx, s + pos, len, n - pos);
            } else {
                win_event *we = &ctx->win[nw];
                we->raw = s + pos;
                we->raw_len = len;
                we->need_scan = true;
                if (++nw == ENGINE_WINDOW) {
                    window_run(ctx, nw, false);
                    nw = 0;
                    windowed = window_pays(ctx);
                }
            }
        }
        pos = end + 1;
    }
    if (nw && !ctx->out.oom)
        window_run(ctx, nw, false);
}

static enrich_status run_array(enrich_ctx *ctx, const char *s, size_t n)
{
    size_t pos = 0;
    while (pos < n && (s[pos] == ' ' || s[pos] == '\n' || s[pos] == '\r' || s[pos] == '\t'))
        pos++;
    if (pos >= n || s[pos] != '[') {
        errmsg_set(ctx->errmsg, "input is not a JSON array");
        return ENRICH_E_JSON;
    }
    pos++;
    bool expect_value = false;
    /* Elements go through the window as NDJSON lines do (run_ndjson). */
    bool windowed = window_pays(ctx);
    size_t nw = 0;
    for (;;) {
        while (pos < n && (s[pos] == ' ' || s[pos] == '\n' || s[pos] == '\r' || s[pos] == '\t'))
            pos++;
        if (pos < n && s[pos] == ']' && !expect_value) {
            pos++;
            break;
        }
        size_t start = pos;
        jspan span;
        jtype type;
        win_event *we = windowed ? &ctx->win[nw] : NULL;
        jmembers *ms = we ? &we->members : &ctx->members;
        /* One pass: the element's scan also lists its members. */
        ms->n = 0;
        enrich_status rc = jscan_next(s, n, &pos, ctx->max_depth, &type, &span, ms);
        if (rc == ENRICH_OK) {
            if (!we) {
                engine_event_scanned(ctx, s, span, type);
            } else {
                /* As engine_event_scanned: the size is checked after the
                 * scan, the record carries the element. */
                we->need_scan = false;
                we->base = s;
                we->root = span;
                we->type = type;
                we->raw = s + span.off;
                we->raw_len = span.len;
                we->rc = span.len > ctx->max_record ? ENRICH_E_TOO_LARGE : ENRICH_OK;
                nw++;
            }
        } else if (rc == ENRICH_E_UTF8 || rc == ENRICH_E_NUL || rc == ENRICH_E_DEPTH) {
            /* Cut the element out by structure alone, so it fails on its
             * own while the rest of the array is still processed. */
            pos = start;
            if (!jskip_value(s, n, &pos) || pos == start) {
                errmsg_set(ctx->errmsg, "element at byte %zu is not valid JSON", start);
                return ENRICH_E_JSON;
            }
            /* As engine_event, which checks the size before scanning. */
            enrich_status code = pos - start > ctx->max_record ? ENRICH_E_TOO_LARGE : rc;
            if (!we) {
                rec *r = rec_push(ctx);
                if (!r)
                    return ENRICH_E_NOMEM;
                emit_raw_error(ctx, r, s + start, pos - start, code);
            } else {
                we->need_scan = false;
                we->raw = s + start;
                we->raw_len = pos - start;
                we->rc = code;
                nw++;
            }
        } else {
            errmsg_set(ctx->errmsg, "element at byte %zu is not valid JSON", start);
            return rc == ENRICH_E_NOMEM ? rc : ENRICH_E_JSON;
        }
        if (nw == ENGINE_WINDOW) {
            window_run(ctx, nw, false);
            nw = 0;
            windowed = window_pays(ctx);
        }
        if (ctx->out.oom)
            return ENRICH_E_NOMEM;
        while (pos < n && (s[pos] == ' ' || s[pos] == '\n' || s[pos] == '\r' || s[pos] == '\t'))
            pos++;
        if (pos < n && s[pos] == ',') {
            pos++;
            expect_value = true;
            continue;
        }
        if (pos < n && s[pos] == ']') {
            pos++;
            break;
        }
        errmsg_set(ctx->errmsg, "expected ',' or ']' at byte %zu", pos);
        return ENRICH_E_JSON;
    }
    if (nw) {
        window_run(ctx, nw, false);
        if (ctx->out.oom)
            return ENRICH_E_NOMEM;
    }
    while (pos < n && (s[pos] == ' ' || s[pos] == '\n' || s[pos] == '\r' || s[pos] == '\t'))
        pos++;
    if (pos != n) {
        errmsg_set(ctx->errmsg, "bytes after the array at byte %zu", pos);
        return ENRICH_E_JSON;
    }
    return ENRICH_OK;
}

enrich_status engine_batch_begin(enrich_ctx *ctx, int input, const void *src, size_t src_len)
{
    results_clear(ctx);
    ctx->out.oom = false;
    ctx->scratch.oom = false;
    ctx->key.oom = false;
    ctx->removed.oom = false;
    ctx->ids.oom = false;
    ctx->resp.oom = false;
    ctx->decoded.oom = false;
    ctx->tmp.oom = false;
    ctx->win_keys.oom = false;
    ctx->decoded.len = 0;
    ctx->win_n = 0;
    ctx->extra_name = NULL;
    ctx->success_tail_made = false; /* it holds the last batch's time */
    ctx->errmsg[0] = '\0';
    /* Left set only by a record whose batch then failed (out of memory). */
    ctx->fault_lookup = NULL;
    ctx->missing_field = NULL;
    ctx->input = input;
    if (!src && src_len) {
        errmsg_set(ctx->errmsg, "NULL input of %zu bytes", src_len);
        return ENRICH_E_INVALID;
    }
    /* One clock read per batch: every record of it gets the same stamp. */
    ctx->now_ms = ctx->clock_ms >= 0 ? ctx->clock_ms : clock_now_ms();
    ctx->now_day = (int32_t)epoch_day(ctx->now_ms);
    ctx->ts_lit[0] = '"';
    iso8601_format_ms(ctx->now_ms, ctx->ts_lit + 1);
    ctx->ts_lit[25] = '"';

    enrich_status rc = store_snap_begin(ctx->p->store, &ctx->snap, ctx->errmsg);
    if (rc)
        return rc;
    /* The snapshot's roots are its id's, so the lookup memo can key on the
     * id and the map's generation (read under the map lock the batch now
     * holds). */
    lcache_begin(&ctx->lcache, store_snap_id(ctx->snap), store_snap_map_gen(ctx->p->store));
    ctx->win_on = window_pays(ctx);
    return ENRICH_OK;
}

enrich_status engine_batch_reject(enrich_ctx *ctx, int input)
{
    results_clear(ctx);
    errmsg_set(ctx->errmsg, "input shape %d is not this call's: enrich_batch_run takes NDJSON "
               "(1) and JSON_ARRAY (2), enrich_aws_batch_run PIPES (3), FIREHOSE (4) and "
               "KINESIS (5)", input);
    return ENRICH_E_INVALID;
}

enrich_status engine_batch_end(enrich_ctx *ctx, enrich_status rc)
{
    store_snap_end(ctx->p->store, ctx->snap);
    if (!rc && ctx->out.oom)
        rc = ENRICH_E_NOMEM;
    if (rc) {
        if (rc == ENRICH_E_NOMEM)
            errmsg_set(ctx->errmsg, "out of memory while enriching the batch");
        /* All or nothing: a failed batch leaves no partial results. */
        results_clear(ctx);
    }
    return rc;
}

enrich_status enrich_batch_run(enrich_ctx *ctx, enrich_input input, const void *src,
                               size_t src_len)
{
    if (!ctx)
        return ENRICH_E_INVALID;
    if (input != ENRICH_INPUT_NDJSON && input != ENRICH_INPUT_JSON_ARRAY)
        return engine_batch_reject(ctx, (int)input);
    enrich_status rc = engine_batch_begin(ctx, input, src, src_len);
    if (rc)
        return rc;
    if (input == ENRICH_INPUT_NDJSON)
        run_ndjson(ctx, src, src_len);
    else
        rc = run_array(ctx, src, src_len);
    return engine_batch_end(ctx, rc);
}
