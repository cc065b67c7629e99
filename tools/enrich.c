/* enrich: command-line front end of libenrich. Dispatches subcommands. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    {"load", cmd_load, "load reference items into a table of a store"},
    {"get", cmd_get, "print one item of a table"},
    {"run", cmd_run, "enrich NDJSON events (stdout or partitioned gzip files)"},
    {"stats", cmd_stats, "print store statistics as JSON"},
    {"copy", cmd_copy, "write a compact snapshot of a store to a new file"},
    {"verify", cmd_verify, "check a store's file for damage (every page, every item)"},
    {"demo", cmd_demo, "run the seed scenario end to end (needs nothing prepared)"},
    {"ddl", cmd_ddl, "print the Athena CREATE EXTERNAL TABLE for run --out-dir"},
};

static void usage(FILE *f)
{
    fputs("Usage: enrich COMMAND [OPTION]... [ARG]...\n"
          "       enrich --help | --version\n"
          "\n"
          "Enrich streaming events with reference data held in a memory-mapped\n"
          "LMDB store (libenrich).\n"
          "\n"
          "Commands:\n",
          f);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-6s %s\n", commands[i].name, commands[i].summary);
    fputs("\n"
          "'enrich COMMAND --help' describes a command. Try 'enrich demo'.\n"
          "\n" CLI_EXIT_HELP,
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("enrich %s (libenrich %s)\n", ENRICH_VERSION_STRING, enrich_version_string());
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        char *hargv[] = {argv[2], "--help", NULL};
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (strcmp(argv[2], commands[i].name) == 0)
                return commands[i].fn(2, hargv);
        fprintf(stderr, "enrich: unknown command '%s'\nTry 'enrich --help'.\n", argv[2]);
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    if (cmd[0] == '-')
        fprintf(stderr, "enrich: unknown option '%s'\nTry 'enrich --help'.\n", cmd);
    else
        fprintf(stderr, "enrich: unknown command '%s'\nTry 'enrich --help'.\n", cmd);
    return CLI_EXIT_USAGE;
}
