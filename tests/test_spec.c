/*
 * test_spec.c — the one parser for the small languages pikoc reads
 * (src/spec.c): durations, counts, globs, and the KIND[+OPTION...][:ARG]
 * shape of recorder and filter specs, with the exact messages users see.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <pikoc.h>

/* ---- durations ------------------------------------------------------------ */

static void expect_duration(const char *text, uint64_t ns)
{
    pk_error err = {{0}};
    uint64_t value = 12345;
    if (pk_parse_duration("duration", text, &value, &err) != 0)
        fail_msg("duration '%s' refused: %s", text, err.message);
    assert_int_equal(value, ns);
}

static void expect_duration_error(const char *text, const char *message)
{
    pk_error err = {{0}};
    uint64_t value = 12345;
    assert_int_equal(pk_parse_duration("duration", text, &value, &err), -1);
    assert_string_equal(err.message, message);
    assert_int_equal(value, 12345); /* untouched on failure */
}

#define EXPECTED_DURATION "expected a number with a unit: ns, us, ms or s (e.g. 500ns, 2us, 1.5ms)"

static void test_duration_units(void **state)
{
    expect_duration("500ns", 500);
    expect_duration("2us", 2000);
    expect_duration("1.5ms", 1500000);
    expect_duration("3s", 3000000000ull);
    expect_duration("0", 0);
    expect_duration("0.5us", 500);
    expect_duration("9000000000s", 9000000000000000000ull);
}

static void test_duration_bare_number_is_ns(void **state)
{
    expect_duration("250", 250);
    /* A fraction of a nanosecond is rounded to the nearest one. */
    expect_duration("1.5", 2);
    expect_duration("1.4", 1);
}

static void test_duration_errors(void **state)
{
    expect_duration_error("5 parsecs",
                          "duration '5 parsecs': unknown unit 'parsecs' (accepted: ns, us, ms, s)");
    expect_duration_error("5m", "duration '5m': unknown unit 'm' (accepted: ns, us, ms, s)");
    expect_duration_error("", "duration '': " EXPECTED_DURATION);
    expect_duration_error("-1ms", "duration '-1ms': " EXPECTED_DURATION);
    expect_duration_error("ms", "duration 'ms': " EXPECTED_DURATION);
    expect_duration_error("fast", "duration 'fast': " EXPECTED_DURATION);
    expect_duration_error("1e400s", "duration '1e400s': " EXPECTED_DURATION);
    expect_duration_error("19000000000s", "duration '19000000000s': too large");
    expect_duration_error("0x1p3ms", "duration '0x1p3ms': " EXPECTED_DURATION);
    expect_duration_error("0X10", "duration '0X10': " EXPECTED_DURATION);
    /* a long value is quoted in part, so the reason still fits */
    char long_text[200];
    memset(long_text, '7', 150);
    strcpy(long_text + 150, "parsecs");
    char message[512];
    snprintf(message, sizeof message,
             "duration '%.80s...': unknown unit 'parsecs' (accepted: ns, us, ms, s)", long_text);
    expect_duration_error(long_text, message);
}

/* ---- whole numbers ---------------------------------------------------------- */

static void expect_uint(const char *text, uint64_t expected)
{
    pk_error err = {{0}};
    uint64_t value = 12345;
    if (pk_parse_uint("depth", text, &value, &err) != 0)
        fail_msg("number '%s' refused: %s", text, err.message);
    assert_int_equal(value, expected);
}

static void expect_uint_error(const char *text, const char *message)
{
    pk_error err = {{0}};
    uint64_t value = 12345;
    assert_int_equal(pk_parse_uint("depth", text, &value, &err), -1);
    assert_string_equal(err.message, message);
    assert_int_equal(value, 12345);
}

static void test_uint(void **state)
{
    expect_uint("0", 0);
    expect_uint("42", 42);
    expect_uint("007", 7);
    expect_uint("18446744073709551615", UINT64_MAX);
}

static void test_uint_errors(void **state)
{
    expect_uint_error("-3", "depth '-3': expected a non-negative whole number");
    expect_uint_error("3x", "depth '3x': expected a non-negative whole number");
    expect_uint_error(" 3", "depth ' 3': expected a non-negative whole number");
    expect_uint_error("", "depth '': expected a non-negative whole number");
    expect_uint_error("99999999999999999999999", "depth '99999999999999999999999': too large");
    expect_uint_error("18446744073709551616", "depth '18446744073709551616': too large");
}

/* A NULL err is allowed everywhere: the status alone still tells. */
static void test_parse_without_error_buffer(void **state)
{
    uint64_t value = 0;
    assert_int_equal(pk_parse_uint("depth", "x", &value, NULL), -1);
    assert_int_equal(pk_parse_duration("duration", "x", &value, NULL), -1);
}

/* ---- globs ------------------------------------------------------------------ */

static void test_glob(void **state)
{
    assert_true(pk_glob_match("*", ""));
    assert_true(pk_glob_match("*", "main"));
    assert_true(pk_glob_match("pk_*", "pk_ring_push"));
    assert_false(pk_glob_match("pk_*", "main"));
    assert_true(pk_glob_match("*_free", "pk_filter_free"));
    assert_false(pk_glob_match("*_free", "pk_free_all"));
    assert_true(pk_glob_match("f?o", "foo"));
    assert_false(pk_glob_match("f?o", "fo"));
    assert_false(pk_glob_match("f?o", "fooo"));
    assert_true(pk_glob_match("[ab]x", "ax"));
    assert_true(pk_glob_match("[ab]x", "bx"));
    assert_false(pk_glob_match("[ab]x", "cx"));
    assert_true(pk_glob_match("[!ab]x", "cx"));
    assert_true(pk_glob_match("main", "main"));
    assert_false(pk_glob_match("main", "main2"));
    /* Function names are not paths: '*' crosses '/' and '::'. */
    assert_true(pk_glob_match("ns::*", "ns::inner::run"));
}

/* ---- spec shape ------------------------------------------------------------- */

static void expect_recorder_error(const char *spec, const char *message)
{
    pk_error err = {{0}};
    pk_recorder *r = pk_recorder_open(spec, &err);
    if (r) {
        pk_recorder_free(r);
        fail_msg("recorder spec '%s' was accepted", spec);
    }
    assert_string_equal(err.message, message);
}

static void expect_filter_error(const char *spec, const char *message)
{
    pk_error err = {{0}};
    pk_filter *f = pk_filter_open(spec, &err);
    if (f) {
        pk_filter_free(f);
        fail_msg("filter spec '%s' was accepted", spec);
    }
    assert_string_equal(err.message, message);
}

static void test_spec_shape_recorder(void **state)
{
    expect_recorder_error("", "recorder spec '': empty (expected KIND[:ARG])");
    expect_recorder_error(NULL, "recorder spec '': empty (expected KIND[:ARG])");
    expect_recorder_error(":x", "recorder spec ':x': no kind before ':'");
    expect_recorder_error("+flush", "recorder spec '+flush': no kind before '+'");
    expect_recorder_error("text+:x", "recorder spec 'text+:x': empty option after '+'");
    expect_recorder_error("text++flush:x", "recorder spec 'text++flush:x': empty option after '+'");
    expect_recorder_error("text:", "recorder spec 'text:': nothing after ':'");
    char long_kind[80];
    memset(long_kind, 'k', 64);
    strcpy(long_kind + 64, ":x");
    char message[200];
    snprintf(message, sizeof message, "recorder spec '%s': kind is too long", long_kind);
    expect_recorder_error(long_kind, message);
}

static void test_spec_shape_recorder_options(void **state)
{
    expect_recorder_error("text+a+b+c+d+e+f+g+h+i:x",
                          "recorder spec 'text+a+b+c+d+e+f+g+h+i:x': too many options");
    char spec[80];
    char option[40];
    memset(option, 'o', 32);
    option[32] = '\0';
    snprintf(spec, sizeof spec, "text+%s:x", option);
    char message[200];
    snprintf(message, sizeof message, "recorder spec '%s': option '%s' is too long", spec,
             option);
    expect_recorder_error(spec, message);
}

static void test_spec_shape_filter(void **state)
{
    expect_filter_error("", "filter spec '': empty (expected KIND[:ARG])");
    expect_filter_error(":x", "filter spec ':x': no kind before ':'");
    expect_filter_error("+x", "filter spec '+x': no kind before '+'");
    expect_filter_error("include+:x", "filter spec 'include+:x': empty option after '+'");
    expect_filter_error("include:", "filter spec 'include:': nothing after ':'");
    char long_kind[80];
    memset(long_kind, 'k', 70);
    strcpy(long_kind + 70, ":x");
    char message[400];
    snprintf(message, sizeof message, "filter spec '%s': kind is too long", long_kind);
    expect_filter_error(long_kind, message);
    /* The longest kind that fits is looked up, and reported as unknown. */
    memset(long_kind, 'k', 63);
    strcpy(long_kind + 63, ":x");
    snprintf(message, sizeof message,
             "filter spec '%s': unknown kind '%.63s' (known: on-value, not-on-value, "
             "on-change, max-depth, min-duration, include, exclude)",
             long_kind, long_kind);
    expect_filter_error(long_kind, message);
}

/* ':' ends the kind; what follows is the argument, ':' and '+' included. */
static void test_spec_argument_keeps_separators(void **state)
{
    pk_error err = {{0}};
    pk_filter *f = pk_filter_open("include:a+b,c:d", &err);
    assert_non_null(f);
    pk_filter_free(f);
    f = pk_filter_open("on-value:function=a:b", &err);
    assert_non_null(f);
    pk_filter_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_units),
        cmocka_unit_test(test_duration_bare_number_is_ns),
        cmocka_unit_test(test_duration_errors),
        cmocka_unit_test(test_uint),
        cmocka_unit_test(test_uint_errors),
        cmocka_unit_test(test_parse_without_error_buffer),
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_spec_shape_recorder),
        cmocka_unit_test(test_spec_shape_recorder_options),
        cmocka_unit_test(test_spec_shape_filter),
        cmocka_unit_test(test_spec_argument_keeps_separators),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
