/*
 * test_recorders.c — the built-in recorders (stdout, stderr, text, csv,
 * list; zmq's end after an exec): exact output lines, spec errors, write
 * errors and auto-flush.
 * Each test writes to its own mkstemp file and reads it back whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "records.h"

/* Rules are long runs of dashes; tens keep them countable. */
#define DASH10 "----------"

/* ---- helpers ----------------------------------------------------------------- */

typedef struct temp_file {
    char path[512];
} temp_file;

/* Setup and teardown: the file is removed even when an assertion fails. */
static int temp_file_make(void **state)
{
    temp_file *t = calloc(1, sizeof *t);
    const char *dir = getenv("TMPDIR");
    if (!t)
        return -1;
    snprintf(t->path, sizeof t->path, "%s/pikoc-recorders-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(t->path);
    if (fd < 0) {
        free(t);
        return -1;
    }
    close(fd);
    *state = t;
    return 0;
}

static int temp_file_remove(void **state)
{
    temp_file *t = *state;
    unlink(t->path);
    free(t);
    return 0;
}

/* The whole file as a string (caller frees). */
static char *read_whole(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *text = calloc(1, 1 << 20);
    assert_non_null(text);
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void assert_file_is(const char *path, const char *expected)
{
    char *text = read_whole(path);
    assert_string_equal(text, expected);
    free(text);
}

static pk_run_info run_with(unsigned flags)
{
    pk_run_info run = {.monitor = "function",
                       .flags = flags,
                       .clock = "monotonic",
                       .alloc_source = "jemalloc",
                       .command_line = "demo",
                       .host = "host",
                       .pid = 1};
    return run;
}

static pk_logger *logger_for(const char *spec)
{
    pk_error err = {{0}};
    pk_recorder *r = pk_recorder_open(spec, &err);
    if (!r)
        fail_msg("%s", err.message);
    return pk_logger_new(r);
}

/* Opens "KIND:<temp path>", runs the records through it and ends the run. */
static void record_to_file(const char *kind, const temp_file *t, unsigned run_flags,
                           const pk_record *records, size_t n)
{
    char spec[600];
    snprintf(spec, sizeof spec, "%s:%s", kind, t->path);
    pk_logger *lg = logger_for(spec);
    pk_run_info run = run_with(run_flags);
    assert_int_equal(pk_logger_start(lg, &run), 0);
    for (size_t i = 0; i < n; i++)
        pk_logger_push(lg, &records[i]);
    pk_run_totals totals = {0};
    assert_int_equal(pk_logger_finish(lg, &totals), 0);
    assert_null(pk_logger_error(lg));
    pk_logger_free(lg);
}

/* A call of compute at time 1500 and its return 8000 ns later, both from main:100. */
static void compute_call_and_return(pk_record out[2], unsigned flags)
{
    out[0] = test_record(0, PK_EVENT_CALL, "compute", 0, 1500);
    out[1] = test_record(1, PK_EVENT_RETURN, "compute", 0, 9500);
    out[1].duration_ns = 8000;
    out[1].line = 10;
    out[1].caller_line = 100;
    out[0].flags = out[1].flags = flags;
}

/* ---- text ---------------------------------------------------------------------- */

#define PLAIN_HEADER                                                                               \
    "   index type       function                       label                depth  thread       " \
    "time_ns  "                                                                                    \
    "duration_ns caller               caller_line   line file\n"
#define PLAIN_RULE                                                                                 \
    DASH10 DASH10 DASH10 DASH10 DASH10 DASH10 DASH10 DASH10 DASH10 DASH10 DASH10 DASH10 DASH10     \
        "---------------------------\n"

static void text_without_measures_shows_time_columns_only(void **state)
{
    const temp_file *t = *state;
    pk_record recs[2];
    compute_call_and_return(recs, 0);
    record_to_file("text", t, 0, recs, 2);
    assert_file_is(t->path, PLAIN_HEADER PLAIN_RULE
                   "       0 call       compute                        -                        0  "
                   "  4242          1500  "
                   "          - main                         100     10 demo.c\n"
                   "       1 return     compute                        -                        0  "
                   "  4242          9500  "
                   "       8000 main                         100     10 demo.c\n");
}

static void text_with_memory_and_alloc_adds_their_columns(void **state)
{
    const temp_file *t = *state;
    pk_record recs[3];
    compute_call_and_return(recs, PK_RECORD_MEMORY | PK_RECORD_ALLOC);
    recs[1].allocated = 3048;
    recs[1].freed = 1524;
    recs[1].alloc_delta = 2048;
    recs[1].free_delta = 1024;
    /* A record without allocation counters in a run that has them. */
    recs[2] = test_record(2, PK_EVENT_CALL, "zone", 1, 9900);
    recs[2].flags = PK_RECORD_MEMORY;
    record_to_file("text", t, PK_RECORD_MEMORY | PK_RECORD_ALLOC, recs, 3);
    assert_file_is(t->path,
                   "   index type       function                       label                depth  "
                   "thread       time_ns  "
                   "duration_ns         rss           vms    allocated        freed alloc_delta  "
                   "free_delta caller               caller_line   line file\n" DASH10 DASH10 DASH10
                       DASH10 DASH10 DASH10 DASH10 DASH10 DASH10 DASH10 DASH10 DASH10 DASH10 DASH10
                           DASH10 DASH10 DASH10 DASH10 DASH10 DASH10 "--------"
                   "-------------------------\n"
                   "       0 call       compute                        -                        0  "
                   "  4242          1500  "
                   "          -      409600       4096000         1000          500           -  "
                   "         - main                         100     10 demo.c\n"
                   "       1 return     compute                        -                        0  "
                   "  4242          9500  "
                   "       8000      409600       4096000         3048         1524        2048  "
                   "      1024 main                         100     10 demo.c\n"
                   "       2 call       zone                           -                        1  "
                   "  4242          9900  "
                   "          -      409600       4096000            -            -           -  "
                   "         - main                         102     12 demo.c\n");
}

static void text_with_memory_only_adds_rss_and_vms(void **state)
{
    const temp_file *t = *state;
    pk_record recs[2];
    compute_call_and_return(recs, PK_RECORD_MEMORY | PK_RECORD_ALLOC);
    record_to_file("text", t, PK_RECORD_MEMORY, recs, 1);
    assert_file_is(t->path,
                   "   index type       function                       label                depth  "
                   "thread       time_ns  "
                   "duration_ns         rss           vms caller               caller_line   "
                   "line file\n" DASH10 DASH10 DASH10 DASH10 DASH10 DASH10 DASH10 DASH10 DASH10
                       DASH10 DASH10 DASH10 DASH10 DASH10 DASH10 "--------"
                   "-------------------------\n"
                   "       0 call       compute                        -                        0  "
                   "  4242          1500  "
                   "          -      409600       4096000 main                         100     "
                   "10 demo.c\n");
}

static void text_long_function_name_pushes_the_line_right(void **state)
{
    const temp_file *t = *state;
    pk_record rec = test_record(
        0, PK_EVENT_CALL, "a_function_with_a_very_long_name_that_overflows_its_column", 0, 1500);
    rec.flags = 0;
    record_to_file("text", t, 0, &rec, 1);
    assert_file_is(t->path, PLAIN_HEADER PLAIN_RULE
                   "       0 call       a_function_with_a_very_long_name_that_overflows_its_column"
                   " -                        0    4242          1500            - main            "
                   "             100  "
                   "   10 demo.c\n");
}

/* A name longer than the formatting buffer's first size comes out whole. */
static void text_very_long_name_is_not_cut(void **state)
{
    const temp_file *t = *state;
    char name[2001];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    pk_record rec = test_record(0, PK_EVENT_CALL, name, 0, 1500);
    rec.flags = 0;
    record_to_file("text", t, 0, &rec, 1);
    char *text = read_whole(t->path);
    const char *row = strchr(strchr(text, '\n') + 1, '\n') + 1;
    char expected[2200];
    snprintf(expected, sizeof expected,
             "       0 call       %s -                        0    4242          1500            - "
             "main              "
             "           100     10 demo.c\n",
             name);
    assert_string_equal(row, expected);
    free(text);
}

/* Empty strings show as "-" so that every column holds a word. */
static void text_empty_strings_show_as_dash(void **state)
{
    const temp_file *t = *state;
    pk_record rec = test_record(0, PK_EVENT_CALL, "compute", 0, 1500);
    rec.flags = 0;
    rec.caller = "";
    rec.file = "";
    rec.line = 0;
    rec.caller_line = 0;
    record_to_file("text", t, 0, &rec, 1);
    assert_file_is(t->path, PLAIN_HEADER PLAIN_RULE
                   "       0 call       compute                        -                        0  "
                   "  4242          1500  "
                   "          - -                              0      0 -\n");
}

/* A second run on the same recorder gets its own header; finish without start is harmless. */
static void text_start_twice_and_finish_without_start(void **state)
{
    const temp_file *t = *state;
    char spec[600];
    snprintf(spec, sizeof spec, "text:%s", t->path);
    pk_logger *lg = logger_for(spec);
    pk_run_totals totals = {0};
    assert_int_equal(pk_logger_finish(lg, &totals), 0);
    pk_run_info run = run_with(0);
    assert_int_equal(pk_logger_start(lg, &run), 0);
    assert_int_equal(pk_logger_start(lg, &run), 0);
    assert_int_equal(pk_logger_finish(lg, &totals), 0);
    assert_int_equal(pk_logger_finish(lg, &totals), 0);
    pk_logger_free(lg);
    assert_file_is(t->path, PLAIN_HEADER PLAIN_RULE PLAIN_HEADER PLAIN_RULE);
}

/* Freeing a recorder that was never finished still writes what it buffered. */
static void text_free_without_finish_writes_buffered_lines(void **state)
{
    const temp_file *t = *state;
    char spec[600];
    snprintf(spec, sizeof spec, "text:%s", t->path);
    pk_logger *lg = logger_for(spec);
    pk_run_info run = run_with(0);
    assert_int_equal(pk_logger_start(lg, &run), 0);
    pk_logger_free(lg);
    assert_file_is(t->path, PLAIN_HEADER PLAIN_RULE);
}

/* Sends fd to the file at path, emptied; returns fd's own, for put_back. */
static int send_to_file(int fd, const char *path)
{
    fflush(stdout);
    fflush(stderr);
    int saved = dup(fd);
    int file = open(path, O_WRONLY | O_TRUNC);
    assert_true(saved >= 0 && file >= 0);
    dup2(file, fd);
    close(file);
    return saved;
}

static void put_back(int fd, int saved)
{
    dup2(saved, fd);
    close(saved);
}

/* Runs one record through "stdout" or "stderr" with that fd sent to a file. */
static void record_to_redirected_fd(const char *spec, int fd, const temp_file *t)
{
    int saved = send_to_file(fd, t->path);
    pk_logger *lg = logger_for(spec);
    pk_run_info run = run_with(0);
    pk_record recs[2];
    compute_call_and_return(recs, 0);
    int started = pk_logger_start(lg, &run);
    bool auto_flush = pk_recorder_auto_flush(pk_logger_recorder(lg));
    pk_logger_push(lg, &recs[0]);
    pk_run_totals totals = {0};
    int finished = pk_logger_finish(lg, &totals);
    pk_logger_free(lg);
    put_back(fd, saved);
    assert_int_equal(started, 0);
    assert_int_equal(finished, 0);
    assert_false(auto_flush); /* a file, not a terminal */
    /* The recorder must not have closed the descriptor it was given. */
    assert_true(fcntl(fd, F_GETFD) >= 0);
}

static void stdout_and_stderr_write_their_descriptor(void **state)
{
    static const char expected[] =
        PLAIN_HEADER PLAIN_RULE "       0 call       compute                        -              "
                                "          0    4242          1500  "
                                "          - main                         100     10 demo.c\n";
    const temp_file *t = *state;
    record_to_redirected_fd("stdout", STDOUT_FILENO, t);
    assert_file_is(t->path, expected);
    record_to_redirected_fd("stderr", STDERR_FILENO, t);
    assert_file_is(t->path, expected);
}

/* ---- csv ------------------------------------------------------------------------- */

#define CSV_HEADER                                                                                 \
    "index,type,function,file,line,caller,caller_file,caller_line,thread,depth,time_ns,"           \
    "duration_ns,rss,vms,allocated,freed,alloc_delta,free_delta,label,span,total_ns,"              \
    "alloc_function,pointer,old_pointer,size,usable_size\r\n"

static void csv_header_and_rows(void **state)
{
    const temp_file *t = *state;
    pk_record recs[2];
    compute_call_and_return(recs, PK_RECORD_MEMORY | PK_RECORD_ALLOC);
    recs[1].allocated = 3048;
    recs[1].freed = 1524;
    recs[1].alloc_delta = 2048;
    recs[1].free_delta = 1024;
    record_to_file("csv", t, PK_RECORD_MEMORY | PK_RECORD_ALLOC, recs, 2);
    assert_file_is(t->path, CSV_HEADER
                   "0,call,compute,demo.c,10,main,demo.c,100,4242,0,1500,,409600,4096000,"
                   "1000,500,,,,,,,,,,\r\n"
                   "1,return,compute,demo.c,10,main,demo.c,100,4242,0,9500,8000,409600,"
                   "4096000,3048,1524,2048,1024,,,,,,,,\r\n");
}

/* The header names every field even when the run measures none of the optional ones. */
static void csv_unmeasured_fields_are_empty_cells(void **state)
{
    const temp_file *t = *state;
    pk_record recs[2];
    compute_call_and_return(recs, 0);
    record_to_file("csv", t, 0, recs, 2);
    assert_file_is(t->path, CSV_HEADER
                   "0,call,compute,demo.c,10,main,demo.c,100,4242,0,1500,,,,,,,,,,,,,,,\r\n"
                   "1,return,compute,demo.c,10,main,demo.c,100,4242,0,9500,8000,,,,,,,,,,,,,,\r\n");
}

static void csv_quotes_commas_quotes_and_line_breaks(void **state)
{
    const temp_file *t = *state;
    pk_record recs[3];
    recs[0] = test_record(0, PK_EVENT_CALL, "operator,\"x\"", 0, 1);
    recs[1] = test_record(1, PK_EVENT_CALL, "two\nlines", 1, 2);
    recs[2] = test_record(2, PK_EVENT_CALL, "carriage\rreturn", 2, 3);
    recs[2].file = "say \"hi\".c";
    recs[2].caller = "add(int, int)"; /* a comma alone */
    for (int i = 0; i < 3; i++)
        recs[i].flags = 0;
    record_to_file("csv", t, 0, recs, 3);
    assert_file_is(
        t->path, CSV_HEADER
        "0,call,\"operator,\"\"x\"\"\",demo.c,10,main,demo.c,100,4242,0,1,,,,,,,,,,,,,,,\r\n"
        "1,call,\"two\nlines\",demo.c,11,main,demo.c,101,4242,1,2,,,,,,,,,,,,,,,\r\n"
        "2,call,\"carriage\rreturn\",\"say \"\"hi\"\".c\",12,\"add(int, int)\","
        "demo.c,102,4242,2,3,,,,,,,,,,,,,,,\r\n");
}

/* One header row per file: a second start must not add another. */
/* A profiler's start, one mark and its finish: the mark's label, delta and total. */
static void checkpoint_records(pk_record out[3])
{
    out[0] = test_record(0, PK_EVENT_CALL, "request", 0, 1000);
    out[1] = test_record(1, PK_EVENT_CHECKPOINT, "request", 1, 2500);
    out[2] = test_record(2, PK_EVENT_RETURN, "request", 0, 3000);
    for (int i = 0; i < 3; i++) {
        out[i].flags = PK_RECORD_SPAN;
        out[i].span = 7;
        out[i].line = 10;
        out[i].label = "";
    }
    out[1].label = "parsed";
    out[1].duration_ns = 1500;
    out[1].total_ns = 1500;
    out[2].duration_ns = 2000;
}

static void text_shows_a_checkpoint_with_its_label(void **state)
{
    const temp_file *t = *state;
    pk_record recs[3];
    checkpoint_records(recs);
    record_to_file("text", t, 0, recs, 3);
    assert_file_is(t->path, PLAIN_HEADER PLAIN_RULE
                   "       0 call       request                        -                        0 "
                   "   4242          1000            - main                         100     10 "
                   "demo.c\n"
                   "       1 checkpoint request                        parsed                   1 "
                   "   4242          2500         1500 main                         101     10 "
                   "demo.c\n"
                   "       2 return     request                        -                        0 "
                   "   4242          3000         2000 main                         102     10 "
                   "demo.c\n");
}

static void csv_carries_label_span_and_total(void **state)
{
    const temp_file *t = *state;
    pk_record recs[3];
    checkpoint_records(recs);
    record_to_file("csv", t, 0, recs, 3);
    assert_file_is(
        t->path, CSV_HEADER
        "0,call,request,demo.c,10,main,demo.c,100,4242,0,1000,,,,,,,,,7,,,,,,\r\n"
        "1,checkpoint,request,demo.c,10,main,demo.c,101,4242,1,2500,1500,,,,,,,"
        "parsed,7,1500,,,,,\r\n"
        "2,return,request,demo.c,10,main,demo.c,102,4242,0,3000,2000,,,,,,,,7,,,,,,\r\n");
}

static void csv_start_twice_writes_one_header(void **state)
{
    const temp_file *t = *state;
    char spec[600];
    snprintf(spec, sizeof spec, "csv:%s", t->path);
    pk_logger *lg = logger_for(spec);
    pk_run_info run = run_with(0);
    pk_run_totals totals = {0};
    assert_int_equal(pk_logger_start(lg, &run), 0);
    assert_int_equal(pk_logger_start(lg, &run), 0);
    assert_int_equal(pk_logger_finish(lg, &totals), 0);
    pk_logger_free(lg);
    assert_file_is(t->path, CSV_HEADER);
}

/* ---- list ------------------------------------------------------------------------ */

static void list_keeps_copies_of_records_and_strings(void **state)
{
    pk_logger *lg = logger_for("list");
    pk_recorder *r = pk_logger_recorder(lg);
    pk_run_info run = run_with(PK_RECORD_MEMORY);
    assert_int_equal(pk_logger_start(lg, &run), 0);

    char function[32], file[32], caller[32], caller_file[32];
    strcpy(function, "compute");
    strcpy(file, "compute.c");
    strcpy(caller, "main");
    strcpy(caller_file, "main.c");
    pk_record rec = test_record(7, PK_EVENT_RETURN, function, 3, 5000);
    rec.file = file;
    rec.caller = caller;
    rec.caller_file = caller_file;
    rec.duration_ns = 1234;
    pk_logger_push(lg, &rec);
    /* The producer's buffers change; the kept record must not. */
    strcpy(function, "XXXXXXX");
    strcpy(file, "XXXXXXXXX");
    strcpy(caller, "XXXX");
    strcpy(caller_file, "XXXXXX");
    pk_record second = test_record(8, PK_EVENT_CALL, "other", 0, 6000);
    pk_logger_push(lg, &second);

    assert_int_equal(pk_list_count(r), 2);
    const pk_record *got = pk_list_get(r, 0);
    assert_non_null(got);
    assert_int_equal(got->index, 7);
    assert_int_equal(got->type, PK_EVENT_RETURN);
    assert_int_equal(got->depth, 3);
    assert_int_equal(got->time_ns, 5000);
    assert_int_equal(got->duration_ns, 1234);
    assert_int_equal(got->rss, 409600);
    assert_int_equal(got->line, 17);
    assert_int_equal(got->caller_line, 107);
    assert_string_equal(got->function, "compute");
    assert_string_equal(got->file, "compute.c");
    assert_string_equal(got->caller, "main");
    assert_string_equal(got->caller_file, "main.c");
    assert_ptr_not_equal(got->function, function);
    assert_string_equal(pk_list_get(r, 1)->function, "other");
    assert_int_equal(pk_list_get(r, 1)->index, 8);
    assert_null(pk_list_get(r, 2));

    pk_list_clear(r);
    assert_int_equal(pk_list_count(r), 0);
    assert_null(pk_list_get(r, 0));
    pk_logger_push(lg, &second);
    assert_int_equal(pk_list_count(r), 1);
    assert_string_equal(pk_list_get(r, 0)->function, "other");
    pk_run_totals totals = {0};
    assert_int_equal(pk_logger_finish(lg, &totals), 0);
    pk_logger_free(lg);
}

/* Pointers from pk_list_get stay valid while the list grows past one block. */
static void list_pointers_survive_growth(void **state)
{
    pk_logger *lg = logger_for("list");
    pk_recorder *r = pk_logger_recorder(lg);
    pk_record rec = test_record(0, PK_EVENT_CALL, "f", 0, 0);
    pk_logger_push(lg, &rec);
    const pk_record *first = pk_list_get(r, 0);
    for (uint64_t i = 1; i < 5000; i++) {
        rec.index = i;
        pk_logger_push(lg, &rec);
    }
    assert_int_equal(pk_list_count(r), 5000);
    assert_ptr_equal(pk_list_get(r, 0), first);
    assert_int_equal(first->index, 0);
    assert_int_equal(pk_list_get(r, 4999)->index, 4999);
    assert_int_equal(pk_list_get(r, 1024)->index, 1024);
    assert_null(pk_list_get(r, 5000));
    pk_logger_free(lg);
}

/* The list functions on anything but a list recorder answer "nothing". */
static void list_functions_on_other_recorders(void **state)
{
    pk_error err = {{0}};
    pk_recorder *r = pk_recorder_open("stdout", &err);
    assert_non_null(r);
    assert_int_equal(pk_list_count(r), 0);
    assert_null(pk_list_get(r, 0));
    pk_list_clear(r);
    pk_recorder_free(r);
    assert_int_equal(pk_list_count(NULL), 0);
    assert_null(pk_list_get(NULL, 0));
    pk_list_clear(NULL);
}

/* ---- specs ------------------------------------------------------------------------- */

/* Fields as text: decimal numbers, strings, truncation that always terminates. */
static void format_field_writes_decimal_and_truncates(void **state)
{
    (void)state;
    pk_record r = test_record(0, PK_EVENT_RETURN, "compute", 3, 1234567);
    r.rss = UINT64_MAX;
    char buf[32];
    assert_int_equal(pk_record_format_field(&r, PK_FIELD_TIME, buf, sizeof buf), 7);
    assert_string_equal(buf, "1234567");
    assert_int_equal(pk_record_format_field(&r, PK_FIELD_RSS, buf, sizeof buf), 20);
    assert_string_equal(buf, "18446744073709551615");
    assert_int_equal(pk_record_format_field(&r, PK_FIELD_INDEX, buf, sizeof buf), 1);
    assert_string_equal(buf, "0");
    assert_int_equal(pk_record_format_field(&r, PK_FIELD_TYPE, buf, sizeof buf), 6);
    assert_string_equal(buf, "return");
    assert_int_equal(pk_record_format_field(&r, PK_FIELD_FUNCTION, buf, sizeof buf), 7);
    assert_string_equal(buf, "compute");
    assert_int_equal(pk_record_format_field(&r, PK_FIELD_TIME, buf, 4), 3);
    assert_string_equal(buf, "123");
    assert_int_equal(pk_record_format_field(&r, PK_FIELD_FUNCTION, buf, 5), 4);
    assert_string_equal(buf, "comp");
    assert_int_equal(pk_record_format_field(&r, PK_FIELD_TIME, buf, 1), 0);
    assert_string_equal(buf, "");
    buf[0] = 'x';
    assert_int_equal(pk_record_format_field(&r, PK_FIELD_TIME, buf, 0), 0);
    assert_int_equal(buf[0], 'x');
    r.flags = 0; /* nothing measured: memory fields are empty */
    assert_int_equal(pk_record_format_field(&r, PK_FIELD_RSS, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
}

static void assert_spec_error(const char *spec, const char *expected)
{
    pk_error err = {{0}};
    pk_recorder *r = pk_recorder_open(spec, &err);
    if (r)
        pk_recorder_free(r);
    assert_null(r);
    assert_string_equal(err.message, expected);
}

static void spec_errors_say_what_is_wrong(void **state)
{
    assert_spec_error("text", "recorder spec 'text': missing argument (expected text:PATH)");
    assert_spec_error("csv", "recorder spec 'csv': missing argument (expected csv:PATH)");
    assert_spec_error("text:", "recorder spec 'text:': nothing after ':'");
    assert_spec_error("stdout:foo",
                      "recorder spec 'stdout:foo': 'stdout' takes no argument (expected stdout)");
    assert_spec_error("list:x", "recorder spec 'list:x': 'list' takes no argument (expected list)");
    assert_spec_error("sqlit:run.db", "recorder spec 'sqlit:run.db': unknown kind 'sqlit' "
                                      "(known: stdout, stderr, text, csv, list, sqlite, zmq)");
    assert_spec_error("stdout+bogus",
                      "recorder spec 'stdout+bogus': unknown option 'bogus' (known: flush)");
    assert_spec_error("csv:/nonexistent-dir/x.csv",
                      "recorder spec 'csv:/nonexistent-dir/x.csv': cannot open "
                      "'/nonexistent-dir/x.csv' for writing: No such file or directory");
    assert_spec_error("text:/nonexistent-dir/x.txt",
                      "recorder spec 'text:/nonexistent-dir/x.txt': cannot open "
                      "'/nonexistent-dir/x.txt' for writing: No such file or directory");
}

static void spec_kinds_and_flush_option(void **state)
{
    static const struct {
        const char *spec;
        const char *kind;
    } cases[] = {
        {"stdout", "stdout"}, {"stderr", "stderr"}, {"list", "list"}, {"stdout+flush", "stdout"}};
    for (size_t i = 0; i < PK_ARRAY_SIZE(cases); i++) {
        pk_error err = {{0}};
        pk_recorder *r = pk_recorder_open(cases[i].spec, &err);
        assert_non_null(r);
        assert_string_equal(pk_recorder_ops_of(r)->name, cases[i].kind);
        pk_recorder_free(r);
    }
}

/* ---- write errors ----------------------------------------------------------------- */

static void push_calls(pk_logger *lg, int n)
{
    for (int i = 0; i < n; i++) {
        pk_record rec = test_record((uint64_t)i, PK_EVENT_CALL, "compute", 0, 100);
        pk_logger_push(lg, &rec);
    }
}

/* Buffered: the failure shows on flush, is reported once, and later calls are skipped. */
static void full_device_fails_on_flush(void **state)
{
    pk_logger *lg = logger_for("text:/dev/full");
    pk_run_info run = run_with(0);
    assert_int_equal(pk_logger_start(lg, &run), 0);
    push_calls(lg, 3);
    assert_null(pk_logger_error(lg));
    assert_int_equal(pk_logger_flush(lg), -1);
    static const char expected[] = "recorder 'text:/dev/full' cannot write: No space left on "
                                   "device; its records are dropped";
    assert_string_equal(pk_logger_error(lg), expected);
    push_calls(lg, 3);
    assert_int_equal(pk_logger_flush(lg), -1);
    pk_run_totals totals = {0};
    assert_int_equal(pk_logger_finish(lg, &totals), -1);
    assert_string_equal(pk_logger_error(lg), expected);
    pk_logger_free(lg);
}

/* Without a flush in between, the run's end is where the failure shows. */
static void full_device_fails_on_finish(void **state)
{
    pk_logger *lg = logger_for("csv:/dev/full");
    pk_run_info run = run_with(0);
    assert_int_equal(pk_logger_start(lg, &run), 0);
    push_calls(lg, 2);
    pk_run_totals totals = {0};
    assert_int_equal(pk_logger_finish(lg, &totals), -1);
    assert_string_equal(pk_logger_error(lg), "recorder 'csv:/dev/full' cannot finish: No space "
                                             "left on device; its records are dropped");
    pk_logger_free(lg);
}

/* Auto-flushing writes the header at start, so that is where it fails. */
static void full_device_with_flush_fails_at_start(void **state)
{
    pk_logger *lg = logger_for("text+flush:/dev/full");
    pk_run_info run = run_with(0);
    assert_int_equal(pk_logger_start(lg, &run), -1);
    assert_string_equal(pk_logger_error(lg), "recorder 'text+flush:/dev/full' cannot start: No "
                                             "space left on device; its records are dropped");
    push_calls(lg, 2);
    pk_run_totals totals = {0};
    assert_int_equal(pk_logger_finish(lg, &totals), -1);
    pk_logger_free(lg);
}

/* A recorder whose third write fails. */
typedef struct third_fails_state {
    int writes;
} third_fails_state;

static int third_fails_write(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    (void)rec;
    third_fails_state *s = pk_recorder_state(r);
    return ++s->writes == 3 ? pk_fail(err, "disk on fire") : 0;
}

static const pk_recorder_ops third_fails = {
    .name = "third-fails",
    .usage = "third-fails",
    .size = sizeof(third_fails_state),
    .write = third_fails_write,
};

/* A batch (as the drain hands them over) stops at the failing write; later batches are dropped. */
static void failed_write_stops_the_batch(void **state)
{
    (void)state;
    pk_error err = {{0}};
    pk_recorder *r = pk_recorder_new(&third_fails, NULL, &err);
    assert_non_null(r);
    pk_logger *lg = pk_logger_new(r);
    pk_run_info run = run_with(0);
    assert_int_equal(pk_logger_start(lg, &run), 0);
    pk_record batch[5];
    for (size_t i = 0; i < 5; i++)
        batch[i] = test_record(i, PK_EVENT_CALL, "compute", 0, 100);
    pk_logger_push_many(lg, batch, 5);
    third_fails_state *s = pk_recorder_state(r);
    assert_int_equal(s->writes, 3);
    assert_string_equal(pk_logger_error(lg), "recorder 'third-fails' cannot write: disk on fire; "
                                             "its records are dropped");
    pk_logger_push_many(lg, batch, 5);
    assert_int_equal(s->writes, 3);
    pk_logger_free(lg);
}

/* A recorder that notes how its run ended: finish, or executed (which fails when asked). */
typedef struct ends_state {
    char written[64]; /* the functions of the records written, in order */
    int finishes;
    int executions;
    uint64_t events; /* the totals executed was given */
    bool refuse;
} ends_state;

static int ends_write(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    (void)err;
    ends_state *s = pk_recorder_state(r);
    size_t used = strlen(s->written);
    snprintf(s->written + used, sizeof s->written - used, "%s%s", used ? " " : "", rec->function);
    return 0;
}

static int ends_finish(pk_recorder *r, const pk_run_totals *totals, pk_error *err)
{
    (void)totals;
    (void)err;
    ((ends_state *)pk_recorder_state(r))->finishes++;
    return 0;
}

static int ends_executed(pk_recorder *r, const pk_run_totals *totals, pk_error *err)
{
    ends_state *s = pk_recorder_state(r);
    s->executions++;
    s->events = totals->events;
    return s->refuse ? pk_fail(err, "the store is gone") : 0;
}

static const pk_recorder_ops ends = {
    .name = "ends",
    .usage = "ends",
    .size = sizeof(ends_state),
    .write = ends_write,
    .finish = ends_finish,
    .executed = ends_executed,
};

static const pk_recorder_ops ends_without_executed = {
    .name = "ends-without",
    .usage = "ends-without",
    .size = sizeof(ends_state),
    .write = ends_write,
    .finish = ends_finish,
};

/*
 * A run whose program executed another image ends through executed, not
 * finish: a holding filter first releases what it keeps (the call still
 * open), as at a finish; a recorder without executed is only closed; a
 * failing executed is reported as the recorder's failure.
 */
static void executed_ends_the_run_in_place_of_finish(void **state)
{
    (void)state;
    const pk_recorder_ops *kinds[] = {&ends, &ends_without_executed, &ends};
    for (size_t k = 0; k < PK_ARRAY_SIZE(kinds); k++) {
        pk_error err = {{0}};
        pk_recorder *r = pk_recorder_new(kinds[k], NULL, &err);
        assert_non_null(r);
        ends_state *s = pk_recorder_state(r);
        s->refuse = k == 2;
        pk_logger *lg = pk_logger_new(r);
        assert_int_equal(pk_logger_add_filter_spec(lg, "min-duration:1us", &err), 0);
        pk_run_info run = run_with(0);
        assert_int_equal(pk_logger_start(lg, &run), 0);
        pk_record recs[] = {test_record(0, PK_EVENT_CALL, "outer", 0, 0),
                            test_record(1, PK_EVENT_CALL, "quick", 1, 100),
                            test_record(2, PK_EVENT_RETURN, "quick", 1, 200)};
        pk_logger_push_many(lg, recs, PK_ARRAY_SIZE(recs));
        assert_string_equal(s->written, ""); /* outer is held until it returns or the run ends */
        pk_run_totals totals = {.events = 3};
        assert_int_equal(pk_logger_executed(lg, &totals), k == 2 ? -1 : 0);
        assert_string_equal(s->written, "outer");
        assert_int_equal(s->finishes, 0);
        assert_int_equal(s->executions, kinds[k] == &ends ? 1 : 0);
        assert_int_equal(s->events, kinds[k] == &ends ? 3 : 0);
        if (k == 2)
            assert_string_equal(pk_logger_error(lg),
                                "recorder 'ends' cannot end its run: the store "
                                "is gone; its records are dropped");
        else
            assert_null(pk_logger_error(lg));
        pk_logger_free(lg);
    }
}

/* A recorder taking batches whole: it fails on the record of index 3. */
typedef struct batches_state {
    size_t calls;      /* of write_many */
    size_t sizes[4];   /* the batch each call was given */
    size_t one_by_one; /* records write was given */
    size_t observed;   /* records observe was given */
} batches_state;

static int batches_write(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    (void)rec;
    (void)err;
    ((batches_state *)pk_recorder_state(r))->one_by_one++;
    return 0;
}

static size_t batches_write_many(pk_recorder *r, const pk_record *recs, size_t n, pk_error *err)
{
    batches_state *s = pk_recorder_state(r);
    s->sizes[s->calls++ % 4] = n;
    for (size_t i = 0; i < n; i++)
        if (recs[i].index == 3) {
            pk_fail(err, "record %zu of %zu refused", i + 1, n);
            return i;
        }
    return n;
}

static const pk_recorder_ops batches = {
    .name = "batches",
    .usage = "batches",
    .size = sizeof(batches_state),
    .write = batches_write,
    .write_many = batches_write_many,
};

/* The same with an observer: batches whole through record_many. */
static int batches_observe(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    (void)rec;
    (void)err;
    ((batches_state *)pk_recorder_state(r))->observed++;
    return 0;
}

static const pk_recorder_ops observed_batches = {
    .name = "observed-batches",
    .usage = "observed-batches",
    .size = sizeof(batches_state),
    .write = batches_write,
    .observe = batches_observe,
    .record_many = batches_write_many,
};

static pk_logger *batches_logger(const pk_recorder_ops *ops, pk_recorder **r)
{
    pk_error err = {{0}};
    *r = pk_recorder_new(ops, NULL, &err);
    assert_non_null(*r);
    pk_logger *lg = pk_logger_new(*r);
    pk_run_info run = run_with(0);
    assert_int_equal(pk_logger_start(lg, &run), 0);
    return lg;
}

/*
 * Batches reach write_many (record_many, with an observer, which then sees
 * none of them) whole; its failure is reported once and drops what follows.
 */
static void write_many_takes_whole_batches(void **state)
{
    (void)state;
    const pk_recorder_ops *kinds[] = {&batches, &observed_batches};
    for (size_t k = 0; k < PK_ARRAY_SIZE(kinds); k++) {
        pk_recorder *r;
        pk_logger *lg = batches_logger(kinds[k], &r);
        pk_record batch[5];
        for (size_t i = 0; i < 5; i++)
            batch[i] = test_record(i, PK_EVENT_CALL, "compute", 0, 100);
        pk_logger_push_many(lg, batch, 3);
        pk_logger_push(lg, &batch[0]);
        batches_state *s = pk_recorder_state(r);
        assert_int_equal(s->calls, 2);
        assert_int_equal(s->sizes[0], 3);
        assert_int_equal(s->sizes[1], 1);
        assert_null(pk_logger_error(lg));
        pk_logger_push_many(lg, batch, 5);
        assert_int_equal(s->calls, 3);
        assert_int_equal(s->sizes[2], 5);
        char expected[160];
        snprintf(expected, sizeof expected,
                 "recorder '%s' cannot write: record 4 of 5 refused; its records are dropped",
                 kinds[k]->name);
        assert_string_equal(pk_logger_error(lg), expected);
        pk_logger_push_many(lg, batch, 5);
        assert_int_equal(s->calls, 3);
        assert_int_equal(s->one_by_one, 0);
        assert_int_equal(s->observed, 0);
        pk_logger_free(lg);
    }
}

/*
 * A filter or the flush option takes records one at a time: write, not
 * write_many; observe sees every record, write those the filter passes.
 */
static void write_many_not_behind_filters_or_flush(void **state)
{
    (void)state;
    pk_record batch[4];
    for (size_t i = 0; i < 4; i++)
        batch[i] = test_record(i, PK_EVENT_CALL, "compute", (unsigned)i, 100);
    pk_recorder *r;
    pk_logger *lg = batches_logger(&batches, &r);
    pk_error err = {{0}};
    assert_int_equal(pk_logger_add_filter_spec(lg, "max-depth:1", &err), 0);
    pk_logger_push_many(lg, batch, 4);
    batches_state *s = pk_recorder_state(r);
    assert_int_equal(s->calls, 0);
    assert_int_equal(s->one_by_one, 2);
    pk_logger_free(lg);

    lg = batches_logger(&batches, &r);
    pk_recorder_set_auto_flush(r, true);
    pk_logger_push_many(lg, batch, 4);
    s = pk_recorder_state(r);
    assert_int_equal(s->calls, 0);
    assert_int_equal(s->one_by_one, 4);
    pk_logger_free(lg);

    lg = batches_logger(&observed_batches, &r);
    assert_int_equal(pk_logger_add_filter_spec(lg, "max-depth:1", &err), 0);
    pk_logger_push_many(lg, batch, 4);
    s = pk_recorder_state(r);
    assert_int_equal(s->calls, 0);
    assert_int_equal(s->observed, 4);
    assert_int_equal(s->one_by_one, 2);
    pk_logger_free(lg);
}

/* A reader that went away: EPIPE (SIGPIPE is ignored in main). */
static void closed_pipe_fails_with_broken_pipe(void **state)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    char spec[64];
    snprintf(spec, sizeof spec, "text+flush:/dev/fd/%d", fds[1]);
    /* Opened while the read end is open: opening a pipe with no reader blocks. */
    pk_logger *lg = logger_for(spec);
    close(fds[0]);
    close(fds[1]);
    pk_run_info run = run_with(0);
    assert_int_equal(pk_logger_start(lg, &run), -1);
    char expected[256];
    snprintf(expected, sizeof expected,
             "recorder '%s' cannot start: Broken pipe; its records are dropped", spec);
    assert_string_equal(pk_logger_error(lg), expected);
    push_calls(lg, 2);
    pk_run_totals totals = {0};
    assert_int_equal(pk_logger_finish(lg, &totals), -1);
    assert_string_equal(pk_logger_error(lg), expected);
    pk_logger_free(lg);
}

/* A record that fills the buffer makes the write itself fail. */
static void closed_pipe_fails_on_write_when_buffer_fills(void **state)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    char spec[64];
    snprintf(spec, sizeof spec, "csv:/dev/fd/%d", fds[1]);
    pk_logger *lg = logger_for(spec);
    close(fds[0]);
    close(fds[1]);
    pk_run_info run = run_with(0);
    assert_int_equal(pk_logger_start(lg, &run), 0);
    push_calls(lg, 2000); /* about 100 KiB: more than the 64 KiB buffer */
    char expected[256];
    snprintf(expected, sizeof expected,
             "recorder '%s' cannot write: Broken pipe; its records are dropped", spec);
    assert_string_equal(pk_logger_error(lg), expected);
    pk_logger_free(lg);
}

/* ---- auto-flush ------------------------------------------------------------------- */

static void with_flush_each_record_reaches_the_file_at_once(void **state)
{
    const temp_file *t = *state;
    char spec[600];
    snprintf(spec, sizeof spec, "text+flush:%s", t->path);
    pk_logger *lg = logger_for(spec);
    assert_true(pk_recorder_auto_flush(pk_logger_recorder(lg)));
    pk_run_info run = run_with(0);
    pk_record recs[2];
    compute_call_and_return(recs, 0);

    assert_int_equal(pk_logger_start(lg, &run), 0);
    assert_file_is(t->path, PLAIN_HEADER PLAIN_RULE);
    pk_logger_push(lg, &recs[0]);
    assert_file_is(t->path, PLAIN_HEADER PLAIN_RULE
                   "       0 call       compute                        -                        0  "
                   "  4242          1500  "
                   "          - main                         100     10 demo.c\n");
    pk_logger_push(lg, &recs[1]);
    assert_file_is(t->path, PLAIN_HEADER PLAIN_RULE
                   "       0 call       compute                        -                        0  "
                   "  4242          1500  "
                   "          - main                         100     10 demo.c\n"
                   "       1 return     compute                        -                        0  "
                   "  4242          9500  "
                   "       8000 main                         100     10 demo.c\n");
    pk_logger_free(lg);
}

static void without_flush_records_wait_for_a_flush(void **state)
{
    const temp_file *t = *state;
    char spec[600];
    snprintf(spec, sizeof spec, "csv:%s", t->path);
    pk_logger *lg = logger_for(spec);
    pk_run_info run = run_with(0);
    pk_record recs[2];
    compute_call_and_return(recs, 0);

    assert_int_equal(pk_logger_start(lg, &run), 0);
    assert_false(pk_recorder_auto_flush(pk_logger_recorder(lg)));
    pk_logger_push(lg, &recs[0]);
    assert_file_is(t->path, "");
    assert_int_equal(pk_logger_flush(lg), 0);
    assert_file_is(t->path, CSV_HEADER
                   "0,call,compute,demo.c,10,main,demo.c,100,4242,0,1500,,,,,,,,,,,,,,,\r\n");
    pk_logger_push(lg, &recs[1]);
    assert_file_is(t->path, CSV_HEADER
                   "0,call,compute,demo.c,10,main,demo.c,100,4242,0,1500,,,,,,,,,,,,,,,\r\n");
    pk_run_totals totals = {0};
    assert_int_equal(pk_logger_finish(lg, &totals), 0);
    assert_file_is(t->path, CSV_HEADER
                   "0,call,compute,demo.c,10,main,demo.c,100,4242,0,1500,,,,,,,,,,,,,,,\r\n"
                   "1,return,compute,demo.c,10,main,demo.c,100,4242,0,9500,8000,,,,,,,,,,,,,,\r\n");
    pk_logger_free(lg);
}

/* pk_recorder_set_auto_flush before start wins over the terminal default. */
static void set_auto_flush_overrides_the_default(void **state)
{
    const temp_file *t = *state;
    char spec[600];
    snprintf(spec, sizeof spec, "text:%s", t->path);
    pk_logger *lg = logger_for(spec);
    pk_recorder_set_auto_flush(pk_logger_recorder(lg), true);
    pk_run_info run = run_with(0);
    assert_int_equal(pk_logger_start(lg, &run), 0);
    assert_true(pk_recorder_auto_flush(pk_logger_recorder(lg)));
    assert_file_is(t->path, PLAIN_HEADER PLAIN_RULE);
    pk_logger_free(lg);
}

/* ---- zmq: a run whose program executed another ------------------------------------ */

/*
 * The goodbye of such a run: nobody listens, and 32 batches, one a flush,
 * fill the window, so the goodbye waits for room first (the oldest batch is
 * then given up), then for its acknowledgement; both messages about that
 * wait say which wait it was. Returns what the recorder said on stderr.
 */
static void executed_run_without_collector(const char *path, const char *linger, char *said,
                                           size_t size)
{
    char spec[80];
    snprintf(spec, sizeof spec, "zmq:ipc://@pikoc-test-recorders-%d", (int)getpid());
    setenv("PIKOC_ZMQ_LINGER", linger, 1);
    pk_logger *lg = logger_for(spec);
    unsetenv("PIKOC_ZMQ_LINGER");
    pk_run_info run = run_with(0);
    assert_int_equal(pk_logger_start(lg, &run), 0);
    pk_record recs[2];
    compute_call_and_return(recs, 0);
    for (int i = 0; i < 32; i++) {
        pk_logger_push(lg, &recs[0]);
        assert_int_equal(pk_logger_flush(lg), 0);
    }
    int saved = send_to_file(STDERR_FILENO, path);
    pk_run_totals totals = {.events = 32};
    assert_int_equal(pk_logger_executed(lg, &totals), -1);
    put_back(STDERR_FILENO, saved);
    pk_logger_free(lg);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t got = fread(said, 1, size - 1, f);
    said[got] = '\0';
    fclose(f);
}

/* The two messages of executed_run_without_collector for a wait of `wait`. */
static void expect_wait(char *expected, size_t size, const char *wait)
{
    char spec[80], endpoint[64];
    snprintf(endpoint, sizeof endpoint, "ipc://@pikoc-test-recorders-%d", (int)getpid());
    snprintf(spec, sizeof spec, "zmq:%s", endpoint);
    snprintf(expected, size,
             "pikoc: recorder '%s': no collector acknowledged anything for %s; batches are "
             "dropped and counted until one does\n"
             "pikoc: recorder '%s' cannot end its run: %s: no collector acknowledged the last 32 "
             "batches within %s; they are lost; its records are dropped\n",
             spec, wait, spec, endpoint, wait);
}

/*
 * In the program's own process (an exec ends the run there) the goodbye
 * has the whole linger; in a drainer, which pikoc run waits on, a second
 * at most (PIKOC_ZMQ_LINGER is 5 s there).
 */
static void executed_run_names_its_shorter_wait(void **state)
{
    const temp_file *t = *state;
    char said[1024], expected[1024];
    executed_run_without_collector(t->path, "1500ms", said, sizeof said);
    expect_wait(expected, sizeof expected, "1.5 s (PIKOC_ZMQ_LINGER)");
    assert_string_equal(said, expected);

    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        pk_drainer_mark_self();
        executed_run_without_collector(t->path, "5s", said, sizeof said);
        expect_wait(expected, sizeof expected,
                    "1.0 s (the wait of a run whose program executed another)");
        bool same = strcmp(said, expected) == 0;
        if (!same)
            fprintf(stderr, "a drainer's wait, said:\n%s", said);
        _exit(same ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

#define WITH_TEMP_FILE(test) cmocka_unit_test_setup_teardown(test, temp_file_make, temp_file_remove)

int main(void)
{
    /* Writing to a pipe with no reader must fail with EPIPE, not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        WITH_TEMP_FILE(text_without_measures_shows_time_columns_only),
        WITH_TEMP_FILE(text_with_memory_and_alloc_adds_their_columns),
        WITH_TEMP_FILE(text_with_memory_only_adds_rss_and_vms),
        WITH_TEMP_FILE(text_long_function_name_pushes_the_line_right),
        WITH_TEMP_FILE(text_very_long_name_is_not_cut),
        WITH_TEMP_FILE(text_empty_strings_show_as_dash),
        WITH_TEMP_FILE(text_start_twice_and_finish_without_start),
        WITH_TEMP_FILE(text_free_without_finish_writes_buffered_lines),
        WITH_TEMP_FILE(stdout_and_stderr_write_their_descriptor),
        WITH_TEMP_FILE(csv_header_and_rows),
        WITH_TEMP_FILE(csv_unmeasured_fields_are_empty_cells),
        WITH_TEMP_FILE(csv_quotes_commas_quotes_and_line_breaks),
        WITH_TEMP_FILE(csv_start_twice_writes_one_header),
        WITH_TEMP_FILE(text_shows_a_checkpoint_with_its_label),
        WITH_TEMP_FILE(csv_carries_label_span_and_total),
        cmocka_unit_test(list_keeps_copies_of_records_and_strings),
        cmocka_unit_test(list_pointers_survive_growth),
        cmocka_unit_test(list_functions_on_other_recorders),
        cmocka_unit_test(format_field_writes_decimal_and_truncates),
        cmocka_unit_test(spec_errors_say_what_is_wrong),
        cmocka_unit_test(spec_kinds_and_flush_option),
        cmocka_unit_test(full_device_fails_on_flush),
        cmocka_unit_test(full_device_fails_on_finish),
        cmocka_unit_test(full_device_with_flush_fails_at_start),
        cmocka_unit_test(failed_write_stops_the_batch),
        cmocka_unit_test(executed_ends_the_run_in_place_of_finish),
        cmocka_unit_test(write_many_takes_whole_batches),
        cmocka_unit_test(write_many_not_behind_filters_or_flush),
        cmocka_unit_test(closed_pipe_fails_with_broken_pipe),
        cmocka_unit_test(closed_pipe_fails_on_write_when_buffer_fills),
        WITH_TEMP_FILE(with_flush_each_record_reaches_the_file_at_once),
        WITH_TEMP_FILE(without_flush_records_wait_for_a_flush),
        WITH_TEMP_FILE(set_auto_flush_overrides_the_default),
        WITH_TEMP_FILE(executed_run_names_its_shorter_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
