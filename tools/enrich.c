/* enrich: command-line front end of libenrich. Dispatches subcommands. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

/* The commands, in the order of help_commands (help.c). */
static const struct {
    const char *name;
    int (*fn)(int, char **);
} commands[] = {
    {"load", cmd_load}, {"get", cmd_get},   {"run", cmd_run}, {"stats", cmd_stats},
    {"copy", cmd_copy}, {"verify", cmd_verify}, {"demo", cmd_demo}, {"ddl", cmd_ddl},
};

static void usage(FILE *f)
{
    help_usage(f);
}

int main(int argc, char **argv)
{
    cli_argv0 = argc > 0 ? argv[0] : "enrich";
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
