/*
 * test_symbols.c — the symbol cache (function, file and line of addresses in
 * this process, call sites, name globs), interning and the host facts.
 * Needs -g; the functions under test are kept out of line, so the expected
 * names and lines hold at any optimization level.
 */
#include "internal.h"

#include <ctype.h>
#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define THIS_FILE "tests/test_symbols.c"
/* Kept out of line and uncloned, so each function keeps its own name and address. */
#if defined(__clang__)
#define NOINLINE __attribute__((noinline, used))
#else
#define NOINLINE __attribute__((noipa, used))
#endif

/* ---- functions to resolve ------------------------------------------------- */

/*
 * A function's line is the one holding its name (not its brace, which the
 * line table would give): each expected line is taken on that very line,
 * so a formatter must not split these lines.
 */
/* clang-format off */
int pk_test_sym_global(int x);
static const unsigned global_line = __LINE__; NOINLINE int pk_test_sym_global(int x)
{
    return x * 3 + 1;
}

static const unsigned static_line = __LINE__; NOINLINE static int pk_test_sym_static(int x)
{
    return x * 5 + 2;
}
/* clang-format on */

/* Gives its own return address: the call site in its caller. */
NOINLINE static void *pk_test_sym_capture(void)
{
    return __builtin_return_address(0);
}

/* Not a function: a glob over function names must not report it. */
extern int pk_test_sym_variable;
int pk_test_sym_variable = 7;

/* A function never looked up before the fork test, so the child must resolve it. */
/* clang-format off */
static const unsigned fork_line = __LINE__; NOINLINE static int fork_only_function(int x)
{
    return x - 1;
}
/* clang-format on */

static void assert_ends_with(const char *text, const char *suffix)
{
    size_t length = strlen(text);
    size_t suffix_length = strlen(suffix);
    if (length < suffix_length || strcmp(text + length - suffix_length, suffix) != 0)
        fail_msg("'%s' does not end with '%s'", text, suffix);
}

/* ---- lookups -------------------------------------------------------------- */

static void test_global_function(void **state)
{
    pk_symbol symbol;
    pk_symbols_lookup((uintptr_t)&pk_test_sym_global, &symbol);
    assert_string_equal(symbol.function, "pk_test_sym_global");
    assert_ends_with(symbol.file, THIS_FILE);
    assert_int_equal(symbol.line, global_line);
    assert_int_equal(pk_test_sym_global(1), 4);
}

static void test_static_function(void **state)
{
    pk_symbol symbol;
    pk_symbols_lookup((uintptr_t)&pk_test_sym_static, &symbol);
    assert_string_equal(symbol.function, "pk_test_sym_static");
    assert_ends_with(symbol.file, THIS_FILE);
    assert_int_equal(symbol.line, static_line);
    assert_int_equal(pk_test_sym_static(1), 7);
}

static void test_call_site(void **state)
{
    void *return_address = pk_test_sym_capture(); unsigned call_line = __LINE__;
    pk_symbol site;
    pk_symbols_lookup_site((uintptr_t)return_address, &site);
    assert_string_equal(site.function, "test_call_site");
    assert_ends_with(site.file, THIS_FILE);
    assert_int_equal(site.line, call_line);
}

static void test_unknown_address(void **state)
{
    pk_symbol symbol;
    pk_symbols_lookup(0x10, &symbol);
    assert_string_equal(symbol.function, "??");
    assert_string_equal(symbol.file, "");
    assert_int_equal(symbol.line, 0);
    pk_symbols_lookup(0, &symbol);
    assert_string_equal(symbol.function, "??");
    assert_string_equal(symbol.file, "");
    assert_int_equal(symbol.line, 0);
    pk_symbols_lookup_site(0, &symbol);
    assert_string_equal(symbol.function, "??");
}

/*
 * A function of the C library reached through a pointer. toupper has no
 * alias in glibc and no AddressSanitizer interceptor, so its name is exact.
 */
static int (*volatile libc_function)(int) = toupper;

static void test_libc_function(void **state)
{
    pk_symbol symbol;
    pk_symbols_lookup((uintptr_t)libc_function, &symbol);
    assert_string_equal(symbol.function, "toupper");
}

static void test_cache_returns_same_strings(void **state)
{
    pk_symbol first, second;
    pk_symbols_lookup((uintptr_t)&pk_test_sym_static, &first);
    pk_symbols_lookup((uintptr_t)&pk_test_sym_static, &second);
    assert_ptr_equal(first.function, second.function);
    assert_ptr_equal(first.file, second.file);
    assert_int_equal(first.line, second.line);
    /* every string a lookup gives is interned */
    assert_ptr_equal(first.function, pk_intern("pk_test_sym_static"));
    assert_ptr_equal(first.file, pk_intern(first.file));
}

/* Many distinct addresses force the shared table and the front cache to grow and collide. */
static void test_many_addresses(void **state)
{
    uintptr_t base = (uintptr_t)&pk_test_sym_global;
    for (int round = 0; round < 2; round++) {
        for (uintptr_t offset = 0; offset < 5000; offset++) {
            pk_symbol symbol;
            pk_symbols_lookup(0x1000 + offset * 16, &symbol);
            assert_string_equal(symbol.function, "??");
        }
        pk_symbol symbol;
        pk_symbols_lookup(base, &symbol);
        assert_string_equal(symbol.function, "pk_test_sym_global");
        assert_int_equal(symbol.line, global_line);
    }
}

/* A library loaded after the modules were first read is found on a re-report. */
static void test_library_loaded_later(void **state)
{
    pk_symbol symbol;
    pk_symbols_lookup((uintptr_t)&pk_test_sym_global, &symbol); /* modules already read */
    void *library = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!library)
        skip();
    void *function = dlsym(library, "sqlite3_libversion");
    assert_non_null(function);
    pk_symbols_lookup((uintptr_t)function, &symbol);
    assert_string_equal(symbol.function, "sqlite3_libversion");
    dlclose(library);
}

/* The span of the loaded object at bias (pk_object_span). */
struct object_span {
    uintptr_t bias, start, end;
};

static int find_span(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct object_span *span = data;
    return info->dlpi_addr == span->bias && pk_object_span(info, &span->start, &span->end);
}

/* A library of the test build, opened; skips when this test runs without it. */
static void *open_plugin(const char *path)
{
    if (access(path, F_OK) != 0)
        skip(); /* built by make check: not there when this test runs alone */
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!library)
        fail_msg("%s", dlerror());
    return library;
}

/*
 * A library whose close began keeps its names once it is unmapped, though
 * the module list is read again meanwhile (a lookup after code went) and
 * another library was loaded where it was: from its file, at its bias,
 * until its close ends.
 */
static void test_closing_library_named_after_the_unmapping(void **state)
{
    (void)state;
    void *library = open_plugin(PK_TEST_PLUGIN "/plugin_one.so");
    uintptr_t square = (uintptr_t)dlsym(library, "plugin_square");
    struct link_map *map = NULL;
    assert_int_equal(dlinfo(library, RTLD_DI_LINKMAP, &map), 0);
    struct object_span span = {.bias = (uintptr_t)map->l_addr};
    assert_int_equal(dl_iterate_phdr(find_span, &span), 1);
    uintptr_t inside = (uintptr_t)map->l_ld;
    char path[PATH_MAX];
    assert_non_null(realpath(map->l_name, path));
    pk_symbols_forget(1, 2); /* code went elsewhere: the close reads the maps */
    pk_symbols_closing(inside, span.bias, path);
    assert_int_equal(dlclose(library), 0);
    assert_int_equal(dl_iterate_phdr(find_span, &span), 0);     /* unmapped */
    void *other = open_plugin(PK_TEST_PLUGIN "/plugin_two.so"); /* maybe where it was */

    pk_symbols_forget(1, 2); /* the next lookup reads the maps again */
    pk_symbol symbol;
    pk_symbols_lookup(square, &symbol);
    assert_string_equal(symbol.function, "plugin_square");
    assert_non_null(strstr(symbol.file, "plugin_one.c"));

    pk_symbols_forget(span.start, span.end); /* its unload, then the close's end */
    pk_symbols_closed(inside);
    pk_symbols_lookup(square, &symbol);
    bool two_there = dlsym(other, "plugin_square") == (void *)square;
    assert_string_equal(symbol.function, two_there ? "plugin_square" : "??");
    if (two_there)
        assert_non_null(strstr(symbol.file, "plugin_two.c"));
    dlclose(other);
}

/* A forked child has a new pid: the module list is read again for it. */
static void test_lookup_in_forked_child(void **state)
{
    pk_symbol symbol;
    pk_symbols_lookup((uintptr_t)&pk_test_sym_global, &symbol);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        pk_symbols_lookup((uintptr_t)&fork_only_function, &symbol);
        bool ok = strcmp(symbol.function, "fork_only_function") == 0 &&
                  symbol.line == fork_line && fork_only_function(1) == 0;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- interning ------------------------------------------------------------ */

static void test_intern(void **state)
{
    char buffer[] = "pikoc interned";
    const char *first = pk_intern(buffer);
    assert_ptr_not_equal(first, buffer);
    assert_ptr_equal(pk_intern("pikoc interned"), first);
    buffer[0] = 'P';
    assert_string_equal(first, "pikoc interned");
    const char *other = pk_intern(buffer);
    assert_ptr_not_equal(other, first);
    assert_string_equal(other, "Pikoc interned");
    assert_ptr_equal(pk_intern(NULL), pk_intern(""));
}

static void test_intern_many(void **state)
{
    const char *kept[3000];
    char name[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "name-%d", i);
        kept[i] = pk_intern(name);
    }
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "name-%d", i);
        assert_ptr_equal(pk_intern(name), kept[i]);
        assert_string_equal(kept[i], name);
    }
}

/* ---- matching names -------------------------------------------------------- */

typedef struct found_names {
    size_t count;
    const char *names[16];
    uintptr_t addresses[16];
} found_names;

static void collect(uintptr_t address, const char *name, void *user)
{
    found_names *found = user;
    if (found->count < PK_ARRAY_SIZE(found->names)) {
        found->names[found->count] = name;
        found->addresses[found->count] = address;
    }
    found->count++;
}

static uintptr_t address_found(const found_names *found, const char *name)
{
    for (size_t i = 0; i < found->count && i < PK_ARRAY_SIZE(found->names); i++) {
        if (strcmp(found->names[i], name) == 0)
            return found->addresses[i];
    }
    return 0;
}

static void test_each_match_glob(void **state)
{
    const char *globs[] = {"pk_test_sym_*"};
    found_names found = {0};
    pk_error err = {{0}};
    assert_int_equal(pk_symbols_each_match(globs, 1, collect, &found, &err), 0);
    assert_int_equal(found.count, 3);
    assert_int_equal(address_found(&found, "pk_test_sym_global"), (uintptr_t)&pk_test_sym_global);
    assert_int_equal(address_found(&found, "pk_test_sym_static"), (uintptr_t)&pk_test_sym_static);
    assert_int_equal(address_found(&found, "pk_test_sym_capture"),
                     (uintptr_t)&pk_test_sym_capture);
}

static void test_each_match_any_glob(void **state)
{
    const char *globs[] = {"pk_test_sym_glob?l", "fork_only_*", "no_such_function_*"};
    found_names found = {0};
    pk_error err = {{0}};
    assert_int_equal(pk_symbols_each_match(globs, 3, collect, &found, &err), 0);
    assert_int_equal(found.count, 2);
    assert_int_equal(address_found(&found, "pk_test_sym_global"), (uintptr_t)&pk_test_sym_global);
    assert_int_equal(address_found(&found, "fork_only_function"), (uintptr_t)&fork_only_function);
}

static void test_each_match_libc(void **state)
{
    const char *globs[] = {"toupper"};
    found_names found = {0};
    pk_error err = {{0}};
    assert_int_equal(pk_symbols_each_match(globs, 1, collect, &found, &err), 0);
    assert_int_equal(found.count, 1);
    assert_int_equal(address_found(&found, "toupper"), (uintptr_t)libc_function);
}

static void test_each_match_nothing(void **state)
{
    const char *globs[] = {"no_such_function_anywhere"};
    found_names found = {0};
    pk_error err = {{0}};
    assert_int_equal(pk_symbols_each_match(globs, 1, collect, &found, &err), 0);
    assert_int_equal(found.count, 0);
    assert_int_equal(pk_symbols_each_match(globs, 0, collect, &found, &err), 0);
    assert_int_equal(found.count, 0);
}

/* ---- host facts ------------------------------------------------------------- */

static int test_argc;
static char **test_argv;

/* The arguments main received, joined with single spaces. */
static void test_command_line(void **state)
{
    char expected[4096] = "";
    for (int i = 0; i < test_argc; i++) {
        if (i > 0)
            strncat(expected, " ", sizeof expected - strlen(expected) - 1);
        strncat(expected, test_argv[i], sizeof expected - strlen(expected) - 1);
    }
    const char *line = pk_command_line();
    assert_string_equal(line, expected);
    assert_non_null(strstr(line, "test_symbols"));
    assert_ptr_equal(pk_command_line(), line);
}

static void test_host_name(void **state)
{
    const char *name = pk_host_name();
    char expected[256] = "";
    assert_int_equal(gethostname(expected, sizeof expected - 1), 0);
    assert_string_equal(name, expected);
    assert_true(strlen(name) > 0);
    assert_ptr_equal(pk_host_name(), name);
}

int main(int argc, char **argv)
{
    test_argc = argc;
    test_argv = argv;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_global_function),
        cmocka_unit_test(test_static_function),
        cmocka_unit_test(test_call_site),
        cmocka_unit_test(test_unknown_address),
        cmocka_unit_test(test_libc_function),
        cmocka_unit_test(test_cache_returns_same_strings),
        cmocka_unit_test(test_many_addresses),
        cmocka_unit_test(test_library_loaded_later),
        cmocka_unit_test(test_closing_library_named_after_the_unmapping),
        cmocka_unit_test(test_lookup_in_forked_child),
        cmocka_unit_test(test_intern),
        cmocka_unit_test(test_intern_many),
        cmocka_unit_test(test_each_match_glob),
        cmocka_unit_test(test_each_match_any_glob),
        cmocka_unit_test(test_each_match_libc),
        cmocka_unit_test(test_each_match_nothing),
        cmocka_unit_test(test_command_line),
        cmocka_unit_test(test_host_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
