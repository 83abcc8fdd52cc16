/*
 * main.c — `pikoc COMMAND ...`: finds the subcommand (one file each under
 * src/cli/) and hands it its arguments; `pikoc --help`, `pikoc --version`
 * and `pikoc help COMMAND` are answered here.
 */
#include "cli.h"

#include <string.h>

static const pk_cli_command *const commands[] = {
    &pk_cmd_run,    &pk_cmd_runs,   &pk_cmd_top,       &pk_cmd_tree, &pk_cmd_events,
    &pk_cmd_spikes, &pk_cmd_diff,   &pk_cmd_export,    &pk_cmd_sql,  &pk_cmd_spans,
    &pk_cmd_leaks,  &pk_cmd_peak,   &pk_cmd_histogram, &pk_cmd_plot, &pk_cmd_flame,
    &pk_cmd_report, &pk_cmd_listen,
};

static void print_help(FILE *out)
{
    fputs("usage: pikoc COMMAND [OPTIONS] [ARGS...]\n"
          "\n"
          "pikoc records a program's calls with their time and memory, and every\n"
          "allocation of any program (a Pikos-style monitor for C), then answers\n"
          "questions about the run.\n"
          "\n"
          "commands:\n",
          out);
    for (size_t i = 0; i < PK_ARRAY_SIZE(commands); i++)
        fprintf(out, "  %-9s %s\n", commands[i]->name, commands[i]->summary);
    fputs("\n"
          "The query commands read pikoc.db in the current directory (--db FILE reads\n"
          "another) and its latest run (--run N picks one); they never modify the file.\n"
          "They print an aligned table, or --format csv or json for scripts.\n"
          "\n"
          "  pikoc help COMMAND    a command's options (also: pikoc COMMAND --help)\n"
          "  pikoc --version       pikoc's version\n"
          "\n"
          "example:\n"
          "  cc -g -finstrument-functions app.c -o app\n"
          "  pikoc run -- ./app && pikoc top && pikoc tree\n",
          out);
}

static const pk_cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < PK_ARRAY_SIZE(commands); i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

static int unknown_command(const char *name)
{
    fprintf(stderr, "pikoc: unknown command '%s' (see pikoc --help)\n", name);
    return PK_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return PK_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
        (strcmp(name, "help") == 0 && argc == 2)) {
        print_help(stdout);
        return PK_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        puts("pikoc " PK_VERSION);
        return PK_EXIT_OK;
    }
    if (strcmp(name, "help") == 0) {
        const pk_cli_command *command = find_command(argv[2]);
        if (!command)
            return unknown_command(argv[2]);
        fputs(command->help, stdout);
        return PK_EXIT_OK;
    }
    if (name[0] == '-') {
        fprintf(stderr, "pikoc: unknown option '%s' (see pikoc --help)\n", name);
        return PK_EXIT_USAGE;
    }
    const pk_cli_command *command = find_command(name);
    if (!command)
        return unknown_command(name);
    return command->main(argc - 1, argv + 1);
}
