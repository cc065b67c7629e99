/* The enrich command-line tool: declarations shared by the files of tools/.
 * The tool uses only the public headers, never lib/. */
#ifndef ENRICH_TOOLS_CLI_H
#define ENRICH_TOOLS_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "enrich/enrich.h"
#include "help.h"

/* Exit codes of every subcommand (see docs/cli.md). */
enum {
    CLI_EXIT_OK = 0,        /* done */
    CLI_EXIT_ERROR = 1,     /* library or I/O error: nothing, or only part, done */
    CLI_EXIT_USAGE = 2,     /* bad command line */
    CLI_EXIT_RECORDS = 3,   /* run finished, but some records had outcome ERROR */
    CLI_EXIT_DAMAGED = 4    /* verify found damage */
};

/* ---- util.c: messages ---------------------------------------------- */

/* "enrich <cmd>: ENRICH_E_NAME: description[: detail]" on stderr. Returns
 * CLI_EXIT_ERROR so callers can `return cli_fail(...)`. */
int cli_fail(const char *cmd, enrich_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "enrich <cmd>: <message>" + a hint to --help; returns CLI_EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Report getopt_long's '?' or ':' (optstring starts with ':'); exit code 2. */
int cli_bad_option(const char *cmd, char **argv, int c);
/* "enrich <cmd>: <message>" on stderr (informational). */
void cli_note(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- util.c: inputs ------------------------------------------------ */

/* A path for messages: "stdin" for "-". */
const char *cli_display_name(const char *path);

/* One whole input in memory: a mapped file, a buffer read from a pipe or
 * stdin, or borrowed bytes (embedded data). */
typedef struct cli_input {
    const char *name;      /* for messages: the path, "-" for stdin */
    const uint8_t *ptr;
    size_t len;
    void *map;             /* munmap on free when non-NULL */
    size_t map_len;
    uint8_t *heap;         /* free on free when non-NULL */
} cli_input;

/* Read path ("-" = stdin) fully: mmap regular files, read anything else.
 * On failure prints the error and returns CLI_EXIT_ERROR. */
int cli_input_read(const char *cmd, const char *path, cli_input *in);
/* Borrowed bytes (no copy). */
void cli_input_borrow(cli_input *in, const char *name, const void *ptr, size_t len);
void cli_input_free(cli_input *in);

/* A byte stream read in pieces: a file descriptor or borrowed memory. A
 * regular file may also be mapped (cli_source_map), for readers that take
 * its bytes in place. */
typedef struct cli_source {
    const char *name;
    int fd;                /* -1 for memory */
    bool close_fd;
    const uint8_t *mem;
    size_t mem_len, mem_pos;
    const uint8_t *map;    /* the file's first map_len bytes, or NULL */
    size_t map_len;
} cli_source;

int cli_source_open(const char *cmd, const char *path, cli_source *src);
void cli_source_memory(cli_source *src, const char *name, const void *ptr, size_t len);
/* Map a regular file's current bytes into src->map (through in_map.c's
 * guard). false: not mapped (not a regular file, empty, no room), and
 * reads go on as before. */
bool cli_source_map(cli_source *src);
/* Drop the mapping, if any (reads of the descriptor go on). */
void cli_source_unmap(cli_source *src);
/* Like read(2): bytes read, 0 at end, -1 with errno on failure. */
long cli_source_read(cli_source *src, void *dst, size_t cap);
/* Go on reading at byte off of the source (a file or memory). 0, or -1
 * with errno. */
int cli_source_seek(cli_source *src, uint64_t off);
void cli_source_close(cli_source *src);

/* ---- in_map.c: mapped input files, guarded ---------------------------- */

/* Map len bytes of fd (PROT_READ), registered with the SIGBUS guard: a page
 * lost to another process truncating the file reads as zeros and sets the
 * flag below instead of killing the process. NULL: not mapped (len 0, the
 * guard could not be installed, MAP_SLOTS mappings open, mmap failed). */
const uint8_t *cli_map_file(int fd, size_t len);
void cli_unmap_file(const uint8_t *p, size_t len);
/* Whether a guarded mapping lost a page since the process started: what
 * was read from any of them since may be zeros, not the file. */
bool cli_map_shrank(void);

/* ---- in_reader.c: enrich run's NDJSON input on a thread of its own --- */

typedef enum cli_batch_kind {
    CLI_BATCH_LINES, /* complete lines to enrich */
    CLI_BATCH_END,   /* the source is read to its end */
    CLI_BATCH_ERROR, /* reading failed (err: an errno value) */
} cli_batch_kind;

/* What the reader hands over, in input order. */
typedef struct cli_batch {
    cli_batch_kind kind;
    const uint8_t *p; /* CLI_BATCH_LINES: the lines (the last line of a */
    size_t len;       /* source may lack its '\n') */
    size_t lines;     /* input lines in them */
    uint64_t skipped; /* lines skipped for --resume before this item */
    int err;
    void *chunk; /* the reader's */
} cli_batch;

typedef struct cli_reader cli_reader;
/* Start the thread reading src: batches of up to batch_lines lines (or
 * ending at the first line that brings them to batch_bytes), a line longer
 * than keep bytes cut to keep bytes, the first skip lines skipped. A mapped
 * source (src->map) is handed over in place where it can be (whole
 * batches of lines no longer than keep); the same batches come either
 * way. 0, or an errno value. */
int cli_reader_start(cli_source *src, size_t batch_lines, size_t batch_bytes, size_t keep,
                     uint64_t skip, cli_reader **r);
/* The next item into *b (its bytes stay valid until the next call); false
 * when none is ready yet and wait is false. */
bool cli_reader_next(cli_reader *r, bool wait, cli_batch *b);
/* End the thread (also while it waits for input on a pipe), free r (NULL:
 * nothing). */
void cli_reader_finish(cli_reader *r);

/* ---- out_writer.c: enrich run's output on a thread of its own -------- */

typedef struct cli_writer cli_writer;
/* Start the thread writing to f. 0, or an errno value. */
int cli_writer_start(FILE *f, cli_writer **w);
/* Hand (*buf)[0, len) over to be written after what was handed before;
 * *buf and *cap then hold a free buffer (one already written, or NULL/0).
 * A writer thread asleep (after ~2 ms without work) is woken once 4
 * hand-overs wait, or at once when `now` is true (the caller is about to
 * wait, and a reader of the output must see everything handed over so far;
 * len 0 hands nothing over and only does that). Waits while 8 hand-overs
 * are queued. 0, or the errno of an earlier write that failed (then
 * nothing is handed over). */
int cli_writer_put(cli_writer *w, char **buf, size_t *cap, size_t len, bool now);
/* Write what is left, end the thread, free w (NULL: nothing). 0, or the
 * errno of the first write that failed. */
int cli_writer_finish(cli_writer *w);

/* ---- util.c: parsing ---------------------------------------------- */

/* ISO-8601 UTC "YYYY-MM-DD[THH:MM[:SS[.fff]]](Z|+HH:MM|-HH:MM)" (date
 * alone means midnight UTC) or an all-digit epoch-milliseconds value.
 * Returns false on anything else. */
bool cli_parse_time_ms(const char *s, int64_t *ms);
/* Format epoch ms as "YYYY-mm-dd-HH-MM-SS" (UTC) into dst[32]. */
void cli_format_time_name(int64_t ms, char dst[32]);
/* Decimal size_t in [min, max]. */
bool cli_parse_size(const char *s, size_t min, size_t max, size_t *out);

/* mkdir -p; on failure errno is set and -1 returned. */
int cli_mkdirs(const char *path);
/* malloc'd "a/b"; aborts on out of memory. */
char *cli_join(const char *a, const char *b);
/* malloc'd copy of a; aborts on out of memory. */
char *cli_xstrdup(const char *a);
void *cli_xmalloc(size_t n);
void *cli_xrealloc(void *p, size_t n);

/* How to run this very program from the current directory, for hints
 * printed to the user: "enrich" when that name on PATH is this binary,
 * else its path (relative when it lies under the current directory, so
 * "_build/tools/enrich" rather than an absolute path). malloc'd. */
char *cli_self_command(void);
/* argv[0] of main, for cli_self_command when /proc is not mounted. */
extern const char *cli_argv0;

/* Store opened for a subcommand, with the error printed on failure. */
int cli_store_open(const char *cmd, const char *path, unsigned flags, enrich_store **out);

/* n bytes of a JSON document and a newline on stdout, flushed: CLI_EXIT_OK,
 * or the write error reported as cmd's. */
int cli_print_document(const char *cmd, const char *doc, size_t n);

/* ---- cmd_load.c ----------------------------------------------------- */

typedef struct load_opts {
    const char *store;
    const char *table;
    const char *key;            /* NULL: use the existing table's key */
    int format;                 /* an enrich_load_format, 0 = guess per input */
    const char *csv_types;
    bool replace;               /* the first input replaces the table */
    bool verbose;               /* summary line even when stderr is no tty */
} load_opts;

/* Open (create) the store and load every input in turn, each in its own
 * transaction. Shared by `load` and `demo`. Returns a CLI exit code. */
int load_inputs(const char *cmd, const load_opts *opts, cli_input *inputs, size_t n);
/* The format of an input without --format: *.csv is CSV; else the first
 * record decides (load_sniff_format); else *.ddb.json and *.ddb.jsonl are
 * DynamoDB JSON; else NDJSON. *why says which rule decided, for -v. */
enrich_load_format load_guess_format(const char *name, const uint8_t *p, size_t n,
                                     const char **why);

/* ---- sniff.c -------------------------------------------------------- */

/* The format the first record of p[0..n) shows: DynamoDB JSON (an
 * attribute map of type descriptors, bare or as {"Item":...}; lines or an
 * array), a DynamoDB Streams event ({"Records":[{"dynamodb":...}]}), a
 * JSON array or NDJSON of plain objects. false when the first record is no
 * JSON object (CSV, broken JSON, nothing): the content does not decide. */
bool load_sniff_format(const uint8_t *p, size_t n, enrich_load_format *fmt);

/* ---- cmd_run.c ------------------------------------------------------ */

typedef struct run_opts {
    const char *store;
    const void *rules;          /* NULL: the seed's default rule set */
    size_t rules_len;
    const char *rules_name;     /* the rule set's file, for messages (NULL: none) */
    enrich_input input;         /* NDJSON (streamed) or JSON_ARRAY (whole input) */
    size_t batch;               /* lines per batch */
    size_t max_record;          /* ENRICH_OPT_MAX_RECORD_BYTES; 0 = library default */
    const char *out_dir;        /* NULL: NDJSON on stdout; else enrich_delivery root */
    const void *delivery;       /* delivery configuration JSON; NULL: defaults */
    size_t delivery_len;
    bool resume;                /* skip what the delivery state acknowledged */
    bool metrics;               /* print delivery metrics (summary + EMF) */
    bool tee;                   /* with out_dir: NDJSON on stdout as well */
    bool have_clock;
    int64_t clock_ms;           /* ENRICH_OPT_CLOCK_MS when have_clock */
    bool verbose;               /* summary even without out_dir */
} run_opts;

/* Enrich every source in turn. Shared by `run` and `demo`. Returns a CLI
 * exit code (0, 1, or 3 when some record had outcome ERROR). When files
 * is non-NULL it receives the published output paths (malloc'd array of
 * malloc'd strings; free with run_free_files). */
int run_sources(const char *cmd, const run_opts *opts, cli_source *sources, size_t n,
                char ***files, size_t *nfiles);
void run_free_files(char **files, size_t n);

/* ---- subcommands ---------------------------------------------------- */

int cmd_load(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_copy(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_ddl(int argc, char **argv);

#endif
