/* The help texts of the enrich tool (help.c): one place for `--help` and
 * for the manual page generated from it (mkman.c). */
#ifndef ENRICH_TOOLS_HELP_H
#define ENRICH_TOOLS_HELP_H

#include <stddef.h>
#include <stdio.h>

typedef struct help_command {
    const char *name;
    const char *summary; /* one line, for `enrich --help` and the manual's list */
    const char *text;    /* `enrich NAME --help` */
} help_command;

extern const help_command help_commands[];
extern const size_t help_ncommands;
/* The paragraph under the usage lines of `enrich --help`. */
extern const char help_intro[];
extern const char help_load[], help_get[], help_run[], help_stats[], help_copy[],
    help_verify[], help_demo[], help_ddl[];

/* `enrich --help`. */
void help_usage(FILE *f);

#endif
