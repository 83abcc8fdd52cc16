/*
 * run.c — `pikoc run`: a thin launcher over the PIKOC_* variables. Every
 * option is checked before the program starts (nothing is created then);
 * libpikoc-preload.so goes into LD_PRELOAD so an instrumented program is
 * traced without relinking; pikoc waits for the program and for the process
 * that drains its run (src/drainer.c), marks the run, and exits with the
 * program's status.
 */
#include "config.h"

#include "cli.h"
#include "clock.h"
#include "hot.h"
#include "internal.h"
#include "store.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PK_PRELOAD_PATH
#error "PK_PRELOAD_PATH must name the installed libpikoc-preload.so"
#endif

#define PRELOAD_NAME "libpikoc-preload.so"
#define DEFAULT_RECORD "sqlite:pikoc.db"
#define MAX_RECORDS 16

static const char help[] =
    "usage: pikoc run [OPTIONS] [--] PROGRAM [ARGS...]\n"
    "\n"
    "Runs PROGRAM with libpikoc-preload.so in LD_PRELOAD, so a dynamically linked\n"
    "program built with -finstrument-functions (and -g, for file and line) is\n"
    "recorded with no relinking (a program linked with libpikoc too: the preloaded\n"
    "copy records it). Processes PROGRAM starts inherit both and record runs of\n"
    "their own: give the instrumented binary itself, not a script.\n"
    "A process of its own (forked as PROGRAM starts) writes the records of a\n"
    "preloaded PROGRAM: when it crashes, calls _exit or is killed, every event\n"
    "before that is recorded. ^C (or SIGTERM, SIGHUP) while pikoc waits for that\n"
    "process after PROGRAM ended says how many runs are still being written; a\n"
    "second one stops it (the run keeps what was committed, marked as PROGRAM\n"
    "ended).\n"
    "\n"
    "options:\n"
    "  --monitor NAME       function, function-memory or alloc (every malloc, free,\n"
    "                       new and delete with its call site), or both kinds:\n"
    "                       function-memory,alloc (default: function-memory)\n"
    "  --record SPEC        where records go; repeatable (default: " DEFAULT_RECORD ",\n"
    "                       a new run appended each time). Kinds: sqlite:PATH,\n"
    "                       csv:PATH, text:PATH, stdout, stderr, zmq:ENDPOINT (to\n"
    "                       pikoc listen), zmq+pub:ENDPOINT (published to pikoc\n"
    "                       listen --subscribe; never waits, drops counted).\n"
    "                       A relative PATH (ipc:// included) is from the directory\n"
    "                       pikoc run starts in, for every process of the program.\n"
    "  --focus NAMES        record only inside these functions (names or globs,\n"
    "                       ','-separated)\n"
    "  --include GLOBS      record only functions matching these globs\n"
    "  --exclude GLOBS      leave out functions matching these globs\n"
    "  --max-depth N        deepest call recorded (0: the outermost calls only)\n"
    "  --min-duration TIME  leave out calls shorter than TIME (500ns, 2us, 1.5ms, 1s)\n"
    "  --sample-interval TIME  with --monitor alloc: RSS and VMS every TIME, as\n"
    "                       records of their own (default 10ms; 0: none)\n"
    "  --stack N            with --monitor alloc: up to N frames per allocation, the\n"
    "                       call site and its callers (default 0: the call site\n"
    "                       only; at most 64)\n"
    "  --no-follow          record PROGRAM only: processes it starts and programs it\n"
    "                       executes run untraced (by default each is a run of its\n"
    "                       own)\n"
    "  -q, --quiet          no summary at the end\n"
    "  -h, --help           this help\n"
    "\n"
    "The exit status is PROGRAM's (128+N when a signal N killed it; the run is then\n"
    "marked killed or crashed in the database, or by the collector of a zmq:ENDPOINT,\n"
    "which is told), 127 when PROGRAM cannot be started,\n"
    "2 for a bad option or a statically linked, setuid or setgid PROGRAM (LD_PRELOAD\n"
    "cannot reach it).\n"
    "PIKOC_FILTER, PIKOC_RING_EVENTS, PIKOC_CLOCK, PIKOC_AT_EXEC,\n"
    "PIKOC_SYMBOL_CACHE, PIKOC_PROFILE and the PIKOC_ZMQ_* settings pass through to\n"
    "the program (a relative PIKOC_SYMBOL_CACHE, or key file in PIKOC_ZMQ_SERVER_KEY\n"
    "or PIKOC_ZMQ_CLIENT_KEY, is taken from the directory pikoc run starts in;\n"
    "PIKOC_FILTER, PIKOC_RING_EVENTS, PIKOC_CLOCK, PIKOC_AT_EXEC and the PIKOC_ZMQ_*\n"
    "settings of a zmq recorder are checked first, a bad one an error of status 2);\n"
    "PIKOC_PRELOAD overrides where libpikoc-preload.so is found.\n"
    "\n"
    "example:\n"
    "  cc -g -finstrument-functions app.c -o app\n"
    "  pikoc run -- ./app input.txt && pikoc top\n";

static int run_main(int argc, char **argv);

const pk_cli_command pk_cmd_run = {
    .name = "run",
    .summary = "run a program, recording its instrumented calls or its allocations",
    .help = help,
    .main = run_main,
};

enum {
    OPT_MONITOR,
    OPT_RECORD,
    OPT_FOCUS,
    OPT_INCLUDE,
    OPT_EXCLUDE,
    OPT_MAX_DEPTH,
    OPT_MIN_DURATION,
    OPT_SAMPLE_INTERVAL,
    OPT_STACK,
    OPT_NO_FOLLOW,
    OPT_QUIET,
};

static const pk_cli_option options[] = {
    [OPT_MONITOR] = {"monitor", 0, "NAME"},
    [OPT_RECORD] = {"record", 0, "SPEC"},
    [OPT_FOCUS] = {"focus", 0, "NAMES"},
    [OPT_INCLUDE] = {"include", 0, "GLOBS"},
    [OPT_EXCLUDE] = {"exclude", 0, "GLOBS"},
    [OPT_MAX_DEPTH] = {"max-depth", 0, "N"},
    [OPT_MIN_DURATION] = {"min-duration", 0, "TIME"},
    [OPT_SAMPLE_INTERVAL] = {"sample-interval", 0, "TIME"},
    [OPT_STACK] = {"stack", 0, "N"},
    [OPT_NO_FOLLOW] = {"no-follow", 0, NULL},
    [OPT_QUIET] = {"quiet", 'q', NULL},
};

/* What the command line asks for, checked, as PIKOC_* values. */
typedef struct run_config {
    const char *monitor;
    const char *records[MAX_RECORDS];
    size_t record_count;
    const char *focus;
    const char *include;
    const char *exclude;
    const char *max_depth;
    const char *min_duration;
    const char *sample_interval;
    const char *stack;
    bool no_follow;
    bool quiet;
    char **program; /* PROGRAM ARGS..., NULL-terminated */
} run_config;

/* ---- checking the options (nothing is created) -------------------------------- */

static int check_monitor(pk_cli_parser *p, const char *name)
{
    if (strchr(name, ',')) {
        pk_error err;
        pk_monitor *m = pk_monitor_new(name, &err);
        if (!m)
            return pk_cli_usage(p, "--monitor: %s", err.message);
        pk_monitor_free(m);
        return 0;
    }
    if (pk_monitor_find(name))
        return 0;
    char known[256];
    pk_monitor_known(known, sizeof known);
    return pk_cli_usage(p, "--monitor '%s': unknown monitor (known: %s)", name, known);
}

/* The spec's syntax, kind and options, without opening anything (no file is created). */
static int check_record(pk_cli_parser *p, const char *spec)
{
    pk_error err;
    if (strchr(spec, ';'))
        return pk_cli_usage(p,
                            "--record '%s': one spec per --record (';' separates specs only "
                            "in PIKOC_RECORD)",
                            spec);
    if (pk_recorder_check_spec(spec, &err) != 0)
        return pk_cli_usage(p, "--record: %s", err.message);
    return 0;
}

/* The recorders that write a file of their own (text:PATH, csv:PATH). */
static bool is_file_spec(const pk_spec *spec)
{
    return spec->arg && (strcmp(spec->kind, "csv") == 0 || strcmp(spec->kind, "text") == 0);
}

/*
 * Where a file recorder writes: a recorder that cannot open leaves the
 * program unrecorded, so what it would refuse stops the run before the
 * program starts. Read only: nothing is created.
 */
static int check_destination(pk_cli_parser *p, const char *spec_text)
{
    pk_spec spec;
    pk_error err;
    if (pk_spec_split("recorder spec", spec_text, &spec, &err) != 0 || !spec.arg)
        return 0; /* stdout, stderr */
    int rc = 0;
    if (strcmp(spec.kind, "sqlite") == 0) {
        rc = pk_store_check_write(spec.arg, &err);
    } else if (is_file_spec(&spec) && pk_file_writable(spec.arg) != 0) {
        rc = pk_fail(&err, "cannot open '%s' for writing: %s", spec.arg, strerror(errno));
    }
    return rc == 0 ? 0 : pk_cli_usage(p, "--record '%s': %s", spec_text, err.message);
}

/* The same recorder twice would record each process twice (two runs in one database). */
static int check_repeat(pk_cli_parser *p, const run_config *cfg, const char *spec)
{
    for (size_t i = 0; i < cfg->record_count; i++)
        if (strcmp(cfg->records[i], spec) == 0)
            return pk_cli_usage(p, "--record '%s' given twice", spec);
    return 0;
}

/* Globs are checked by building the filter they become, which has no side effects. */
static int check_filter(pk_cli_parser *p, const char *option, const char *kind, const char *arg)
{
    char *spec = pk_spec_join(kind, arg);
    pk_error err;
    pk_filter *f = pk_filter_open(spec, &err);
    free(spec);
    if (!f)
        return pk_cli_usage(p, "%s '%.*s%s': %s", option, PK_QUOTE(arg), err.message);
    pk_filter_free(f);
    return 0;
}

/* The names and globs of --focus, split as the monitor will split them. */
static int check_focus(pk_cli_parser *p, const char *names)
{
    pk_items items;
    pk_error err;
    if (pk_focus_parse(names, &items, &err) != 0)
        return pk_cli_usage(p, "--%s", err.message);
    pk_items_free(&items);
    return 0;
}

/*
 * The settings that pass through to the program, checked as its pikoc
 * will read them: there a bad one is a warning in every process, here it
 * stops the run before the program starts.
 */
static int check_settings(void)
{
    pk_error err;
    const char *ring = pk_setting("PIKOC_RING_EVENTS"), *clock = pk_setting("PIKOC_CLOCK"),
               *at_exec = pk_setting("PIKOC_AT_EXEC"), *filters = pk_setting("PIKOC_FILTER");
    uint64_t events;
    bool monotonic, ends;
    if ((ring && pk_ring_events_parse(ring, &events, &err) != 0) ||
        (clock && pk_clock_parse(clock, &monotonic, &err) != 0) ||
        (at_exec && pk_at_exec_parse(at_exec, &ends, &err) != 0) ||
        (filters && pk_env_check_filters(filters, &err) != 0)) {
        pk_cli_error("run", "%s", err.message);
        return PK_EXIT_USAGE;
    }
    return 0;
}

static int parse_options(int argc, char **argv, run_config *cfg, int *status)
{
    pk_cli_parser p;
    pk_cli_begin(&p, &pk_cmd_run, options, PK_ARRAY_SIZE(options), argc, argv);
    p.repeatable = 1u << OPT_RECORD;
    p.stop_at_operand = true;
    cfg->monitor = "function-memory";
    const char *value;
    uint64_t number;
    for (int o; (o = pk_cli_next(&p, &value)) != PK_CLI_END;) {
        int bad = 0;
        switch (o) {
        case PK_CLI_EXIT:
            *status = p.status;
            return -1;
        case OPT_MONITOR:
            bad = check_monitor(&p, value);
            cfg->monitor = value;
            break;
        case OPT_RECORD:
            if (cfg->record_count == MAX_RECORDS)
                bad = pk_cli_usage(&p, "--record: at most %d recorders", MAX_RECORDS);
            else if ((bad = check_record(&p, value)) == 0)
                bad = check_repeat(&p, cfg, value);
            if (!bad)
                cfg->records[cfg->record_count++] = value;
            break;
        case OPT_FOCUS:
            bad = check_focus(&p, value);
            cfg->focus = value;
            break;
        case OPT_INCLUDE:
            bad = check_filter(&p, "--include", "include", value);
            cfg->include = value;
            break;
        case OPT_EXCLUDE:
            bad = check_filter(&p, "--exclude", "exclude", value);
            cfg->exclude = value;
            break;
        case OPT_MAX_DEPTH:
            bad = pk_cli_uint(&p, "--max-depth", value, &number) ? PK_EXIT_USAGE : 0;
            cfg->max_depth = value;
            break;
        case OPT_MIN_DURATION:
            bad = pk_cli_duration(&p, "--min-duration", value, &number) ? PK_EXIT_USAGE : 0;
            cfg->min_duration = value;
            break;
        case OPT_SAMPLE_INTERVAL:
            bad = pk_cli_duration(&p, "--sample-interval", value, &number) ? PK_EXIT_USAGE : 0;
            cfg->sample_interval = value;
            break;
        case OPT_STACK: {
            pk_error err;
            uint32_t depth;
            if (pk_alloc_parse_stack("--stack", value, &depth, &err) != 0)
                bad = pk_cli_usage(&p, "%s", err.message);
            cfg->stack = value;
            break;
        }
        case OPT_NO_FOLLOW:
            cfg->no_follow = true;
            break;
        case OPT_QUIET:
            cfg->quiet = true;
            break;
        }
        if (bad) {
            *status = PK_EXIT_USAGE;
            return -1;
        }
    }
    if (p.next >= argc) {
        *status = pk_cli_usage(&p, "no program to run (usage: pikoc run [OPTIONS] -- PROGRAM "
                                   "[ARGS...])");
        return -1;
    }
    if (cfg->record_count == 0)
        cfg->records[cfg->record_count++] = DEFAULT_RECORD;
    for (size_t i = 0; i < cfg->record_count; i++)
        if ((*status = check_destination(&p, cfg->records[i])) != 0)
            return -1;
    cfg->program = argv + p.next;
    if ((*status = check_settings()) != 0)
        return -1;
    return 0;
}

/* ---- the program ------------------------------------------------------------------- */

/* What execvp would run: NAME itself when it holds a '/', else the first hit on PATH. */
static int find_program(const char *name, char *path, size_t size)
{
    if (strchr(name, '/')) {
        if ((size_t)snprintf(path, size, "%s", name) >= size)
            return ENAMETOOLONG;
        return access(path, X_OK) == 0 ? 0 : errno;
    }
    const char *search = getenv("PATH");
    if (!search || !*search)
        search = "/bin:/usr/bin";
    int found_error = ENOENT;
    for (const char *dir = search; dir; dir = strchr(dir, ':') ? strchr(dir, ':') + 1 : NULL) {
        size_t length = strcspn(dir, ":");
        struct stat st;
        if ((size_t)snprintf(path, size, "%.*s%s%s", (int)length, dir, length ? "/" : "", name) >=
                size ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (access(path, X_OK) == 0)
            return 0;
        found_error = EACCES;
    }
    return found_error;
}

/* What the ELF file says about how it is loaded. */
typedef struct elf_facts {
    bool elf;            /* an ELF file (a script is not) */
    bool interpreter;    /* PT_INTERP: the dynamic loader runs it */
    char needed[32][64]; /* DT_NEEDED sonames */
    size_t needed_count;
} elf_facts;

static int read_elf(const char *path, elf_facts *facts)
{
    memset(facts, 0, sizeof *facts);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    elf_version(EV_CURRENT);
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    if (elf && elf_kind(elf) == ELF_K_ELF) {
        facts->elf = true;
        size_t phnum = 0;
        elf_getphdrnum(elf, &phnum);
        for (size_t i = 0; i < phnum; i++) {
            GElf_Phdr phdr;
            if (gelf_getphdr(elf, (int)i, &phdr) && phdr.p_type == PT_INTERP)
                facts->interpreter = true;
        }
        for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn));) {
            GElf_Shdr shdr;
            if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_DYNAMIC)
                continue;
            Elf_Data *data = elf_getdata(scn, NULL);
            for (size_t i = 0; data && shdr.sh_entsize && i < shdr.sh_size / shdr.sh_entsize; i++) {
                GElf_Dyn dyn;
                if (!gelf_getdyn(data, (int)i, &dyn) || dyn.d_tag != DT_NEEDED)
                    continue;
                const char *name = elf_strptr(elf, shdr.sh_link, dyn.d_un.d_val);
                if (name && facts->needed_count < PK_ARRAY_SIZE(facts->needed))
                    snprintf(facts->needed[facts->needed_count++], sizeof facts->needed[0], "%s",
                             name);
            }
        }
    }
    elf_end(elf);
    close(fd);
    return 0;
}

/*
 * "setuid" or "setgid" when running the file changes this process's user or
 * group: the loader then runs it in secure mode, and LD_PRELOAD is ignored.
 */
static const char *secure_execution(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return NULL;
    if ((st.st_mode & S_ISUID) && st.st_uid != geteuid())
        return "setuid";
    if ((st.st_mode & S_ISGID) && st.st_gid != getegid())
        return "setgid";
    return NULL;
}

/* ---- the preload library --------------------------------------------------------------- */

static bool readable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

/*
 * PIKOC_PRELOAD when set (resolved: the loader would take a relative path
 * from the directory of each program the program executes); else beside
 * this binary in a build tree (libtool keeps the library in .libs/); else
 * where `make install` put it.
 */
static int find_preload(char *path, size_t size)
{
    const char *override = pk_setting("PIKOC_PRELOAD");
    if (override) {
        char resolved[PATH_MAX];
        errno = 0;
        if ((size_t)snprintf(path, size, "%s",
                             realpath(override, resolved) ? resolved : override) >= size)
            errno = ENAMETOOLONG;
        else if (readable_file(path))
            return 0;
        pk_cli_error("run", "PIKOC_PRELOAD '%s': %s", override, strerror(errno ? errno : ENOENT));
        return -1;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        *slash = '\0';
        static const char *const beside[] = {"/.libs/" PRELOAD_NAME, "/" PRELOAD_NAME};
        for (size_t i = 0; i < PK_ARRAY_SIZE(beside); i++) {
            if ((size_t)snprintf(path, size, "%s%s", self, beside[i]) < size && readable_file(path))
                return 0;
        }
    }
    snprintf(path, size, "%s", PK_PRELOAD_PATH);
    if (readable_file(path))
        return 0;
    pk_cli_error("run", "cannot find %s (looked beside %s and in %s; PIKOC_PRELOAD names another)",
                 PRELOAD_NAME, n > 0 ? self : "pikoc", PK_PRELOAD_PATH);
    return -1;
}

/*
 * LD_PRELOAD for the program: a sanitizer runtime the preload library needs
 * must come first; then what the user preloads; then ours; then jemalloc
 * (found at configure time), preloaded so that it IS the allocator: behind
 * our interposer, and the source of the per-thread allocation counters.
 */
static char *preload_list(const char *preload)
{
    elf_facts facts;
    read_elf(preload, &facts);
    const char *user = getenv("LD_PRELOAD");
    size_t size = strlen(preload) + strlen(PK_JEMALLOC_PATH) + (user ? strlen(user) : 0) + 8;
    for (size_t i = 0; i < facts.needed_count; i++)
        size += strlen(facts.needed[i]) + 1;
    char *list = pk_xcalloc(size, 1);
    for (size_t i = 0; i < facts.needed_count; i++)
        if (strncmp(facts.needed[i], "libasan.", 8) == 0)
            strcat(strcat(list, facts.needed[i]), " ");
    if (user && *user)
        strcat(strcat(list, user), " ");
    strcat(list, preload);
    if (readable_file(PK_JEMALLOC_PATH))
        strcat(strcat(list, " "), PK_JEMALLOC_PATH);
    return list;
}

/* ---- the environment the program runs in --------------------------------------------- */

static void set_or_unset(const char *name, const char *value)
{
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
}

/*
 * Paths the program's processes are given are made absolute: a process
 * the program executes after changing directory would otherwise take a
 * relative one from its own working directory (its records in another
 * database, the symbol cache scattered). `prefix` bytes of text stay as
 * they are; NULL when the rest is not a relative path.
 */
static char *absolute(const char *text, size_t prefix, const char *cwd)
{
    const char *path = text + prefix;
    if (!cwd || !*path || *path == '/')
        return NULL;
    char *out = pk_xcalloc(strlen(text) + strlen(cwd) + 2, 1);
    sprintf(out, "%.*s%s/%s", (int)prefix, text, cwd, path);
    return out;
}

/* The longest path of an ipc:// endpoint (a sockaddr_un's sun_path, its NUL left out). */
#define IPC_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/*
 * A recorder spec's path made absolute: a file's, or an ipc:// endpoint's
 * when it still fits a socket address (a relative one that fits where the
 * absolute would not is left as it is); other endpoints are no paths.
 */
static const char *absolute_record(const char *text, const char *cwd)
{
    pk_spec spec;
    pk_error err;
    if (pk_spec_split("recorder spec", text, &spec, &err) != 0 || !spec.arg)
        return text;
    size_t prefix = (size_t)(spec.arg - text);
    bool ipc = strcmp(spec.kind, "zmq") == 0;
    if (ipc) {
        if (strncmp(spec.arg, "ipc://", 6) != 0)
            return text;
        prefix += 6;
    }
    char *made = absolute(text, prefix, cwd);
    if (made && ipc && strlen(made + prefix) > IPC_PATH_MAX) {
        free(made);
        made = NULL;
    }
    return made ? made : text;
}

static void absolute_symbol_cache(const char *cwd)
{
    const char *dir = getenv("PIKOC_SYMBOL_CACHE");
    char *made = dir && strcmp(dir, "off") != 0 ? absolute(dir, 0, cwd) : NULL;
    if (made)
        setenv("PIKOC_SYMBOL_CACHE", made, 1);
}

/*
 * A CURVE key given as a file here (the recorder reads a file before it
 * takes the text for a key): its absolute path, for a program that
 * changes directory before it executes another.
 */
static void absolute_key_file(const char *variable, const char *cwd)
{
    const char *value = getenv(variable);
    char *made = value && access(value, F_OK) == 0 ? absolute(value, 0, cwd) : NULL;
    if (made)
        setenv(variable, made, 1);
}

/* In the child, before exec. */
static void set_environment(const run_config *cfg, const char *preload)
{
    char cwd_buf[PATH_MAX];
    const char *cwd = getcwd(cwd_buf, sizeof cwd_buf);
    /* ';' separates PIKOC_RECORD's specs: under a directory whose name
     * holds one, recorder paths stay relative rather than split in two. */
    const char *record_cwd = cwd && strchr(cwd, ';') ? NULL : cwd;
    const char *records[MAX_RECORDS];
    size_t size = 1;
    for (size_t i = 0; i < cfg->record_count; i++) {
        records[i] = absolute_record(cfg->records[i], record_cwd);
        size += strlen(records[i]) + 1;
    }
    char *record = pk_xcalloc(size, 1);
    for (size_t i = 0; i < cfg->record_count; i++)
        strcat(strcat(record, i ? ";" : ""), records[i]);
    setenv("PIKOC_RECORD", record, 1);
    setenv("PIKOC_MONITOR", cfg->monitor, 1);
    set_or_unset("PIKOC_FOCUS", cfg->focus);
    set_or_unset("PIKOC_INCLUDE", cfg->include);
    set_or_unset("PIKOC_EXCLUDE", cfg->exclude);
    set_or_unset("PIKOC_MAX_DEPTH", cfg->max_depth);
    set_or_unset("PIKOC_MIN_DURATION", cfg->min_duration);
    set_or_unset("PIKOC_SAMPLE_INTERVAL", cfg->sample_interval);
    set_or_unset("PIKOC_STACK", cfg->stack);
    set_or_unset("PIKOC_FOLLOW", cfg->no_follow ? "no" : NULL);
    set_or_unset("PIKOC_USER_PRELOAD", cfg->no_follow ? getenv("LD_PRELOAD") : NULL);
    absolute_symbol_cache(cwd);
    absolute_key_file("PIKOC_ZMQ_SERVER_KEY", cwd);
    absolute_key_file("PIKOC_ZMQ_CLIENT_KEY", cwd);
    setenv("LD_PRELOAD", preload, 1);
}

/* ---- running it ------------------------------------------------------------------------ */

/*
 * The preloaded program's runs are drained by processes of their own, which
 * outlive it (src/drainer.c). The first one holds the write end of this
 * pipe: its end of file says the program's run is written, whatever ended
 * the program. In the child, before exec; the variable names the pipe by
 * descriptor and inode, so that a reused descriptor is never mistaken for it.
 */
static void hand_over_pipe(int pipe_end)
{
    struct stat st;
    char value[64];
    if (fcntl(pipe_end, F_SETFD, 0) != 0 || fstat(pipe_end, &st) != 0)
        return;
    snprintf(value, sizeof value, "%d:%llu", pipe_end, (unsigned long long)st.st_ino);
    setenv("PIKOC_LAUNCHER_PIPE", value, 1);
}

#define MAX_DRAINERS 16 /* drainers holding the pipe that pikoc run can stop */

/* The drainers that said their pid on the pipe (pidfds), and how many are still there. */
typedef struct drainers {
    int pidfds[MAX_DRAINERS];
    size_t count;
} drainers;

static void add_drainers(drainers *d, const pid_t *pids, size_t count)
{
    for (size_t i = 0; i < count && d->count < MAX_DRAINERS; i++) {
        int pidfd = (int)syscall(SYS_pidfd_open, pids[i], 0);
        if (pidfd >= 0)
            d->pidfds[d->count++] = pidfd;
    }
}

static size_t drainers_left(const drainers *d)
{
    size_t left = 0;
    for (size_t i = 0; i < d->count; i++) {
        struct pollfd gone = {.fd = d->pidfds[i], .events = POLLIN};
        left += poll(&gone, 1, 0) == 0;
    }
    return left;
}

/* A second stop request: the runs keep what was committed; pikoc run marks them. */
static void stop_drainers(drainers *d)
{
    size_t left = drainers_left(d);
    for (size_t i = 0; i < d->count; i++)
        syscall(SYS_pidfd_send_signal, d->pidfds[i], SIGKILL, NULL, 0);
    fprintf(stderr, "pikoc run: stopped writing %zu run%s\n", left, left == 1 ? "" : "s");
}

static volatile sig_atomic_t stop_requests;

static void count_stop_request(int sig)
{
    (void)sig;
    stop_requests++;
}

/*
 * Until every holder of the pipe's write end has closed it; each drainer
 * sends its pid there as it starts. ^C, SIGTERM or SIGHUP meanwhile: the
 * first says how many runs are still being written, the second stops their
 * drainers. The three signals are blocked but inside ppoll, so that none
 * arrives unseen between two waits.
 */
static void wait_for_drainers(int pipe_start)
{
    drainers d = {.count = 0};
    struct sigaction count = {.sa_handler = count_stop_request};
    sigset_t requests, old_mask;
    sigemptyset(&requests);
    sigaddset(&requests, SIGINT);
    sigaddset(&requests, SIGTERM);
    sigaddset(&requests, SIGHUP);
    sigprocmask(SIG_BLOCK, &requests, &old_mask);
    sigset_t waiting = old_mask;
    sigdelset(&waiting, SIGINT);
    sigdelset(&waiting, SIGTERM);
    sigdelset(&waiting, SIGHUP);
    sigaction(SIGINT, &count, NULL);
    sigaction(SIGTERM, &count, NULL);
    sigaction(SIGHUP, &count, NULL);
    stop_requests = 0;
    for (sig_atomic_t handled = 0;;) {
        struct pollfd readable = {.fd = pipe_start, .events = POLLIN};
        int ready = ppoll(&readable, 1, NULL, &waiting);
        if (ready < 0 && errno != EINTR)
            break;
        if (ready > 0) {
            pid_t pids[MAX_DRAINERS];
            ssize_t got = read(pipe_start, pids, sizeof pids);
            if (got <= 0)
                break;
            add_drainers(&d, pids, (size_t)got / sizeof *pids);
        }
        if (stop_requests == handled)
            continue;
        handled = stop_requests;
        size_t left = drainers_left(&d);
        if (handled == 1)
            fprintf(stderr,
                    "pikoc run: %zu run%s still being written (^C again to stop: %s what "
                    "was committed)\n",
                    left, left == 1 ? "" : "s", left == 1 ? "it keeps" : "they keep");
        else if (handled == 2)
            stop_drainers(&d);
    }
    for (size_t i = 0; i < d.count; i++)
        close(d.pidfds[i]);
    close(pipe_start);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
}

static volatile sig_atomic_t child_pid;

/* A termination request for pikoc is passed on: the program decides how to end. */
static void forward_signal(int sig)
{
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
}

/*
 * Starts the program and waits for it. Returns its wait status, or -1 when
 * it could not be started (the error is then in *exec_error).
 */
static int start_and_wait(const run_config *cfg, const char *path, const char *preload,
                          pid_t *pid_out, int *exec_error)
{
    int report[2], drained[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        *exec_error = errno;
        return -1;
    }
    if (pipe2(drained, O_CLOEXEC) != 0) {
        close(report[0]);
        close(report[1]);
        *exec_error = errno;
        return -1;
    }
    /* The terminal's ^C and ^\ reach the program too: pikoc outlives it to report. */
    struct sigaction ignore = {.sa_handler = SIG_IGN}, forward = {.sa_handler = forward_signal};
    struct sigaction old_int, old_quit, old_term, old_hup;
    sigaction(SIGINT, &ignore, &old_int);
    sigaction(SIGQUIT, &ignore, &old_quit);
    sigaction(SIGTERM, &forward, &old_term);
    sigaction(SIGHUP, &forward, &old_hup);
    /* Held until the child's pid is known, so that none arrives with nowhere to go. */
    sigset_t held, old_mask;
    sigemptyset(&held);
    sigaddset(&held, SIGTERM);
    sigaddset(&held, SIGHUP);
    sigprocmask(SIG_BLOCK, &held, &old_mask);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        sigaction(SIGHUP, &old_hup, NULL);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        close(report[0]);
        set_environment(cfg, preload);
        hand_over_pipe(drained[1]);
        execv(path, cfg->program);
        int e = errno;
        ssize_t w = write(report[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(report[1]);
    close(drained[1]);
    if (pid < 0) {
        *exec_error = errno;
        close(report[0]);
        close(drained[0]);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        return -1;
    }
    child_pid = pid;
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    *pid_out = pid;
    int e = 0;
    ssize_t got;
    do
        got = read(report[0], &e, sizeof e);
    while (got < 0 && errno == EINTR);
    close(report[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    child_pid = 0;
    wait_for_drainers(drained[0]);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    if (got == (ssize_t)sizeof e) {
        *exec_error = e;
        return -1;
    }
    return status;
}

/* ---- the end: mark the run, say where it went ------------------------------------------ */

/* Killed from outside, or a signal the program raised itself (docs/schema.md, runs.status). */
static const char *status_for_signal(int sig)
{
    return sig == SIGKILL || sig == SIGTERM || sig == SIGINT || sig == SIGHUP ? "killed"
                                                                              : "crashed";
}

/* Prints one run's line of the summary, and the next command to try after the first. */
static void summarize(const char *spec, const char *path, int64_t run_id, int64_t started_ns,
                      bool *shown_next)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    pk_error err;
    if (pk_store_open_read(path, &db, &err) != 0) {
        pk_cli_error("run", "%s", err.message);
        return;
    }
    /* The run; whether it is the latest; runs of processes the program started. */
    if (sqlite3_prepare_v2(db,
                           "SELECT status, events, calls, signal,"
                           " id = (SELECT max(id) FROM runs),"
                           " (SELECT count(*) FROM runs WHERE start_ns >= ?2 AND id != ?1),"
                           " (SELECT allocations FROM alloc_runs WHERE run_id = ?1)"
                           " FROM runs WHERE id = ?1",
                           -1, &stmt, NULL) != SQLITE_OK) {
        pk_store_fail(&err, db, path);
        pk_cli_error("run", "%s", err.message);
        sqlite3_close(db);
        return;
    }
    sqlite3_bind_int64(stmt, 1, run_id);
    sqlite3_bind_int64(stmt, 2, started_ns);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        pk_store_fail(&err, db, path);
        pk_cli_error("run", "%s", err.message);
    } else if (rc == SQLITE_ROW) {
        const char *status = (const char *)sqlite3_column_text(stmt, 0);
        long long calls = sqlite3_column_int64(stmt, 2);
        long long others = sqlite3_column_int64(stmt, 5);
        bool allocating = sqlite3_column_type(stmt, 6) != SQLITE_NULL;
        long long allocations = sqlite3_column_int64(stmt, 6);
        char how[32] = "", more[96] = "", counted[64] = "";
        if (sqlite3_column_type(stmt, 3) != SQLITE_NULL) {
            const char *abbrev = sigabbrev_np(sqlite3_column_int(stmt, 3));
            snprintf(how, sizeof how, " (SIG%s)", abbrev ? abbrev : "?");
        }
        if (others > 0)
            snprintf(more, sizeof more, "; %lld more run%s from processes it started", others,
                     others == 1 ? "" : "s");
        if (allocating)
            snprintf(counted, sizeof counted, ", %lld allocations", allocations);
        fprintf(stderr, "pikoc run: run %lld %s%s: %lld events, %lld calls%s -> %s%s\n",
                (long long)run_id, status, how, sqlite3_column_int64(stmt, 1), calls, counted, spec,
                more);
        if (calls == 0 && !allocating && strcmp(status, "complete") == 0) {
            fprintf(stderr, "pikoc run: no calls were recorded: is the program built with "
                            "-finstrument-functions?\n");
        } else if ((calls > 0 || allocating || others > 0) && !*shown_next) {
            char where[PATH_MAX + 8] = "", which[32] = "";
            if (strcmp(path, "pikoc.db") != 0)
                snprintf(where, sizeof where, " --db %s", path);
            if (sqlite3_column_int(stmt, 4) == 0)
                snprintf(which, sizeof which, " --run %lld", (long long)run_id);
            if (allocating)
                fprintf(stderr,
                        "pikoc run: next: pikoc leaks%s%s (also: peak, top --by bytes, "
                        "histogram)\n",
                        where, which);
            else if (calls > 0)
                fprintf(stderr, "pikoc run: next: pikoc top%s%s (also: tree, events, spikes)\n",
                        where, which);
            else
                fprintf(stderr, "pikoc run: next: pikoc runs%s\n", where);
            *shown_next = true;
        }
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

/* A collector marks the run as pk_store_mark_run does a database (a zmq+pub: publisher's
 * subscribers are not told). */
static bool report_exit(const pk_spec *spec, pid_t pid, int64_t started_ns, const char *status,
                        int sig, int exit_status)
{
    for (size_t i = 0; i < spec->option_count; i++)
        if (strcmp(spec->options[i], "pub") == 0)
            return true;
    pk_wire_exit x = {.host = pk_host_name(),
                      .pid = (uint64_t)pid,
                      .started_after_ns = (uint64_t)started_ns,
                      .status = status,
                      .signal = sig > 0 ? (uint64_t)sig : 0,
                      .exit_status = exit_status >= 0 ? (uint64_t)exit_status : 0};
    pk_error err;
    if (pk_zmq_report_exit(spec->arg, &x, &err) == 0)
        return true;
    pk_cli_error("run", "%s", err.message);
    return false;
}

/*
 * A file recorder's path as it was before the program ran. A regular file
 * the program left as it was (the same inode, change time and size) was not
 * written by this run: a recorder opens its file with O_TRUNC, which sets
 * the change time even when the size stays.
 */
typedef struct file_before {
    bool regular;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec ctime;
} file_before;

static void note_files(const run_config *cfg, file_before before[])
{
    for (size_t i = 0; i < cfg->record_count; i++) {
        pk_spec spec;
        pk_error err;
        struct stat st;
        before[i] = (file_before){.regular = false};
        if (pk_spec_split("recorder spec", cfg->records[i], &spec, &err) == 0 &&
            is_file_spec(&spec) && stat(spec.arg, &st) == 0 && S_ISREG(st.st_mode))
            before[i] = (file_before){.regular = true,
                                      .dev = st.st_dev,
                                      .ino = st.st_ino,
                                      .size = st.st_size,
                                      .ctime = st.st_ctim};
    }
}

static bool later(struct timespec a, struct timespec b)
{
    return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

/*
 * A file changed in the current tick of the coarse clock that stamps files
 * (kernels without fine-grained timestamps) could be written again by the
 * program with the same change time: the program starts in a later tick.
 * At most 50 ms (a change time in the future is not waited for).
 */
static void wait_past_changes(const run_config *cfg, const file_before before[])
{
    struct timespec latest = {0, 0};
    for (size_t i = 0; i < cfg->record_count; i++)
        if (before[i].regular && later(before[i].ctime, latest))
            latest = before[i].ctime;
    for (int waited = 0; waited < 50; waited++) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME_COARSE, &now);
        if (later(now, latest))
            return;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
}

static bool left_as_it_was(const file_before *before, const struct stat *st)
{
    return before->regular && S_ISREG(st->st_mode) && st->st_dev == before->dev &&
           st->st_ino == before->ino && st->st_size == before->size &&
           st->st_ctim.tv_sec == before->ctime.tv_sec &&
           st->st_ctim.tv_nsec == before->ctime.tv_nsec;
}

/* Whether a file recorder wrote its path in this run; says why not when it did not. */
static bool file_written(const char *path, const file_before *before)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        pk_cli_error("run", "nothing recorded: %s: %s", path, strerror(errno));
        return false;
    }
    if (left_as_it_was(before, &st)) {
        pk_cli_error("run", "nothing recorded: %s: not written in this run", path);
        return false;
    }
    return true;
}

/*
 * Marks the program's run in each sqlite database and through each
 * collector (a run still "running" after its program ended becomes killed,
 * crashed or incomplete) and prints the summary: run id, events, calls,
 * where they went, what to try next.
 */
static void finish_runs(const run_config *cfg, const file_before before[], pid_t pid,
                        int64_t started_ns, int wait_status)
{
    int sig = WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : -1;
    int exit_status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
    const char *status = sig > 0 ? status_for_signal(sig) : "incomplete";
    bool shown_next = false;
    for (size_t i = 0; i < cfg->record_count; i++) {
        pk_spec spec;
        pk_error err;
        bool split = pk_spec_split("recorder spec", cfg->records[i], &spec, &err) == 0;
        if (!split || strcmp(spec.kind, "sqlite") != 0) {
            /* a collector that was not there, a file never made or not written: no
             * "records ->" */
            bool went = true;
            if (split && strcmp(spec.kind, "zmq") == 0)
                went = report_exit(&spec, pid, started_ns, status, sig, exit_status);
            else if (split && is_file_spec(&spec))
                went = file_written(spec.arg, &before[i]);
            if (went && !cfg->quiet)
                fprintf(stderr, "pikoc run: records -> %s\n", cfg->records[i]);
            continue;
        }
        int64_t run_id = 0;
        if (pk_store_mark_run(spec.arg, (int)pid, started_ns, status, sig, exit_status, &run_id,
                              &err) != 0)
            pk_cli_error("run", "nothing recorded: %s", err.message);
        else if (!cfg->quiet)
            summarize(cfg->records[i], spec.arg, run_id, started_ns, &shown_next);
    }
}

static int64_t wall_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int run_main(int argc, char **argv)
{
    run_config cfg = {0};
    int status = 0;
    if (parse_options(argc, argv, &cfg, &status) != 0)
        return status;

    const char *name = cfg.program[0];
    char path[PATH_MAX];
    int error = find_program(name, path, sizeof path);
    if (error) {
        pk_cli_error("run", "cannot run '%s': %s", name, strerror(error));
        return 127;
    }
    elf_facts facts;
    if (read_elf(path, &facts) != 0) {
        pk_cli_error("run", "cannot run '%s': %s", name, strerror(errno));
        return 127;
    }
    if (facts.elf && !facts.interpreter) {
        pk_cli_error("run",
                     "'%s' is statically linked: LD_PRELOAD cannot reach it (link it "
                     "dynamically)",
                     name);
        return PK_EXIT_USAGE;
    }
    const char *secure = secure_execution(path);
    if (secure) {
        pk_cli_error("run",
                     "'%s' is %s: the loader ignores LD_PRELOAD for it (run a copy without "
                     "the %s bit)",
                     name, secure, secure);
        return PK_EXIT_USAGE;
    }
    /* A program linked with libpikoc too: the preloaded copy serves it (env.c). */
    char library[PATH_MAX];
    if (find_preload(library, sizeof library) != 0)
        return PK_EXIT_FAILURE;
    char *preload = preload_list(library);

    pid_t pid = 0;
    int exec_error = 0;
    file_before before[MAX_RECORDS];
    note_files(&cfg, before);
    wait_past_changes(&cfg, before);
    int64_t started_ns = wall_clock_ns(); /* the program's run starts after this */
    int wait_status = start_and_wait(&cfg, path, preload, &pid, &exec_error);
    free(preload);
    if (wait_status < 0) {
        pk_cli_error("run", "cannot run '%s': %s", name, strerror(exec_error));
        return 127;
    }
    finish_runs(&cfg, before, pid, started_ns, wait_status);
    if (WIFSIGNALED(wait_status))
        return 128 + WTERMSIG(wait_status);
    return WEXITSTATUS(wait_status);
}
