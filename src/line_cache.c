/*
 * line_cache.c — what symbols.c resolved in a library whose DWARF is a
 * separate debug file (a Debian -dbg package's, under
 * /usr/lib/debug/.build-id), kept on disk by the library's build-id.
 * Opening such DWARF costs a process tens of milliseconds: libdw inflates
 * every compressed debug section of it at once (libc6-dbg's are 10 MB), to
 * name the few call sites a program has in libc. A later process reads the
 * names from the file instead, and opens the DWARF only for an address the
 * file does not hold.
 *
 * One file per build-id in the cache directory, "BUILD-ID.lines": a line
 * per address, "@OFFSET\tFUNCTION\tFILE\tLINE\n", OFFSET in hex from the
 * library's start. A build-id names the library's contents, so an entry
 * never goes stale. Processes append whole lines (O_APPEND, one write
 * each). A line that does not parse is skipped, so a damaged file costs
 * lookups, never a wrong answer: a line a failed write cut short runs into
 * the next one, and the '@' that starts every entry then stands in its
 * offset or line number, or its tabs are too many. Called with symbols.c's
 * lock held.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEBUG_ROOT "/usr/lib/debug/.build-id"
#define LINE_MAX_BYTES 4096 /* a longer entry is not kept */

/* The cache directory: PIKOC_SYMBOL_CACHE, else under XDG_CACHE_HOME or HOME; "" for none. */
static const char *cache_dir(void)
{
    static char dir[PATH_MAX];
    static bool decided;
    if (decided)
        return dir;
    decided = true;
    const char *set = pk_setting("PIKOC_SYMBOL_CACHE");
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n = -1;
    if (set)
        n = strcmp(set, "off") == 0 ? -1 : snprintf(dir, sizeof dir, "%s", set);
    else if (xdg && *xdg == '/')
        n = snprintf(dir, sizeof dir, "%s/pikoc/symbols", xdg);
    else if (home && *home == '/')
        n = snprintf(dir, sizeof dir, "%s/.cache/pikoc/symbols", home);
    if (n < 0 || (size_t)n >= sizeof dir)
        dir[0] = '\0';
    return dir;
}

/* mkdir -p of dir (made 0700: another user has no business appending). */
static bool make_dirs(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char end = *p;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return false;
        if (end == '\0')
            return true;
        *p = '/';
    }
}

bool pk_line_cache_path(const unsigned char *build_id, size_t len, char *path, size_t size)
{
    const char *dir = cache_dir();
    if (!*dir || len < 2 || len > 64)
        return false;
    char hex[129];
    for (size_t i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", build_id[i]);
    char debug_file[PATH_MAX];
    snprintf(debug_file, sizeof debug_file, DEBUG_ROOT "/%.2s/%s.debug", hex, hex + 2);
    if (access(debug_file, R_OK) != 0)
        return false; /* its DWARF, if any, is in the library: cheap to open */
    int n = snprintf(path, size, "%s/%s.lines", dir, hex);
    return n > 0 && (size_t)n < size;
}

/* "@OFFSET\tFUNCTION\tFILE\tLINE" -> its parts (cut in place); false when it is not that. */
static bool parse_entry(char *text, uint64_t *offset, pk_symbol *symbol)
{
    if (*text++ != '@')
        return false;
    char *function = strchr(text, '\t');
    char *file = function ? strchr(function + 1, '\t') : NULL;
    char *line = file ? strchr(file + 1, '\t') : NULL;
    if (!line || strchr(line + 1, '\t'))
        return false;
    *function++ = *file++ = *line++ = '\0';
    char *end;
    errno = 0;
    *offset = strtoull(text, &end, 16);
    if (end == text || *end || errno)
        return false;
    unsigned long number = strtoul(line, &end, 10);
    if (end == line || *end || errno || number > UINT_MAX || !*function || !*file)
        return false;
    *symbol = (pk_symbol){.function = function, .file = file, .line = (unsigned)number};
    return true;
}

/*
 * The cache file for reading, when it is a regular file and not a symbolic
 * link: a FIFO put in its place would block the drain in open, and a device
 * such as /dev/zero would feed it forever (the run could never end); a link
 * would take names from wherever whoever made it pointed it.
 */
static FILE *open_regular(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
    struct stat st;
    FILE *in = NULL;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        in = fdopen(fd, "r");
    if (!in && fd >= 0)
        close(fd);
    return in;
}

void pk_line_cache_load(const char *path, uint64_t size, pk_line_cache_add add, void *user)
{
    FILE *in = open_regular(path);
    if (!in)
        return;
    char text[LINE_MAX_BYTES];
    while (fgets(text, sizeof text, in)) {
        size_t len = strlen(text);
        bool whole = len > 0 && text[len - 1] == '\n';
        if (!whole) { /* too long, or cut short by a writer that died: skip the rest of it */
            int c;
            while ((c = getc(in)) != EOF && c != '\n')
                ;
            continue;
        }
        text[len - 1] = '\0';
        uint64_t offset;
        pk_symbol symbol;
        if (parse_entry(text, &offset, &symbol) && offset < size)
            add(offset, &symbol, user);
    }
    fclose(in);
}

void pk_line_cache_append(const char *path, uint64_t offset, const pk_symbol *symbol)
{
    if (strpbrk(symbol->function, "\t\n") || strpbrk(symbol->file, "\t\n"))
        return;
    char text[LINE_MAX_BYTES];
    int n = snprintf(text, sizeof text, "@%llx\t%s\t%s\t%u\n", (unsigned long long)offset,
                     symbol->function, symbol->file, symbol->line);
    if (n < 0 || (size_t)n >= sizeof text)
        return;
    /* Never blocked by a FIFO in the file's place (ENXIO without a reader),
     * never written through a symbolic link (ELOOP). */
    const int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW;
    int fd = open(path, flags, 0600);
    if (fd < 0 && errno == ENOENT && make_dirs(cache_dir()))
        fd = open(path, flags, 0600);
    if (fd < 0)
        return; /* a cache that cannot be written costs later processes time, nothing else */
    ssize_t written = write(fd, text, (size_t)n);
    (void)written; /* a short write leaves a cut line, which the next load skips */
    close(fd);
}
