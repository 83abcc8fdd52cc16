/*
 * test_line_cache.c — the on-disk names of libraries with a separate debug
 * file (src/line_cache.c): which file keeps a build-id's names, what an
 * append writes, what a load believes, and that a damaged file, a FIFO, a
 * device or a symbolic link in a cache file's place never gives a wrong name
 * nor blocks.
 */
#include "internal.h"
#include "temp_dir.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>

/* What a load handed over: "OFFSET FUNCTION FILE LINE" per entry, one per line. */
typedef struct loaded {
    char text[4096];
    int count;
} loaded;

static void collect(uint64_t offset, const pk_symbol *symbol, void *user)
{
    loaded *l = user;
    size_t used = strlen(l->text);
    snprintf(l->text + used, sizeof l->text - used, "%llx %s %s %u\n", (unsigned long long)offset,
             symbol->function, symbol->file, symbol->line);
    l->count++;
}

static loaded load(const char *path, uint64_t size)
{
    loaded l = {.count = 0};
    pk_line_cache_load(path, size, collect, &l);
    return l;
}

static void path_in(const temp_dir *t, const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", t->dir, name);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void read_file(const char *path, char *text, size_t size)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, size - 1, f);
    text[n] = '\0';
    fclose(f);
}

static void test_append_then_load(void **state)
{
    const temp_dir *t = *state;
    char path[700], text[512];
    path_in(t, "a.lines", path, sizeof path);
    pk_line_cache_append(path, 0x1a2b, &(pk_symbol){"malloc", "malloc.c", 3287});
    pk_line_cache_append(path, 0x40, &(pk_symbol){"_dl_start", "rtld.c", 0});
    read_file(path, text, sizeof text);
    assert_string_equal(text, "@1a2b\tmalloc\tmalloc.c\t3287\n@40\t_dl_start\trtld.c\t0\n");
    loaded l = load(path, 0x10000);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.text, "1a2b malloc malloc.c 3287\n40 _dl_start rtld.c 0\n");
}

/* A name holding a tab or a newline would break its line: it is not kept. */
static void test_append_refuses_separators(void **state)
{
    const temp_dir *t = *state;
    char path[700];
    path_in(t, "b.lines", path, sizeof path);
    pk_line_cache_append(path, 0x10, &(pk_symbol){"tab\there", "f.c", 1});
    pk_line_cache_append(path, 0x20, &(pk_symbol){"ok", "new\nline.c", 2});
    struct stat st;
    assert_int_equal(stat(path, &st), -1);
    pk_line_cache_append(path, 0x30, &(pk_symbol){"ok", "f.c", 3});
    assert_int_equal(load(path, 0x100).count, 1);
}

/*
 * Every line that is not exactly "@OFFSET\tFUNCTION\tFILE\tLINE" is skipped,
 * and so is an offset at or past the library's size; the good lines around
 * them still count.
 */
static void test_load_skips_damaged_lines(void **state)
{
    const temp_dir *t = *state;
    char path[700], long_line[5000];
    path_in(t, "c.lines", path, sizeof path);
    memset(long_line, 'x', sizeof long_line);
    memcpy(long_line, "@50\tlong\t", 9);
    memcpy(long_line + sizeof long_line - 5, "\t9\n", 4);
    char text[8192];
    snprintf(text, sizeof text,
             "@10\tfirst\tf.c\t1\n"
             "@20\tcut\tf.c@30\tmerged\tf.c\t3\n" /* a write cut short, then the next */
             "@40\textra\tf.c\t4\t5\n"
             "garbage\n"
             "\n"
             "@zz\tbad_offset\tf.c\t6\n"
             "@60\tbad_line\tf.c\t7x\n"
             "@70\tbig_line\tf.c\t4294967296\n"
             "@80\t\tf.c\t8\n"
             "@90\tno_file\t\t9\n"
             "@fff\tat_the_end\tf.c\t10\n"    /* offset == size */
             "@1000\tpast_the_end\tf.c\t11\n" /* offset > size */
             "%s"
             "@a0\tlast\tf.c\t12\n"
             "@b0\tunfinished\tf.c\t13",
             long_line);
    write_file(path, text);
    loaded l = load(path, 0xfff);
    assert_string_equal(l.text, "10 first f.c 1\na0 last f.c 12\n");
    assert_int_equal(l.count, 2);
}

static void test_load_missing_file(void **state)
{
    const temp_dir *t = *state;
    char path[700];
    path_in(t, "none.lines", path, sizeof path);
    assert_int_equal(load(path, 0x1000).count, 0);
}

/* A FIFO is neither read (open would block the drain) nor written (no reader: no wait). */
static void test_fifo_in_the_file_place(void **state)
{
    const temp_dir *t = *state;
    char path[700];
    path_in(t, "fifo.lines", path, sizeof path);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(load(path, 0x1000).count, 0);
    pk_line_cache_append(path, 0x10, &(pk_symbol){"f", "f.c", 1});
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
}

/* A device is not read: /dev/zero would feed the load forever. */
static void test_device_in_the_file_place(void **state)
{
    (void)state;
    assert_int_equal(load("/dev/zero", 0x1000).count, 0);
    assert_int_equal(load("/dev/null", 0x1000).count, 0);
}

/* A symbolic link is neither followed to read nor written through. */
static void test_link_in_the_file_place(void **state)
{
    const temp_dir *t = *state;
    char target[700], link[700], text[512];
    path_in(t, "target.lines", target, sizeof target);
    path_in(t, "link.lines", link, sizeof link);
    write_file(target, "@10\tplanted\tf.c\t1\n");
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(load(link, 0x1000).count, 0);
    pk_line_cache_append(link, 0x20, &(pk_symbol){"through", "f.c", 2});
    read_file(target, text, sizeof text);
    assert_string_equal(text, "@10\tplanted\tf.c\t1\n");
    assert_int_equal(load(target, 0x1000).count, 1);
}

#define CACHE_DIR "/nonexistent/pikoc-symbols" /* PIKOC_SYMBOL_CACHE (main); never created */

/* The hex build-id of the first debug file installed under .build-id, or false. */
static bool installed_debug_id(char hex[129])
{
    const char *root = "/usr/lib/debug/.build-id";
    DIR *top = opendir(root);
    bool found = false;
    for (struct dirent *d; top && !found && (d = readdir(top));) {
        char dir[300];
        snprintf(dir, sizeof dir, "%s/%s", root, d->d_name);
        DIR *sub = strlen(d->d_name) == 2 ? opendir(dir) : NULL;
        for (struct dirent *e; sub && !found && (e = readdir(sub));) {
            size_t len = strlen(e->d_name);
            found = len > 6 && len - 6 <= 126 && strcmp(e->d_name + len - 6, ".debug") == 0;
            if (found)
                snprintf(hex, 129, "%s%.*s", d->d_name, (int)(len - 6), e->d_name);
        }
        if (sub)
            closedir(sub);
    }
    if (top)
        closedir(top);
    return found;
}

/* A build-id with a debug file is kept, in the cache directory, by its hex. */
static void test_path_of_an_installed_debug_file(void **state)
{
    (void)state;
    char hex[129], path[4096], expected[4096];
    unsigned char id[64];
    if (!installed_debug_id(hex))
        skip(); /* no -dbg package installed */
    size_t len = strlen(hex) / 2;
    for (size_t i = 0; i < len; i++)
        assert_int_equal(sscanf(hex + 2 * i, "%2hhx", &id[i]), 1);
    assert_true(pk_line_cache_path(id, len, path, sizeof path));
    snprintf(expected, sizeof expected, CACHE_DIR "/%s.lines", hex);
    assert_string_equal(path, expected);
    assert_false(pk_line_cache_path(id, len, path, strlen(expected))); /* no room for its end */
}

/* A build-id too short or too long, or one without a debug file, is not kept. */
static void test_path_needs_a_debug_file(void **state)
{
    (void)state;
    char path[4096];
    const unsigned char id[20] = {0xde, 0xad, 0xbe, 0xef};
    assert_false(pk_line_cache_path(id, sizeof id, path, sizeof path));
    assert_false(pk_line_cache_path(id, 1, path, sizeof path));
    unsigned char long_id[65] = {0};
    assert_false(pk_line_cache_path(long_id, sizeof long_id, path, sizeof path));
}

int main(void)
{
    setenv("PIKOC_SYMBOL_CACHE", CACHE_DIR, 1);
    alarm(30); /* a FIFO or a device that blocked or fed a load would hang, not fail, the test */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_then_load, temp_dir_make, temp_dir_remove),
        cmocka_unit_test_setup_teardown(test_append_refuses_separators, temp_dir_make,
                                        temp_dir_remove),
        cmocka_unit_test_setup_teardown(test_load_skips_damaged_lines, temp_dir_make,
                                        temp_dir_remove),
        cmocka_unit_test_setup_teardown(test_load_missing_file, temp_dir_make, temp_dir_remove),
        cmocka_unit_test_setup_teardown(test_fifo_in_the_file_place, temp_dir_make,
                                        temp_dir_remove),
        cmocka_unit_test(test_device_in_the_file_place),
        cmocka_unit_test_setup_teardown(test_link_in_the_file_place, temp_dir_make,
                                        temp_dir_remove),
        cmocka_unit_test(test_path_of_an_installed_debug_file),
        cmocka_unit_test(test_path_needs_a_debug_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
