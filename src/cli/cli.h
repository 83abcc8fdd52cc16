/*
 * cli.h — what every pikoc subcommand shares: the command table, the one
 * option parser, the one output formatter (an aligned table for terminals,
 * RFC 4180 CSV, or a JSON array of objects) and the exit-status rules
 * (0 success, 1 failure, 2 bad usage or bad input, with one line on stderr).
 */
#ifndef PK_CLI_H
#define PK_CLI_H

#include "internal.h" /* the CLI links the library's objects: its helpers are ours */

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum { PK_EXIT_OK = 0, PK_EXIT_FAILURE = 1, PK_EXIT_USAGE = 2 };

/* ---- commands ----------------------------------------------------------------- */

typedef struct pk_cli_command {
    const char *name;                   /* "top" */
    const char *summary;                /* one line for `pikoc --help` */
    const char *help;                   /* the whole `pikoc top --help` text */
    int (*main)(int argc, char **argv); /* argv[0] is the command's name */
} pk_cli_command;

extern const pk_cli_command pk_cmd_run, pk_cmd_runs, pk_cmd_top, pk_cmd_tree, pk_cmd_events,
    pk_cmd_spikes, pk_cmd_diff, pk_cmd_export, pk_cmd_sql, pk_cmd_spans, pk_cmd_leaks, pk_cmd_peak,
    pk_cmd_histogram, pk_cmd_plot, pk_cmd_flame, pk_cmd_report, pk_cmd_listen;

/* Prints "pikoc CMD: message" on stderr (one line). */
void pk_cli_error(const char *command, const char *fmt, ...) PK_PRINTF(2, 3);

/* ---- options -------------------------------------------------------------------- */

typedef struct pk_cli_option {
    const char *name;  /* long name without "--": "by" */
    char short_name;   /* 'o', or 0 */
    const char *value; /* placeholder of its value ("KEY"), NULL for a flag */
} pk_cli_option;

/* What pk_cli_next returns besides an index into the option table. */
enum {
    PK_CLI_END = -1,     /* no more arguments */
    PK_CLI_OPERAND = -2, /* a positional argument, in *value */
    PK_CLI_EXIT = -3,    /* stop: --help was printed, or a usage error was */
};

typedef struct pk_cli_parser {
    const pk_cli_command *command;
    const pk_cli_option *options;
    size_t count;
    int argc;
    char **argv;
    int next;             /* index of the next argument */
    bool operands_only;   /* after "--" */
    bool stop_at_operand; /* the first operand and everything after are not ours */
    int status;           /* exit status, valid after PK_CLI_EXIT */
    uint64_t given;       /* bit i: option i (with a value) was given */
    uint64_t repeatable;  /* bit i: option i may be given again; else a second is an error */
} pk_cli_parser;

void pk_cli_begin(pk_cli_parser *p, const pk_cli_command *command, const pk_cli_option *options,
                  size_t count, int argc, char **argv);
/*
 * The next option (its index in the table, with its value in *value when it
 * takes one), PK_CLI_OPERAND, PK_CLI_END or PK_CLI_EXIT. Accepts --name VALUE,
 * --name=VALUE, -x VALUE, -xVALUE, and "--" to end the options; --help (-h)
 * prints the command's help. With stop_at_operand, the remaining arguments
 * start at argv[p->next] once PK_CLI_END is returned.
 */
int pk_cli_next(pk_cli_parser *p, const char **value);
/* Reports a usage error for the command and returns PK_EXIT_USAGE. */
int pk_cli_usage(const pk_cli_parser *p, const char *fmt, ...) PK_PRINTF(2, 3);

/* Value parsers: 0, or a usage error reported as "pikoc CMD: --opt 'v': why" and -1. */
int pk_cli_uint(pk_cli_parser *p, const char *option, const char *text, uint64_t *value);
int pk_cli_duration(pk_cli_parser *p, const char *option, const char *text, uint64_t *ns);
/* "1.5" or "12" (a non-negative decimal). */
int pk_cli_real(pk_cli_parser *p, const char *option, const char *text, double *value);
/* "4096", "64k", "1.5MiB", "2M" (binary multiples): bytes. */
int pk_cli_size(pk_cli_parser *p, const char *option, const char *text, uint64_t *bytes);
/* The index of text among names; noun names the kind in "unknown <noun>". */
int pk_cli_choice(pk_cli_parser *p, const char *option, const char *text, const char *noun,
                  const char *const *names, size_t count);

/* A command's own option that sets one variable: how its value reads, where it goes. */
typedef enum pk_value_kind {
    PK_VALUE_UINT,   /* uint64_t */
    PK_VALUE_SIZE,   /* uint64_t bytes, as pk_cli_size reads them */
    PK_VALUE_REAL,   /* double */
    PK_VALUE_TEXT,   /* const char *, as given */
    PK_VALUE_CHOICE, /* int: the index of the value among names */
} pk_value_kind;

typedef struct pk_cli_value {
    int option; /* its index in the command's option table */
    pk_value_kind kind;
    void *to;
    const char *noun;         /* a choice: the kind "unknown <noun>" names */
    const char *const *names; /* a choice's names, count of them */
    size_t count;
    bool *given; /* when not NULL, set once the option is seen */
} pk_cli_value;

#define PK_VALUE(option_, kind_, to_)                                                              \
    {                                                                                              \
        .option = (option_), .kind = (kind_), .to = (to_)                                          \
    }
#define PK_CHOICE(option_, to_, noun_, names_, count_)                                             \
    {                                                                                              \
        .option = (option_), .kind = PK_VALUE_CHOICE, .to = (to_), .noun = (noun_),                \
        .names = (names_), .count = (count_)                                                       \
    }

/* Takes option o when values has it: 1, 0 when it is not there, -1 after a usage error. */
int pk_cli_take(pk_cli_parser *p, const pk_cli_value *values, size_t count, int o,
                const char *text);

/* ---- output ---------------------------------------------------------------------- */

typedef enum pk_format { PK_FORMAT_TABLE, PK_FORMAT_CSV, PK_FORMAT_JSON } pk_format;

extern const char *const pk_format_names[3];

typedef enum pk_column_kind {
    PK_COLUMN_TEXT,    /* left-aligned */
    PK_COLUMN_INTEGER, /* right-aligned */
    PK_COLUMN_REAL,    /* right-aligned, two decimals */
    PK_COLUMN_NS,      /* nanoseconds: a plain integer in CSV and JSON, "1.25 ms" in a table */
    PK_COLUMN_BYTES,   /* bytes (signed): plain in CSV and JSON, "12.0 KiB" in a table */
} pk_column_kind;

typedef struct pk_column {
    const char *name; /* CSV header and JSON field: stable, for scripts */
    pk_column_kind kind;
} pk_column;

typedef struct pk_table pk_table;

/*
 * Writes rows to out in the format. A table's column widths come from the
 * first rows (up to a thousand), so a long listing streams instead of being
 * held in memory whole; CSV and JSON stream from the first row.
 */
pk_table *pk_table_new(FILE *out, pk_format format, const pk_column *columns, size_t count);
/* Cells, left to right; a row ends after its last column. */
void pk_table_text(pk_table *t, const char *text);
void pk_table_int(pk_table *t, int64_t value);
void pk_table_real(pk_table *t, double value);
void pk_table_null(pk_table *t); /* not measured: "-" in a table, empty in CSV, null in JSON */
/* Ends the output (the JSON array, pending table rows) and flushes; -1 on a write error. */
int pk_table_finish(pk_table *t);
/* What a table shows for PK_COLUMN_NS ("1.25 ms") and PK_COLUMN_BYTES ("12.0 KiB"). */
void pk_readable_ns(int64_t ns, char *buf, size_t size);
void pk_readable_bytes(int64_t bytes, char *buf, size_t size);
/*
 * Writes text as a JSON string, quotes included: the one escaper (also
 * export's). A byte outside any UTF-8 character becomes U+FFFD.
 */
void pk_json_string(FILE *out, const char *text);

/*
 * UTF-8. What the database holds is bytes: a program's arguments and its
 * symbols need not be UTF-8, and JSON, XML and HTML must be. The escapers
 * keep each well-formed character and write U+FFFD for every other byte;
 * text cut to fit is cut between characters, never inside one.
 */
#define PK_UTF8_REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */
/*
 * The length (1 to 4 bytes) of the well-formed character that text (not
 * empty) starts with, or 0 when its first byte begins none: a Latin-1 byte,
 * a stray continuation byte, a sequence cut short, an overlong form, a
 * surrogate (ED A0..BF) or a code point above U+10FFFF.
 */
size_t pk_utf8_char(const char *text);
/* Writes the character text starts with, or U+FFFD when it starts none; the bytes read. */
size_t pk_utf8_put(FILE *out, const char *text);
/* The bytes of text's first `count` characters; a byte outside any character counts as one. */
size_t pk_utf8_prefix(const char *text, size_t count);
/* snprintf, except that what is cut to fit ends before the character it would split. */
int pk_text_format(char *buf, size_t size, const char *fmt, ...) PK_PRINTF(3, 4);

/* ---- reading a database ------------------------------------------------------------ */

/*
 * The options the query commands share, first in their option tables:
 * --db FILE (default pikoc.db), --format table|csv|json and, for commands
 * about one run, --run N (default: the latest).
 */
#define PK_DB_OPTIONS                                                                              \
    {"db", 'd', "FILE"},                                                                           \
    {                                                                                              \
        "format", 'f', "FORMAT"                                                                    \
    }
#define PK_RUN_OPTIONS                                                                             \
    PK_DB_OPTIONS,                                                                                 \
    {                                                                                              \
        "run", 'r', "N"                                                                            \
    }
enum { PK_OPT_DB, PK_OPT_FORMAT, PK_OPT_RUN, PK_RUN_OPTION_COUNT };
#define PK_DB_OPTION_COUNT PK_OPT_RUN

#define PK_DB_HELP                                                                                 \
    "  -d, --db FILE        the database (default: pikoc.db in the current directory)\n"           \
    "  -f, --format FORMAT  table (aligned, the default), csv (RFC 4180) or json\n"                \
    "                       (an array of objects)\n"
#define PK_RUN_HELP                                                                                \
    PK_DB_HELP "  -r, --run N          the run (default: the latest; see pikoc runs)\n"

typedef struct pk_query {
    const pk_cli_command *command;
    const char *path;    /* --db */
    const char *run_arg; /* --run, NULL for the latest */
    pk_format format;
    FILE *out;       /* stdout, or export's -o FILE */
    sqlite3 *db;     /* read-only, with pikoc_events registered */
    int64_t version; /* PRAGMA user_version: tables of later versions are missing, not damaged */
    int64_t run_id;
} pk_query;

void pk_query_init(pk_query *q, const pk_cli_command *command);
/* Takes a shared option (PK_OPT_*), refusing operands; 0, or PK_EXIT_USAGE after a usage error. */
int pk_query_option(pk_cli_parser *p, pk_query *q, int option, const char *value);
/*
 * A query command's argument loop: its own options into values, the shared
 * ones into q, operands refused. -1 when the command goes on; otherwise the
 * status to exit with (its --help or a usage error was printed).
 */
int pk_query_args(pk_cli_parser *p, pk_query *q, const pk_cli_value *values, size_t count);
/*
 * Opens the database read-only and, with find_run, resolves the run. Bad
 * input (no such file, not a pikoc database, a newer schema, an unknown run)
 * is one line on stderr and PK_EXIT_USAGE (the database is then closed).
 */
int pk_query_open(pk_query *q, bool find_run);
void pk_query_close(pk_query *q);
/* Reports db's last error as "pikoc CMD: FILE: message"; returns PK_EXIT_USAGE (bad input). */
int pk_query_fail(pk_query *q);
/* A prepared statement, or NULL after pk_query_fail. */
sqlite3_stmt *pk_query_prepare(pk_query *q, const char *sql);

/*
 * An output file (export's and the pictures' -o PATH) written whole or not
 * at all: "-" is stdout; a regular file, or none yet, is written to a
 * temporary file beside it (unnamed where the file system allows it),
 * synced, and renamed over it at the end, so a failure leaves what was
 * there (when no file can be made beside it, it is written in place);
 * anything else (a device, a FIFO, a symbolic link) is written in place and
 * never removed. The database q reads is refused.
 */
typedef struct pk_output {
    FILE *file;
    const char *path; /* as given */
    char *target;     /* the regular file path links to, replaced in its place; NULL: path */
    char *temp;       /* renamed to the file at the end; NULL when written in place or unnamed */
    bool unnamed;     /* an O_TMPFILE beside the file, named (temp) only once whole */
} pk_output;
/* 0, or the status to exit with after a reported error. */
int pk_output_open(pk_output *o, pk_query *q, const char *path);
/*
 * Refuses an -o path that is empty or q's database (option names it in the
 * message: "--db", "--vs"); 0, or PK_EXIT_USAGE after the message.
 */
int pk_output_check(pk_query *q, const char *path, const char *option);
/* Flushed and closed, renamed into place when status is 0; the status to exit with. */
int pk_output_close(pk_output *o, pk_query *q, int status);

/* What the run's monitor measured and how it ran (docs/schema.md, table runs). */
typedef struct pk_run_facts {
    unsigned flags; /* pk_record_flags: PK_RECORD_MEMORY (RSS/VMS), PK_RECORD_ALLOC */
    int64_t pid;
    char monitor[64];
    char alloc_source[160];
} pk_run_facts;

/* The facts of q's run; 0, or the exit status after a reported error. */
int pk_query_run_facts(pk_query *q, pk_run_facts *facts);
/*
 * Whether sql (?1 bound to q's run) gives a row whose first column is true:
 * 0 and *found, or the exit status after a reported read error. A failing
 * read is never taken for "no".
 */
int pk_query_run_has(pk_query *q, const char *sql, bool *found);
/*
 * Whether q's run has allocation records (the alloc_* tables), quietly: 0
 * and *found (false in a file older than the tables), or the exit status
 * after a reported read error.
 */
int pk_query_has_alloc(pk_query *q, bool *found);
/* Binds ?1 to q's run and ?2 to a LIMIT of `limit` (0: no limit); stmt may be NULL. */
void pk_query_bind_run_limit(pk_query *q, sqlite3_stmt *stmt, uint64_t limit);
/* Whether the run recorded allocation stacks (pikoc run --stack N); as pk_query_has_alloc. */
int pk_query_has_stacks(pk_query *q, bool *found);
/*
 * 0 when it did; else reports "--group stack: run N has no allocation
 * stacks (...)", or the read error, and returns PK_EXIT_USAGE.
 */
int pk_query_stack_run(pk_query *q);
/*
 * SQL for the frames of the alloc_stacks row aliased `a`, as one text:
 * folded, "main;a;b" (outermost first); else "b:12 < a:20 < main:31"
 * (innermost first, function:line).
 */
const char *pk_query_stack_text(bool folded);
/*
 * 0 when q's run has allocation records (the alloc_* tables); else reports
 * "run N has no allocation records (...)", or the read error, and returns
 * PK_EXIT_USAGE.
 */
int pk_query_alloc_run(pk_query *q);
/*
 * 0 unless q's run was recorded by the alloc monitor alone, which records
 * no calls; then reports it, naming the commands that read such a run, and
 * returns PK_EXIT_USAGE (or the read error's status).
 */
int pk_query_call_run(pk_query *q);
/* The same, for a run whose facts are read already. */
int pk_query_call_facts(pk_query *q, const pk_run_facts *facts);
/* Reports a failed write of the output and returns PK_EXIT_FAILURE. */
int pk_query_write_failed(pk_query *q, const char *where);
/*
 * Prints every row of stmt through the formatter and finalizes it. Columns
 * come from `columns` (count of them, matching the statement's), or, when
 * columns is NULL, from the statement: its names, and kinds from the first
 * row's values. Returns the exit status.
 */
int pk_query_print(pk_query *q, sqlite3_stmt *stmt, const pk_column *columns, size_t count);
/* One cell from column i of the current row, by the value's SQLite type. */
void pk_table_value(pk_table *t, sqlite3_stmt *stmt, int i);

/* Which events `pikoc events` prints (and `pikoc export --format csv`: all). */
typedef struct pk_event_filter {
    const char *function; /* a glob, or NULL */
    const char *type;     /* "call", "return", "checkpoint" or NULL */
    uint64_t thread;
    bool thread_given;
    uint64_t limit; /* 0: all */
} pk_event_filter;

/* Prints the run's events through the formatter to q->out; returns the exit status. */
int pk_events_print(pk_query *q, const pk_event_filter *filter);

/* ---- allocation sites (top.c, leaks.c; also report) ---------------------------------- */

/* function, line, allocations, bytes, temporary, leaked_bytes, peak_bytes, file */
enum { PK_SITE_COLUMNS = 8 };
extern const pk_column pk_site_columns[PK_SITE_COLUMNS];
/*
 * q's run's allocation sites merged by line (or by function), the largest
 * value of `order` (an aggregate column: "bytes", "allocations",
 * "temporary") first, at most limit rows (0: all). NULL after pk_query_fail.
 */
sqlite3_stmt *pk_sites_prepare(pk_query *q, const char *order, bool by_function, uint64_t limit);

/* function, line, blocks, bytes, file */
enum { PK_LEAK_COLUMNS = 5 };
extern const pk_column pk_leak_columns[PK_LEAK_COLUMNS];
/* The blocks q's run never freed, by call site, the most bytes first; NULL after a report. */
sqlite3_stmt *pk_leaks_prepare(pk_query *q, uint64_t limit);

/* ---- comparing two runs (diff.c; also report --vs) ---------------------------------- */

enum { PK_DIFF_CALLS, PK_DIFF_TOTAL, PK_DIFF_SELF, PK_DIFF_ALLOC, PK_DIFF_FREE, PK_DIFF_MEASURES };
extern const char *const pk_diff_measure_names[PK_DIFF_MEASURES]; /* "calls", "total_ns", ... */
extern const pk_column_kind pk_diff_measure_kinds[PK_DIFF_MEASURES];

/* One side's numbers for a function; `known` is false for NULL (not measured). */
typedef struct pk_diff_side {
    int64_t value[PK_DIFF_MEASURES];
    bool known[PK_DIFF_MEASURES];
} pk_diff_side;

typedef struct pk_diff_row {
    char *function, *file;
    pk_diff_side a, b;
} pk_diff_row;

/* "3", "other.db:3" or "other.db" (its latest run) into q's path and run; free *owned after. */
void pk_diff_operand(const char *text, pk_query *q, char **owned);
/*
 * The functions of runs a and b (both opened, runs resolved) matched by name
 * and file, the largest change of `measure` (PK_DIFF_*) first. Returns the
 * exit status; free the rows with pk_diff_free.
 */
int pk_diff_load(pk_query *a, pk_query *b, int measure, pk_diff_row **rows, size_t *count);
void pk_diff_free(pk_diff_row *rows, size_t count);

/* ---- memory over a run's events (spikes.c; also plot and report) ------------------ */

/* One event as the memory walk sees it. */
typedef struct pk_memory_sample {
    int64_t index, time_ns, thread;
    bool has_rss; /* rss and vms were sampled (function-memory) */
    int64_t rss, vms;
    /* Growth since the previous event with a sample (0 at the first one). */
    int64_t rss_growth, vms_growth;
    bool has_heap; /* the event carried allocation counters */
    int64_t heap;  /* live heap: the sum over threads of their last allocated - freed */
    const char *type, *event_function;
    /*
     * Where the program was while memory grew: before a call, the caller at
     * the line of the call; before a return, the returning function (file and
     * line where it starts). NULL or -1 when unknown.
     */
    const char *function, *file;
    int64_t line;
} pk_memory_sample;

/* Called for each event in order; a non-zero return stops the walk and is returned. */
typedef int (*pk_memory_visit)(void *context, const pk_memory_sample *sample);

/* 0 when q's run sampled RSS/VMS; else reports it and returns PK_EXIT_USAGE. */
int pk_memory_check(pk_query *q);
/* Walks q's run's events; 0, the visitor's status, or the exit status after a read error. */
int pk_memory_walk(pk_query *q, pk_memory_visit visit, void *context);

/* The calling-context tree of a run, from call_paths (tree.c; also export's folded stacks). */
enum { PK_PATH_ALLOC, PK_PATH_FREE, PK_PATH_RSS, PK_PATH_MEASURES };

typedef struct pk_path_node {
    int64_t id, depth, calls, total_ns, self_ns, line;
    int64_t bytes[PK_PATH_MEASURES]; /* alloc_bytes, free_bytes, rss_growth */
    bool measured[PK_PATH_MEASURES]; /* false where the column is NULL */
    char *function, *file;
    size_t parent; /* the parent's index, SIZE_MAX for a root */
    size_t *children;
    size_t child_count;
} pk_path_node;

typedef struct pk_call_tree {
    pk_path_node *nodes; /* in id order: a parent comes before its children */
    size_t count;
    size_t *roots;
    size_t root_count;
} pk_call_tree;

/* Loads the run's call paths; 0, or the exit status after a reported error. */
int pk_call_tree_load(pk_query *q, pk_call_tree *t);
void pk_call_tree_free(pk_call_tree *t);
/* The index of the node with that id (call_paths.id), or SIZE_MAX. */
size_t pk_call_tree_index(const pk_call_tree *t, int64_t id);

/*
 * What a call path weighs in export's folded stacks and in flame graphs:
 * its time, the bytes allocated during it (jemalloc's counters) or, from the
 * allocation sites under it (--monitor alloc), the bytes they allocated,
 * leaked or held at the heap's peak.
 */
enum { PK_WEIGHT_TIME, PK_WEIGHT_ALLOC, PK_WEIGHT_LEAKED, PK_WEIGHT_PEAK, PK_WEIGHT_COUNT };
extern const char *const pk_weight_names[PK_WEIGHT_COUNT]; /* "time", "alloc", "leaked", "peak" */
/* The alloc_sites column of each weight (NULL for time). */
extern const char *const pk_weight_site_columns[PK_WEIGHT_COUNT];

#endif /* PK_CLI_H */
