/*
 * query.c — what the query commands share: the --db/--format/--run options,
 * opening the database read-only through the store (which checks that it is
 * a pikoc database this pikoc reads), and printing a statement's rows
 * through the one formatter; and the output files export and the pictures
 * write (-o). Nothing here writes to the database.
 */
#include "cli.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void pk_query_init(pk_query *q, const pk_cli_command *command)
{
    memset(q, 0, sizeof *q);
    q->command = command;
    q->path = "pikoc.db";
    q->format = PK_FORMAT_TABLE;
    q->out = stdout;
}

int pk_query_option(pk_cli_parser *p, pk_query *q, int option, const char *value)
{
    switch (option) {
    case PK_CLI_OPERAND:
        return pk_cli_usage(p, "unexpected argument '%s' (the database is --db FILE)", value);
    case PK_OPT_DB:
        q->path = value;
        return 0;
    case PK_OPT_RUN:
        q->run_arg = value;
        return 0;
    case PK_OPT_FORMAT: {
        int f = pk_cli_choice(p, "--format", value, "format", pk_format_names,
                              PK_ARRAY_SIZE(pk_format_names));
        if (f < 0)
            return PK_EXIT_USAGE;
        q->format = (pk_format)f;
        return 0;
    }
    }
    return 0;
}

int pk_query_args(pk_cli_parser *p, pk_query *q, const pk_cli_value *values, size_t count)
{
    const char *value;
    for (int o; (o = pk_cli_next(p, &value)) != PK_CLI_END;) {
        if (o == PK_CLI_EXIT)
            return p->status;
        int taken = pk_cli_take(p, values, count, o, value);
        if (taken < 0 || (taken == 0 && pk_query_option(p, q, o, value) != 0))
            return PK_EXIT_USAGE;
    }
    return -1;
}

int pk_query_open(pk_query *q, bool find_run)
{
    pk_error err;
    if (pk_store_open_read(q->path, &q->db, &err) != 0) {
        pk_cli_error(q->command->name, "%s", err.message);
        return PK_EXIT_USAGE;
    }
    int status = 0;
    if (pk_store_register_events(q->db) != SQLITE_OK ||
        pk_store_version(q->db, &q->version) != SQLITE_OK) {
        status = pk_query_fail(q);
    } else if (find_run && pk_store_resolve_run(q->db, q->run_arg, &q->run_id, &err) != 0) {
        pk_cli_error(q->command->name, "%s", err.message);
        status = PK_EXIT_USAGE;
    }
    if (status != 0)
        pk_query_close(q);
    return status;
}

void pk_query_close(pk_query *q)
{
    sqlite3_close(q->db);
    q->db = NULL;
}

/* A failing read is bad input: a corrupt page, a malformed event batch. */
int pk_query_fail(pk_query *q)
{
    pk_error err;
    pk_store_fail(&err, q->db, q->path);
    pk_cli_error(q->command->name, "%s", err.message);
    return PK_EXIT_USAGE;
}

sqlite3_stmt *pk_query_prepare(pk_query *q, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(q->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        pk_query_fail(q);
        return NULL;
    }
    return stmt;
}

int pk_query_run_facts(pk_query *q, pk_run_facts *facts)
{
    memset(facts, 0, sizeof *facts);
    sqlite3_stmt *stmt =
        pk_query_prepare(q, "SELECT flags, pid, monitor, alloc_source FROM runs WHERE id = ?");
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        facts->flags = (unsigned)sqlite3_column_int(stmt, 0);
        facts->pid = sqlite3_column_int64(stmt, 1);
        pk_text_format(facts->monitor, sizeof facts->monitor, "%s", sqlite3_column_text(stmt, 2));
        pk_text_format(facts->alloc_source, sizeof facts->alloc_source, "%s",
                       sqlite3_column_text(stmt, 3));
    }
    int status = rc == SQLITE_ROW ? 0 : pk_query_fail(q);
    sqlite3_finalize(stmt);
    return status;
}

int pk_query_run_has(pk_query *q, const char *sql, bool *found)
{
    *found = false;
    sqlite3_stmt *stmt = pk_query_prepare(q, sql);
    if (!stmt)
        return PK_EXIT_USAGE;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *found = sqlite3_column_int(stmt, 0) != 0;
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : pk_query_fail(q);
}

/*
 * Only the schema version says a table may be missing: in a file that has
 * it, a table that cannot be read (dropped, a corrupt page) is damage.
 */
int pk_query_has_alloc(pk_query *q, bool *found)
{
    *found = false;
    if (q->version < PK_STORE_ALLOC_VERSION)
        return 0;
    return pk_query_run_has(q, "SELECT 1 FROM alloc_runs WHERE run_id = ?", found);
}

int pk_query_has_stacks(pk_query *q, bool *found)
{
    *found = false;
    if (q->version < PK_STORE_STACKS_VERSION)
        return 0;
    return pk_query_run_has(q, "SELECT stacks > 0 FROM alloc_runs WHERE run_id = ?", found);
}

void pk_query_bind_run_limit(pk_query *q, sqlite3_stmt *stmt, uint64_t limit)
{
    if (!stmt)
        return;
    sqlite3_bind_int64(stmt, 1, q->run_id);
    sqlite3_bind_int64(stmt, 2, limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit);
}

/*
 * 0 when the run has what `has` looks for; otherwise the status of a check
 * that failed, or PK_EXIT_USAGE after saying what the run lacks and how to
 * record it.
 */
static int require_run(pk_query *q, int (*has)(pk_query *, bool *), const char *prefix,
                       const char *what, const char *how)
{
    bool found;
    int status = has(q, &found);
    if (status != 0 || found)
        return status;
    pk_cli_error(q->command->name, "%srun %lld has no %s (record them with pikoc run %s)", prefix,
                 (long long)q->run_id, what, how);
    return PK_EXIT_USAGE;
}

int pk_query_stack_run(pk_query *q)
{
    return require_run(q, pk_query_has_stacks, "--group stack: ", "allocation stacks", "--stack N");
}

const char *pk_query_stack_text(bool folded)
{
    /* group_concat follows the order of the subquery it reads. */
    if (folded)
        return "(SELECT group_concat(function, ';') FROM (SELECT s.function FROM alloc_frames f"
               " JOIN symbols s ON s.run_id = f.run_id AND s.id = f.symbol_id"
               " WHERE f.run_id = a.run_id AND f.stack_id = a.id ORDER BY f.depth DESC))";
    return "(SELECT group_concat(frame, ' < ') FROM (SELECT s.function || ':' || f.line AS frame"
           " FROM alloc_frames f JOIN symbols s ON s.run_id = f.run_id AND s.id = f.symbol_id"
           " WHERE f.run_id = a.run_id AND f.stack_id = a.id ORDER BY f.depth))";
}

int pk_query_alloc_run(pk_query *q)
{
    return require_run(q, pk_query_has_alloc, "", "allocation records", "--monitor alloc");
}

int pk_query_call_run(pk_query *q)
{
    pk_run_facts facts;
    int status = pk_query_run_facts(q, &facts);
    return status != 0 ? status : pk_query_call_facts(q, &facts);
}

int pk_query_call_facts(pk_query *q, const pk_run_facts *facts)
{
    if (strcmp(facts->monitor, "alloc") != 0)
        return 0;
    pk_cli_error(q->command->name,
                 "run %lld recorded allocations only (monitor alloc), no calls: see its sites "
                 "with pikoc top --by bytes or pikoc leaks",
                 (long long)q->run_id);
    return PK_EXIT_USAGE;
}

int pk_query_write_failed(pk_query *q, const char *where)
{
    pk_cli_error(q->command->name, "cannot write %s: %s", where, strerror(errno ? errno : EIO));
    return PK_EXIT_FAILURE;
}

/* ---- output files ----------------------------------------------------------------- */

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* The file an output replaces: the one its path links to, or the path's. */
static const char *file_of(const pk_output *o)
{
    return o->target ? o->target : o->path;
}

/* path.XXXXXX, the X six random letters and digits (as mkstemp makes them). */
static void random_name(char *name, size_t size, const char *path)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char bytes[6];
    if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        uint64_t bits = (uint64_t)now.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
        for (size_t i = 0; i < sizeof bytes; i++)
            bytes[i] = (unsigned char)(bits >> (8 * i));
    }
    int n = snprintf(name, size, "%s.", path);
    for (size_t i = 0; i < sizeof bytes && (size_t)n + i + 1 < size; i++)
        name[(size_t)n + i] = chars[bytes[i] % (sizeof chars - 1)];
    name[size - 1] = '\0';
}

/*
 * A new file beside path, with the mode path has (or a new file would
 * have). An unnamed one (O_TMPFILE), which goes with the command however
 * it ends, SIGKILL and crashes included, and is named only once whole
 * (name_unnamed); where the file system makes none, a named one (o->temp).
 */
static FILE *open_beside(pk_output *o, const struct stat *existing)
{
    mode_t mask = umask(0);
    umask(mask);
    mode_t mode = existing ? existing->st_mode & 07777 : 0666 & ~mask;
    char *dir = pk_xdirname(file_of(o));
    int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    free(dir);
    o->unnamed = fd >= 0;
    if (!o->unnamed) {
        size_t size = strlen(file_of(o)) + sizeof ".XXXXXX";
        o->temp = pk_xcalloc(size, 1);
        snprintf(o->temp, size, "%s.XXXXXX", file_of(o));
        fd = mkstemp(o->temp);
    }
    FILE *f = NULL;
    if (fd >= 0 && (fchmod(fd, mode) != 0 || !(f = fdopen(fd, "w")))) {
        close(fd);
        if (o->temp)
            unlink(o->temp);
    }
    if (!f) {
        free(o->temp);
        o->temp = NULL;
        o->unnamed = false;
    }
    return f;
}

/*
 * Names the whole unnamed file beside path (o->temp), to be renamed over
 * it: through /proc/self/fd, or, without /proc, AT_EMPTY_PATH (which takes
 * CAP_DAC_READ_SEARCH before Linux 6.10). 0, or -1 with errno set.
 */
static int name_unnamed(pk_output *o)
{
    char fd_path[64];
    snprintf(fd_path, sizeof fd_path, "/proc/self/fd/%d", fileno(o->file));
    size_t size = strlen(file_of(o)) + sizeof ".XXXXXX";
    char *name = pk_xcalloc(size, 1);
    for (int attempt = 0; attempt < 100; attempt++) {
        random_name(name, size, file_of(o));
        if (linkat(AT_FDCWD, fd_path, AT_FDCWD, name, AT_SYMLINK_FOLLOW) == 0 ||
            (errno == ENOENT && linkat(fileno(o->file), "", AT_FDCWD, name, AT_EMPTY_PATH) == 0)) {
            o->temp = name;
            return 0;
        }
        if (errno != EEXIST)
            break;
    }
    int error = errno;
    free(name);
    errno = error;
    return -1;
}

/*
 * A signal that ends the command while a temporary output file is open
 * takes the file with it: its path is kept here for the handler, which
 * removes it and dies of the signal as it would have.
 */
static const int ending_signals[] = {SIGINT, SIGTERM, SIGHUP};
static struct sigaction ending_before[PK_ARRAY_SIZE(ending_signals)];
static const char *volatile temporary;

static void remove_temporary(int sig)
{
    if (temporary)
        unlink(temporary); /* async-signal-safe */
    for (size_t i = 0; i < PK_ARRAY_SIZE(ending_signals); i++)
        sigaction(ending_signals[i], &ending_before[i], NULL);
    raise(sig);
}

static void guard_temporary(const char *path)
{
    struct sigaction sa = {.sa_handler = remove_temporary};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < PK_ARRAY_SIZE(ending_signals); i++)
        sigaddset(&sa.sa_mask, ending_signals[i]);
    temporary = path;
    for (size_t i = 0; i < PK_ARRAY_SIZE(ending_signals); i++) {
        sigaction(ending_signals[i], NULL, &ending_before[i]);
        if (ending_before[i].sa_handler != SIG_IGN) /* under nohup, SIGHUP ends nothing */
            sigaction(ending_signals[i], &sa, NULL);
    }
}

static void unguard_temporary(void)
{
    for (size_t i = 0; i < PK_ARRAY_SIZE(ending_signals); i++)
        sigaction(ending_signals[i], &ending_before[i], NULL);
    temporary = NULL;
}

int pk_output_check(pk_query *q, const char *path, const char *option)
{
    if (!*path) {
        pk_cli_error(q->command->name, "-o '': expected a file, or - for stdout");
        return PK_EXIT_USAGE;
    }
    if (strcmp(path, "-") != 0 && same_file(path, q->path)) {
        pk_cli_error(q->command->name, "-o '%s': that is the database it reads (%s)", path, option);
        return PK_EXIT_USAGE;
    }
    return 0;
}

int pk_output_open(pk_output *o, pk_query *q, const char *path)
{
    o->path = path;
    o->target = NULL;
    o->temp = NULL;
    o->unnamed = false;
    o->file = NULL;
    int status = pk_output_check(q, path, "--db");
    if (status != 0)
        return status;
    if (strcmp(path, "-") == 0) {
        o->file = stdout;
        return 0;
    }
    struct stat st;
    bool exists = lstat(path, &st) == 0;
    /* A link to a regular file: that file is replaced as any is, the link kept. Not
     * /dev/stdout or /dev/fd/N: those lead through /proc to what a descriptor of this
     * process holds (a shell's redirection, written in place as it was opened). */
    if (exists && S_ISLNK(st.st_mode) && strncmp(path, "/dev/", 5) != 0 &&
        strncmp(path, "/proc/", 6) != 0) {
        struct stat linked;
        o->target = realpath(path, NULL);
        if (o->target && stat(o->target, &linked) == 0 && S_ISREG(linked.st_mode)) {
            st = linked;
        } else {
            free(o->target);
            o->target = NULL;
        }
    }
    if (exists && S_ISREG(st.st_mode) && access(file_of(o), W_OK) != 0) {
        /* renaming over it would write what its mode forbids */
        pk_cli_error(q->command->name, "cannot write '%s': %s", path, strerror(errno));
        status = PK_EXIT_FAILURE;
    } else {
        if (!exists || S_ISREG(st.st_mode))
            o->file = open_beside(o, exists ? &st : NULL);
        if (o->temp)
            guard_temporary(o->temp);
        if (!o->file && !(o->file = fopen(path, "w"))) {
            pk_cli_error(q->command->name, "cannot write '%s': %s", path, strerror(errno));
            status = PK_EXIT_FAILURE;
        }
    }
    if (status != 0) {
        free(o->target);
        o->target = NULL;
    }
    return status;
}

/* The rename into the directory of `path` made durable (best effort: some file systems refuse). */
static void sync_directory(const char *path)
{
    char *dir = pk_xdirname(path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int pk_output_close(pk_output *o, pk_query *q, int status)
{
    if (!o->file)
        return status;
    bool to_stdout = o->file == stdout;
    const char *where = to_stdout ? "the output" : o->path;
    if ((fflush(o->file) != 0 || ferror(o->file)) && status == 0)
        status = pk_query_write_failed(q, where);
    /* On the disk before its name is: whole or not at all, across a crash too (a file
     * system that cannot sync says EINVAL or ENOTSUP). */
    bool beside = o->temp || o->unnamed;
    if (beside && status == 0 && fsync(fileno(o->file)) != 0 && errno != EINVAL && errno != ENOTSUP)
        status = pk_query_write_failed(q, where);
    if (o->unnamed && status == 0) {
        if (name_unnamed(o) == 0)
            guard_temporary(o->temp);
        else
            status = pk_query_write_failed(q, where);
    }
    if (!to_stdout && fclose(o->file) != 0 && status == 0)
        status = pk_query_write_failed(q, where);
    if (o->temp) {
        if (status == 0 && rename(o->temp, file_of(o)) != 0)
            status = pk_query_write_failed(q, where);
        if (status == 0)
            sync_directory(file_of(o));
        if (status != 0)
            unlink(o->temp); /* what was at path stays */
        unguard_temporary();
        free(o->temp);
    }
    free(o->target);
    o->file = NULL;
    o->target = NULL;
    o->temp = NULL;
    o->unnamed = false;
    return status;
}

void pk_table_value(pk_table *t, sqlite3_stmt *stmt, int i)
{
    switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER:
        pk_table_int(t, sqlite3_column_int64(stmt, i));
        break;
    case SQLITE_FLOAT:
        pk_table_real(t, sqlite3_column_double(stmt, i));
        break;
    case SQLITE_NULL:
        pk_table_null(t);
        break;
    case SQLITE_BLOB: {
        /* Shown as SQLite writes a blob literal: x'0a1b...'. */
        const unsigned char *bytes = sqlite3_column_blob(stmt, i);
        int n = sqlite3_column_bytes(stmt, i);
        char *hex = malloc((size_t)n * 2 + 4);
        char *p = hex;
        p += sprintf(p, "x'");
        for (int b = 0; b < n; b++)
            p += sprintf(p, "%02x", bytes[b]);
        sprintf(p, "'");
        pk_table_text(t, hex);
        free(hex);
        break;
    }
    default:
        pk_table_text(t, (const char *)sqlite3_column_text(stmt, i));
        break;
    }
}

static pk_column_kind kind_of_value(sqlite3_stmt *stmt, int i)
{
    switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER:
        return PK_COLUMN_INTEGER;
    case SQLITE_FLOAT:
        return PK_COLUMN_REAL;
    default:
        return PK_COLUMN_TEXT;
    }
}

int pk_query_print(pk_query *q, sqlite3_stmt *stmt, const pk_column *columns, size_t count)
{
    int rc = sqlite3_step(stmt);
    pk_column *derived = NULL;
    if (!columns) {
        count = (size_t)sqlite3_column_count(stmt);
        derived = calloc(count ? count : 1, sizeof *derived);
        for (size_t i = 0; i < count; i++) {
            derived[i].name = pk_xstrdup(sqlite3_column_name(stmt, (int)i));
            derived[i].kind = rc == SQLITE_ROW ? kind_of_value(stmt, (int)i) : PK_COLUMN_TEXT;
        }
        columns = derived;
    }
    pk_table *t = pk_table_new(q->out, q->format, columns, count);
    for (; rc == SQLITE_ROW; rc = sqlite3_step(stmt))
        for (size_t i = 0; i < count; i++)
            pk_table_value(t, stmt, (int)i);
    int status = PK_EXIT_OK;
    if (rc != SQLITE_DONE)
        status = pk_query_fail(q);
    if (pk_table_finish(t) != 0 && status == PK_EXIT_OK)
        status = pk_query_write_failed(q, "the output");
    sqlite3_finalize(stmt);
    for (size_t i = 0; derived && i < count; i++)
        free((char *)derived[i].name);
    free(derived);
    return status;
}
