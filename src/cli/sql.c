/*
 * sql.c — `pikoc sql QUERY`: any reading SQL on a pikoc database, with the
 * pikoc_events virtual table available, printed through the shared
 * formatter. The connection is read-only, and a statement that would write
 * is refused before anything runs.
 */
#include "cli.h"

#include <ctype.h>
#include <string.h>

static const char help[] =
    "usage: pikoc sql [OPTIONS] QUERY\n"
    "\n"
    "Runs QUERY (one or more SQL statements separated by ';') on the database and\n"
    "prints what each returns. Tables: runs, symbols, functions, call_paths,\n"
    "threads, event_batches, and the virtual table pikoc_events (one row per\n"
    "event; see docs/schema.md). The database is opened read-only: statements\n"
    "that would modify it are refused.\n"
    "\n"
    "options:\n" PK_DB_HELP "  -h, --help           this help\n"
    "\n"
    "examples:\n"
    "  pikoc sql 'SELECT id, status, calls FROM runs'\n"
    "  pikoc sql --format json \"SELECT function, count(*) FROM pikoc_events\n"
    "            WHERE run_id = 1 AND type = 'call' GROUP BY function\"\n";

static int sql_main(int argc, char **argv);

const pk_cli_command pk_cmd_sql = {
    .name = "sql",
    .summary = "any read-only SQL on the database",
    .help = help,
    .main = sql_main,
};

static const pk_cli_option options[] = {PK_DB_OPTIONS};

#define MAX_STATEMENTS 64

static bool blank(const char *text)
{
    while (*text && isspace((unsigned char)*text))
        text++;
    return *text == '\0';
}

static int sql_main(int argc, char **argv)
{
    pk_query q;
    pk_query_init(&q, &pk_cmd_sql);
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_sql, options, PK_ARRAY_SIZE(options), argc, argv);
    const char *query = NULL;
    const char *value;
    for (int o; (o = pk_cli_next(&p, &value)) != PK_CLI_END;) {
        if (o == PK_CLI_EXIT)
            return p.status;
        if (o == PK_CLI_OPERAND && !query)
            query = value;
        else if (pk_query_option(&p, &q, o, value) != 0)
            return PK_EXIT_USAGE;
    }
    if (!query || blank(query))
        return pk_cli_usage(&p, "no query (usage: pikoc sql [OPTIONS] QUERY)");
    int status = pk_query_open(&q, false);
    if (status != 0)
        return status;

    /* Every statement is prepared and checked before the first one runs. */
    sqlite3_stmt *statements[MAX_STATEMENTS];
    size_t count = 0;
    const char *rest = query;
    while (status == 0 && !blank(rest)) {
        sqlite3_stmt *stmt = NULL;
        const char *tail = NULL;
        if (sqlite3_prepare_v2(q.db, rest, -1, &stmt, &tail) != SQLITE_OK) {
            pk_cli_error("sql", "%s", sqlite3_errmsg(q.db));
            status = PK_EXIT_USAGE;
        } else if (stmt && !sqlite3_stmt_readonly(stmt)) {
            const char *start = rest + strspn(rest, " \t\r\n");
            const char *end = tail;
            while (end > start && (isspace((unsigned char)end[-1]) || end[-1] == ';'))
                end--;
            pk_cli_error("sql", "refused: '%.*s' would modify %s (pikoc sql only reads)",
                         (int)(end - start), start, q.path);
            sqlite3_finalize(stmt);
            status = PK_EXIT_USAGE;
        } else if (stmt && count == MAX_STATEMENTS) {
            pk_cli_error("sql", "more than %d statements", MAX_STATEMENTS);
            sqlite3_finalize(stmt);
            status = PK_EXIT_USAGE;
        } else if (stmt) {
            statements[count++] = stmt;
        }
        rest = tail ? tail : "";
    }
    size_t i = 0;
    for (; status == 0 && i < count; i++)
        status = pk_query_print(&q, statements[i], NULL, 0);
    for (; i < count; i++)
        sqlite3_finalize(statements[i]);
    pk_query_close(&q);
    return status;
}
