/*
 * symbols.c — the one symbol cache: addresses of this process to function,
 * source file and line (elfutils libdw), plus string interning. Runs on the
 * drain thread or at enable time, never on a monitored thread's hot path.
 * One mutex serializes everything that writes; a repeated lookup reads the
 * address table without the lock: no allocation, no libdw, one hash probe.
 */
#include "internal.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <errno.h>
#include <elfutils/libdwfl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- state ---------------------------------------------------------------- */

/* Interned strings are packed into blocks that are only freed at teardown. */
typedef struct arena_block {
    struct arena_block *next;
    size_t used;
    size_t size;
    char bytes[];
} arena_block;

#define ARENA_BLOCK_BYTES 65536
#define STRINGS_INITIAL_SLOTS 1024
#define CACHE_INITIAL_SLOTS 1024

/* One resolved address; address 0 marks an empty slot (0 is never cached). */
typedef struct cache_entry {
    uintptr_t address; /* published last, with release order */
    pk_symbol symbol;
} cache_entry;

/*
 * Resolved addresses: open addressing with linear probing and no deletion,
 * so readers need no lock. Entries never change once published; a full
 * table is copied into a larger one and kept (retired) until teardown,
 * because a reader may still be probing it.
 */
typedef struct address_table {
    struct address_table *retired; /* the table this one replaced */
    size_t slots;                  /* a power of two */
    size_t count;
    cache_entry entries[];
} address_table;

/*
 * Address ranges of a module's compilation units ("cu" in libdw's names: one
 * compiled source file each), for DWARF without .debug_aranges.
 */
typedef struct cu_range {
    Dwarf_Addr low;
    Dwarf_Addr high;
    Dwarf_Die *cu; /* owned by libdw, valid while the module is */
} cu_range;

typedef struct cu_index {
    Dwarf_Addr bias;
    bool built;
    cu_range *ranges;
    size_t count;
    size_t capacity;
} cu_index;

/*
 * What is kept of a module met since the last report (module pointers die
 * with a re-report): its compilation-unit index, built when libdw's answer
 * fails, and whether what is resolved in it is kept on disk (line_cache.c)
 * and where, its cache read when the module is first met.
 */
typedef struct module_state {
    Dwfl_Module *module;
    cu_index cus;
    bool lines_read;
    bool cached;
    Dwarf_Addr start;
    char path[PATH_MAX];
} module_state;

/* A library whose close began (pk_symbols_closing): where, and its file. */
struct closing_library {
    uintptr_t inside; /* an address in it */
    uintptr_t bias;   /* its load bias */
    const char *path; /* interned; as the maps name it */
    bool over;        /* put back over another module that held `inside` */
};

/* __cxa_demangle, found at run time: libstdc++ is loaded only by C++ programs. */
typedef char *(*demangle_function)(const char *mangled, char *buffer, size_t *length,
                                   int *status);

static struct {
    pthread_mutex_t lock;
    /* the libdw session and what it was built from */
    Dwfl *dwfl;
    pid_t reported_pid;
    unsigned long long reported_generation;
    /* interned strings: an open-addressing set of pointers into the arena */
    const char **strings;
    size_t string_slots;
    size_t string_count;
    arena_block *arena;
    /* resolved addresses; read without the lock through atomic loads */
    address_table *table;
    /* code was unloaded (pk_symbols_forget): report the modules again first */
    bool modules_stale;
    /* in the program's own process, the loaded objects' spans while a caller
     * that may report the modules holds the lock (read before it: session_lock) */
    const struct code_ranges *ranges;
    /* the modules met since the last report */
    module_state *modules;
    size_t module_count;
    size_t module_capacity;
    /* Libraries whose close began and has not ended (pk_symbols_closed, or
     * their unload: pk_symbols_forget): put back into the module list from
     * their files after each report that lacks them, as their destructors'
     * events come after the unmapping. */
    struct closing_library *closing;
    size_t closing_count;
    size_t closing_capacity;
} symbols = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Read and written without the lock (atomics), see demangler_refresh. */
static demangle_function demangler;
static unsigned long long demangler_checked_generation;

/* ---- hashing -------------------------------------------------------------- */

/* Fibonacci hashing: code addresses share their low bits, the product mixes them. */
static size_t address_hash(uintptr_t address)
{
    return (size_t)(((uint64_t)address * 0x9E3779B97F4A7C15ull) >> 32);
}

/* FNV-1a: names are short, and this is only used off the fast path. */
size_t pk_string_hash(const char *s)
{
    uint64_t hash = 0xcbf29ce484222325ull;
    for (; *s; s++)
        hash = (hash ^ (unsigned char)*s) * 0x100000001b3ull;
    return (size_t)hash;
}

/* ---- interning (lock held) ------------------------------------------------ */

static char *arena_copy(const char *s)
{
    size_t bytes = strlen(s) + 1;
    arena_block *block = symbols.arena;
    if (!block || block->size - block->used < bytes) {
        size_t size = bytes > ARENA_BLOCK_BYTES ? bytes : ARENA_BLOCK_BYTES;
        block = pk_xcalloc(1, sizeof *block + size);
        block->size = size;
        block->next = symbols.arena;
        symbols.arena = block;
    }
    char *copy = block->bytes + block->used;
    memcpy(copy, s, bytes);
    block->used += bytes;
    return copy;
}

/* The slot holding s, or the empty slot where it belongs. */
static const char **string_slot(const char **slots, size_t slot_count, const char *s)
{
    size_t mask = slot_count - 1;
    for (size_t i = pk_string_hash(s) & mask;; i = (i + 1) & mask) {
        if (!slots[i] || strcmp(slots[i], s) == 0)
            return &slots[i];
    }
}

/* Keeps the set at most half full so probe sequences stay short. */
static void strings_reserve_one(void)
{
    if ((symbols.string_count + 1) * 2 <= symbols.string_slots)
        return;
    size_t slot_count = symbols.string_slots ? symbols.string_slots * 2 : STRINGS_INITIAL_SLOTS;
    const char **slots = pk_xcalloc(slot_count, sizeof *slots);
    for (size_t i = 0; i < symbols.string_slots; i++) {
        if (symbols.strings[i])
            *string_slot(slots, slot_count, symbols.strings[i]) = symbols.strings[i];
    }
    free(symbols.strings);
    symbols.strings = slots;
    symbols.string_slots = slot_count;
}

static const char *intern_locked(const char *s)
{
    strings_reserve_one();
    const char **slot = string_slot(symbols.strings, symbols.string_slots, s ? s : "");
    if (!*slot) {
        *slot = arena_copy(s ? s : "");
        symbols.string_count++;
    }
    return *slot;
}

const char *pk_intern(const char *s)
{
    pthread_mutex_lock(&symbols.lock);
    const char *interned = intern_locked(s);
    pthread_mutex_unlock(&symbols.lock);
    return interned;
}

/* ---- the address table ----------------------------------------------------- */

/* The published entry for address, if any. Safe without the lock; address != 0. */
static const cache_entry *table_read(uintptr_t address)
{
    const address_table *table = __atomic_load_n(&symbols.table, __ATOMIC_ACQUIRE);
    if (!table)
        return NULL;
    size_t mask = table->slots - 1;
    for (size_t i = address_hash(address) & mask;; i = (i + 1) & mask) {
        uintptr_t key = __atomic_load_n(&table->entries[i].address, __ATOMIC_ACQUIRE);
        if (key == address)
            return &table->entries[i];
        if (key == 0)
            return NULL;
    }
}

/* The slot for address: its own, or the empty one where it belongs (lock held). */
static cache_entry *table_slot(address_table *table, uintptr_t address)
{
    size_t mask = table->slots - 1;
    for (size_t i = address_hash(address) & mask;; i = (i + 1) & mask) {
        if (table->entries[i].address == address || table->entries[i].address == 0)
            return &table->entries[i];
    }
}

/*
 * A copy of the table in `slots` slots, without the addresses from
 * gone_start to gone_end, published whole; readers may still hold the old
 * one, kept as retired (lock held).
 */
static address_table *table_copy(size_t slots, uintptr_t gone_start, uintptr_t gone_end)
{
    address_table *old = symbols.table;
    address_table *table = pk_xcalloc(1, sizeof *table + slots * sizeof table->entries[0]);
    table->slots = slots;
    table->retired = old;
    for (size_t i = 0; old && i < old->slots; i++) {
        uintptr_t address = old->entries[i].address;
        if (address && (address < gone_start || address >= gone_end)) {
            *table_slot(table, address) = old->entries[i];
            table->count++;
        }
    }
    __atomic_store_n(&symbols.table, table, __ATOMIC_RELEASE);
    return table;
}

/* Keeps the table at most half full; a larger copy is published whole (lock held). */
static address_table *table_reserve_one(void)
{
    address_table *old = symbols.table;
    if (old && (old->count + 1) * 2 <= old->slots)
        return old;
    return table_copy(old ? old->slots * 2 : CACHE_INITIAL_SLOTS, 0, 0);
}

static void table_insert(uintptr_t address, const pk_symbol *symbol)
{
    address_table *table = table_reserve_one();
    cache_entry *entry = table_slot(table, address);
    entry->symbol = *symbol;
    __atomic_store_n(&entry->address, address, __ATOMIC_RELEASE);
    table->count++;
}

static void table_free_all(void)
{
    address_table *table = symbols.table;
    __atomic_store_n(&symbols.table, NULL, __ATOMIC_RELEASE);
    while (table) {
        address_table *retired = table->retired;
        free(table);
        table = retired;
    }
}

/* ---- which objects are loaded --------------------------------------------- */

/*
 * What the dynamic loader has loaded: a number that changes whenever a
 * library is loaded or unloaded (0 when the C library does not say, which
 * callers treat as "may have changed"), and optionally one address inside
 * the executable code of each object. Read without our lock held:
 * dl_iterate_phdr takes the loader's lock.
 */
typedef struct loaded_objects {
    unsigned long long generation;
    uintptr_t *code;  /* NULL when only the generation is wanted */
    size_t count;
    size_t capacity;
} loaded_objects;

static uintptr_t first_code_address(const struct dl_phdr_info *info)
{
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[i];
        if (header->p_type == PT_LOAD && (header->p_flags & PF_X) && header->p_memsz > 0)
            return (uintptr_t)(info->dlpi_addr + header->p_vaddr);
    }
    return 0;
}

static int read_loaded_object(struct dl_phdr_info *info, size_t size, void *data)
{
    loaded_objects *objects = data;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
        objects->generation = info->dlpi_adds + info->dlpi_subs;
    if (!objects->code)
        return 1; /* every entry carries the same counters: the first is enough */
    uintptr_t code = first_code_address(info);
    if (code && objects->count < objects->capacity)
        objects->code[objects->count++] = code;
    return 0;
}

/* What the loaded objects span, for the module list in the program's own process. */
struct span {
    uintptr_t start, end;
};

typedef struct code_ranges {
    struct span *spans;
    size_t count;
    size_t capacity;
} code_ranges;

static int read_span(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    code_ranges *ranges = data;
    struct span span;
    if (ranges->count < ranges->capacity && pk_object_span(info, &span.start, &span.end))
        ranges->spans[ranges->count++] = span;
    return 0;
}

static int count_loaded_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (*(size_t *)data)++;
    return 0;
}

/*
 * 0 in a drainer process: the program's loader, not this process's, says
 * what is loaded, so a miss reads the program's maps again.
 */
static unsigned long long loaded_objects_generation(void)
{
    if (pk_program() != getpid())
        return 0;
    loaded_objects objects = {0};
    dl_iterate_phdr(read_loaded_object, &objects);
    return objects.generation;
}

/* Counts first so that nothing is allocated while the loader's lock is held. */
static void loaded_objects_read(loaded_objects *objects)
{
    size_t count = 0;
    dl_iterate_phdr(count_loaded_object, &count);
    objects->capacity = count + 16; /* room for libraries loaded meanwhile */
    objects->code = pk_xcalloc(objects->capacity, sizeof *objects->code);
    objects->count = 0;
    dl_iterate_phdr(read_loaded_object, objects);
}

/*
 * The loaded objects' spans, when the module list may be reported next
 * (the program's own process only; a racy look at the session, under no
 * lock: a report without them reads the maps whole). Counted first, as
 * above.
 */
static void code_ranges_read(unsigned long long generation, code_ranges *ranges)
{
    if (pk_program() != getpid())
        return;
    if (__atomic_load_n(&symbols.dwfl, __ATOMIC_RELAXED) &&
        !__atomic_load_n(&symbols.modules_stale, __ATOMIC_RELAXED) && generation != 0 &&
        generation == __atomic_load_n(&symbols.reported_generation, __ATOMIC_RELAXED))
        return;
    size_t count = 0;
    dl_iterate_phdr(count_loaded_object, &count);
    ranges->capacity = count + 16; /* room for libraries loaded meanwhile */
    ranges->spans = pk_xcalloc(ranges->capacity, sizeof *ranges->spans);
    dl_iterate_phdr(read_span, ranges);
}

/*
 * Takes the lock for a caller that may report the modules, the loaded
 * objects' spans read first (dl_iterate_phdr takes the loader's lock: not
 * under ours); session_unlock releases both.
 */
static void session_lock(unsigned long long generation, code_ranges *ranges)
{
    *ranges = (code_ranges){0};
    code_ranges_read(generation, ranges);
    pthread_mutex_lock(&symbols.lock);
    symbols.ranges = ranges->spans ? ranges : NULL;
}

static void session_unlock(code_ranges *ranges)
{
    symbols.ranges = NULL;
    pthread_mutex_unlock(&symbols.lock);
    free(ranges->spans);
}

/*
 * Looks for __cxa_demangle again when the loaded objects changed. Called
 * without our lock held: dlsym takes the loader's lock, and a library
 * constructor holding that lock may be waiting for ours.
 */
static void demangler_refresh(unsigned long long generation)
{
    if (__atomic_load_n(&demangler, __ATOMIC_ACQUIRE))
        return;
    if (generation != 0 &&
        generation == __atomic_load_n(&demangler_checked_generation, __ATOMIC_RELAXED))
        return;
    demangle_function found = (demangle_function)dlsym(RTLD_DEFAULT, "__cxa_demangle");
    __atomic_store_n(&demangler, found, __ATOMIC_RELEASE);
    __atomic_store_n(&demangler_checked_generation, generation, __ATOMIC_RELAXED);
}

/* The demangled form of a C++ name (to free), or NULL when it is not one or cannot be. */
static char *demangled_copy(const char *name)
{
    demangle_function demangle = __atomic_load_n(&demangler, __ATOMIC_ACQUIRE);
    if (!demangle || strncmp(name, "_Z", 2) != 0)
        return NULL;
    int status = -1;
    char *demangled = demangle(name, NULL, NULL, &status);
    if (status == 0 && demangled)
        return demangled;
    free(demangled);
    return NULL;
}

/* The name to show: C++ names demangled when libstdc++ can, else as in the symbol table. */
static const char *display_name(const char *name)
{
    char *demangled = demangled_copy(name);
    const char *shown = intern_locked(demangled ? demangled : name);
    free(demangled);
    return shown;
}

/* ---- source lines (lock held) --------------------------------------------- */

/*
 * libdw 0.188 maps an address to its compilation unit through
 * .debug_aranges, which clang does not emit, and hands out the unit before
 * a gap for an address in it. When its answer does not hold the address,
 * an index of every unit's address ranges is built once for the module.
 */
/* What is kept of module, an empty entry when it is met for the first time. */
static module_state *state_of(Dwfl_Module *module)
{
    for (size_t i = 0; i < symbols.module_count; i++) {
        if (symbols.modules[i].module == module)
            return &symbols.modules[i];
    }
    pk_grow(&symbols.modules, &symbols.module_capacity, symbols.module_count,
            sizeof *symbols.modules);
    module_state *state = &symbols.modules[symbols.module_count++];
    *state = (module_state){.module = module};
    return state;
}

static void cu_index_add(cu_index *index, Dwarf_Die *cu, Dwarf_Addr low, Dwarf_Addr high)
{
    pk_grow(&index->ranges, &index->capacity, index->count, sizeof *index->ranges);
    index->ranges[index->count++] = (cu_range){low, high, cu};
}

static int compare_ranges(const void *a, const void *b)
{
    const cu_range *left = a;
    const cu_range *right = b;
    return left->low < right->low ? -1 : left->low > right->low;
}

static void cu_index_build(cu_index *index, Dwfl_Module *module)
{
    Dwarf_Die *cu = NULL;
    while ((cu = dwfl_module_nextcu(module, cu, &index->bias)) != NULL) {
        Dwarf_Addr base = 0, low = 0, high = 0;
        ptrdiff_t offset = 0;
        while ((offset = dwarf_ranges(cu, offset, &base, &low, &high)) > 0)
            cu_index_add(index, cu, low, high);
    }
    if (index->count)
        qsort(index->ranges, index->count, sizeof *index->ranges, compare_ranges);
    index->built = true;
}

/* The unit whose ranges hold a module-relative address, from the index. */
static Dwarf_Die *cu_index_find(cu_index *index, Dwarf_Addr address)
{
    size_t low = 0;
    size_t high = index->count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (index->ranges[middle].low <= address)
            low = middle + 1;
        else
            high = middle;
    }
    if (low == 0 || address >= index->ranges[low - 1].high)
        return NULL;
    return index->ranges[low - 1].cu;
}

static Dwarf_Die *cu_of(Dwfl_Module *module, uintptr_t address, Dwarf_Addr *bias)
{
    Dwarf_Die *cu = dwfl_module_addrdie(module, address, bias);
    if (cu && dwarf_haspc(cu, address - *bias) > 0)
        return cu;
    cu_index *index = &state_of(module)->cus;
    if (!index->built)
        cu_index_build(index, module);
    *bias = index->bias;
    return cu_index_find(index, address - index->bias);
}

static Dwarf_Addr row_address(Dwarf_Lines *lines, size_t row)
{
    Dwarf_Addr address = 0;
    dwarf_lineaddr(dwarf_onesrcline(lines, row), &address);
    return address;
}

static bool row_ends_sequence(Dwarf_Lines *lines, size_t row)
{
    bool ends = false;
    return dwarf_lineendsequence(dwarf_onesrcline(lines, row), &ends) == 0 && ends;
}

/*
 * The row describing address: the last one at or before it (libdw sorts a
 * unit's rows by address, end-of-sequence rows first among equals). Where
 * several rows start at address itself (a function entry without a DWARF
 * function around it), the first is the opening line.
 */
static Dwarf_Line *row_at(Dwarf_Die *cu, Dwarf_Addr address)
{
    Dwarf_Lines *lines = NULL;
    size_t count = 0;
    if (dwarf_getsrclines(cu, &lines, &count) != 0)
        return NULL;
    size_t low = 0;
    size_t high = count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (row_address(lines, middle) <= address)
            low = middle + 1;
        else
            high = middle;
    }
    if (low == 0 || row_ends_sequence(lines, low - 1))
        return NULL; /* before the table, or in a gap between sequences */
    size_t row = low - 1;
    while (row_address(lines, row) == address && row > 0 &&
           row_address(lines, row - 1) == address && !row_ends_sequence(lines, row - 1))
        row--;
    return dwarf_onesrcline(lines, row);
}

/*
 * A function's first line is the one holding its name (DW_AT_decl_line),
 * as Pikos shows a Python function's "def" line; at the entry the line
 * table gives the opening brace or the first statement instead. Only the
 * innermost function around the address counts, and only at its entry;
 * otherwise *line is left as it is.
 */
static void declared_line(Dwarf_Die *cu, Dwarf_Addr address, int *line)
{
    Dwarf_Die *scopes = NULL;
    int count = dwarf_getscopes(cu, address, &scopes);
    int i = 0;
    while (i < count && dwarf_tag(&scopes[i]) != DW_TAG_subprogram)
        i++;
    Dwarf_Addr entry = 0;
    int declared = 0;
    if (i < count && dwarf_entrypc(&scopes[i], &entry) == 0 && entry == address &&
        dwarf_decl_line(&scopes[i], &declared) == 0 && declared > 0)
        *line = declared;
    free(scopes);
}

/*
 * entry: the address starts a function. The file always comes from the
 * line table, so one file has one spelling (and libdw 0.188 cannot read
 * clang's DWARF 5 DW_AT_decl_file).
 */
static void line_of(Dwfl_Module *module, uintptr_t address, bool entry, pk_symbol *symbol)
{
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = cu_of(module, address, &bias);
    Dwarf_Line *row = cu ? row_at(cu, address - bias) : NULL;
    const char *file = row ? dwarf_linesrc(row, NULL, NULL) : NULL;
    int line = 0;
    if (!file || dwarf_lineno(row, &line) != 0)
        return;
    if (entry)
        declared_line(cu, address - bias, &line);
    symbol->file = intern_locked(file);
    symbol->line = line > 0 ? (unsigned)line : 0;
}

/* Module pointers die with a re-report: what is kept of them goes with them. */
static void modules_clear(void)
{
    for (size_t i = 0; i < symbols.module_count; i++)
        free(symbols.modules[i].cus.ranges);
    free(symbols.modules);
    symbols.modules = NULL;
    symbols.module_count = symbols.module_capacity = 0;
}

/* ---- the libdw session (lock held) ---------------------------------------- */

/*
 * Separate debug files are found on this machine only, by build-id
 * (/usr/lib/debug/.build-id, where Debian's -dbgsym packages put them).
 * dwfl_standard_find_debuginfo would also ask debuginfod servers whenever
 * DEBUGINFOD_URLS is set (Debian's login profile sets it): network round
 * trips from the drain thread in the middle of a run.
 */
static const Dwfl_Callbacks proc_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_build_id_find_debuginfo,
};

/*
 * The lines of a maps file that lie in loaded code, into out: a file's
 * mapping is kept when it overlaps the span of an object the loader has
 * (ranges); lines of no file ([vdso], the heap) are kept as they are.
 * Only in the program's own process, where libdw maps the ELF files it
 * reads: such a file would otherwise be taken for a module of that name,
 * and once the library was closed and loaded again beside it, merged with
 * the new one (at the wrong base: every name lost).
 */
static void loaded_mappings(FILE *maps, const code_ranges *ranges, FILE *out)
{
    char *line = NULL;
    size_t line_size = 0;
    ssize_t n;
    while ((n = getline(&line, &line_size, maps)) > 0) {
        unsigned long start, end;
        int at = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &start, &end, &at) < 2 || at == 0)
            continue;
        bool keep = line[at] != '/';
        for (size_t i = 0; i < ranges->count && !keep; i++)
            keep = start < ranges->spans[i].end && ranges->spans[i].start < end;
        if (keep)
            fwrite(line, 1, (size_t)n, out);
    }
    free(line);
}

static bool closing_restore(void);

/*
 * (Re)reads the module list from /proc/PID/maps (in the program's own
 * process, its loaded code only: above); modules already known are kept. A
 * program that has ended (a drainer's, after a crash) has no maps:
 * reporting none would forget every module, so that report fails first.
 */
static int session_report(unsigned long long generation, pk_error *err)
{
    pid_t pid = pk_program();
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *maps = fopen(path, "re");
    int first = maps ? getc(maps) : EOF;
    if (first == EOF) {
        if (maps)
            fclose(maps);
        return pk_fail(err, "cannot read the modules loaded in process %d: %s", (int)pid,
                       strerror(maps ? ESRCH : errno));
    }
    ungetc(first, maps);
    char *text = NULL;
    if (symbols.ranges) {
        size_t text_size = 0;
        FILE *code = open_memstream(&text, &text_size);
        if (code) {
            loaded_mappings(maps, symbols.ranges, code);
            fclose(code);
        }
        fclose(maps);
        maps = code && text_size ? fmemopen(text, text_size, "r") : NULL;
        if (!maps) {
            int error = code && !text_size ? ESRCH : errno;
            free(text);
            return pk_fail(err, "cannot read the modules loaded in process %d: %s", (int)pid,
                           strerror(error));
        }
    }
    modules_clear();
    dwfl_report_begin(symbols.dwfl);
    int status = dwfl_linux_proc_maps_report(symbols.dwfl, maps);
    fclose(maps);
    free(text);
    if (dwfl_report_end(symbols.dwfl, NULL, NULL) != 0 && status == 0)
        status = -1;
    if (status != 0)
        return pk_fail(err, "cannot read the modules loaded in process %d: %s", (int)pid,
                       status > 0 ? strerror(status) : dwfl_errmsg(-1));
    symbols.reported_pid = pid;
    symbols.reported_generation = generation;
    closing_restore();
    return 0;
}

/*
 * Makes sure a session describes the program (pk_program). Built on first
 * use; rebuilt in a forked child, whose pid the old session does not name.
 */
static int session_prepare(unsigned long long generation, pk_error *err)
{
    if (symbols.dwfl && symbols.reported_pid == pk_program())
        return 0;
    modules_clear();
    if (symbols.dwfl)
        dwfl_end(symbols.dwfl);
    symbols.closing_count = 0; /* a forked child's parent's closes are not its own */
    symbols.dwfl = dwfl_begin(&proc_callbacks);
    if (!symbols.dwfl)
        return pk_fail(err, "cannot start elfutils libdw: %s", dwfl_errmsg(-1));
    if (session_report(generation, err) != 0) {
        dwfl_end(symbols.dwfl);
        symbols.dwfl = NULL;
        return -1;
    }
    return 0;
}

/* Re-reports the modules when a library was loaded or unloaded since the last report. */
static int session_refresh(unsigned long long generation, pk_error *err)
{
    if (generation != 0 && generation == symbols.reported_generation)
        return 0;
    return session_report(generation, err);
}

/*
 * libdw can answer with the module before a gap in its list for an address
 * in the gap (where a library loaded since now lies): only a module whose
 * range holds the address counts.
 */
static Dwfl_Module *module_holding(uintptr_t address)
{
    Dwfl_Module *module = dwfl_addrmodule(symbols.dwfl, address);
    Dwarf_Addr low, high;
    if (module && dwfl_module_info(module, NULL, &low, &high, NULL, NULL, NULL, NULL) &&
        (address < low || address >= high))
        return NULL;
    return module;
}

/* Whether the module list holds the library of `path` ("": any) at `inside`. */
static bool holds_library(uintptr_t inside, const char *path)
{
    Dwfl_Module *module = module_holding(inside);
    const char *name =
        module ? dwfl_module_info(module, NULL, NULL, NULL, NULL, NULL, NULL, NULL) : NULL;
    return name && (!*path || strcmp(name, path) == 0);
}

/*
 * Puts each closing library the module list lacks (unmapped, and a report
 * read the maps since, maybe with another library loaded there) back into
 * it from its file, at its bias; the library lookups find first, being
 * reported last. False when one could not be (its file is gone).
 */
static bool closing_restore(void)
{
    bool all = true;
    for (size_t i = 0; i < symbols.closing_count; i++) {
        struct closing_library *c = &symbols.closing[i];
        if (holds_library(c->inside, c->path))
            continue;
        c->over |= module_holding(c->inside) != NULL;
        dwfl_report_begin_add(symbols.dwfl);
        all &= dwfl_report_elf(symbols.dwfl, c->path, c->path, -1, c->bias, true) != NULL;
        dwfl_report_end(symbols.dwfl, NULL, NULL);
    }
    return all;
}

/* The module holding address; a library dlopen'ed since the last report is found too. */
static Dwfl_Module *module_at(uintptr_t address, unsigned long long generation)
{
    if (session_prepare(generation, NULL) != 0)
        return NULL;
    if (symbols.modules_stale && session_report(generation, NULL) == 0)
        symbols.modules_stale = false;
    Dwfl_Module *module = module_holding(address);
    if (!module && session_refresh(generation, NULL) == 0)
        module = module_holding(address);
    return module;
}

/* ---- resolving one address (lock held) ------------------------------------ */

static void unknown_symbol(pk_symbol *symbol)
{
    symbol->function = intern_locked("??");
    symbol->file = intern_locked("");
    symbol->line = 0;
}

/*
 * dwfl_module_addrinfo reads .symtab when present, so static functions
 * resolve. Returns whether address is the function's entry.
 */
static bool function_of(Dwfl_Module *module, uintptr_t address, pk_symbol *symbol)
{
    GElf_Off offset = 0;
    GElf_Sym elf_symbol;
    const char *name =
        dwfl_module_addrinfo(module, address, &offset, &elf_symbol, NULL, NULL, NULL);
    if (!name || !*name)
        return false;
    symbol->function = display_name(name);
    return offset == 0;
}

/* An entry of a module's line cache into the address table (start: the module's). */
static void add_cached(uint64_t offset, const pk_symbol *symbol, void *start)
{
    uintptr_t address = *(const Dwarf_Addr *)start + offset;
    if (table_read(address))
        return; /* met already: the module was read before a re-report */
    pk_symbol kept = {intern_locked(symbol->function), intern_locked(symbol->file), symbol->line};
    table_insert(address, &kept);
}

/* The module's entry, its line cache read into the address table when it is first met. */
static const module_state *lines_of(Dwfl_Module *module)
{
    module_state *lines = state_of(module);
    if (lines->lines_read)
        return lines;
    lines->lines_read = true;
    Dwarf_Addr end = 0, bias;
    const unsigned char *build_id;
    GElf_Addr build_id_address;
    int len = dwfl_module_getelf(module, &bias)
                  ? dwfl_module_build_id(module, &build_id, &build_id_address)
                  : -1;
    dwfl_module_info(module, NULL, &lines->start, &end, NULL, NULL, NULL, NULL);
    lines->cached = len > 0 && end > lines->start &&
                    pk_line_cache_path(build_id, (size_t)len, lines->path, sizeof lines->path);
    if (lines->cached)
        pk_line_cache_load(lines->path, end - lines->start, add_cached, &lines->start);
    return lines;
}

/* Names address, from the module's line cache when it has one, else from libdw. */
static void resolve(uintptr_t address, unsigned long long generation, pk_symbol *symbol)
{
    unknown_symbol(symbol);
    Dwfl_Module *module = address ? module_at(address, generation) : NULL;
    if (!module)
        return;
    const module_state *lines = lines_of(module);
    const cache_entry *kept = lines->cached ? table_read(address) : NULL;
    if (kept) {
        *symbol = kept->symbol;
        return;
    }
    bool entry = function_of(module, address, symbol);
    line_of(module, address, entry, symbol);
    if (lines->cached && *symbol->file)
        pk_line_cache_append(lines->path, address - lines->start, symbol);
}

/* ---- lookups -------------------------------------------------------------- */

/*
 * A miss: resolve under the lock, unless another thread did meanwhile.
 * Unknown addresses are cached too, so an address outside every module
 * costs at most one re-report.
 */
static void lookup_slow(uintptr_t address, pk_symbol *out)
{
    unsigned long long generation = loaded_objects_generation();
    demangler_refresh(generation);
    code_ranges ranges;
    session_lock(generation, &ranges);
    const cache_entry *entry = address ? table_read(address) : NULL;
    if (entry) {
        *out = entry->symbol;
    } else {
        resolve(address, generation, out);
        if (address && !table_read(address)) /* a line cache may have added it */
            table_insert(address, out);
    }
    session_unlock(&ranges);
}

static unsigned long forgets; /* pk_symbols_forget calls so far */

unsigned long pk_symbols_forgotten(void)
{
    return __atomic_load_n(&forgets, __ATOMIC_ACQUIRE);
}

/*
 * Code from start to end was unloaded: the table keeps no name there, and
 * the modules are reported again before the next lookup, so that a library
 * loaded there since is named as itself.
 */
void pk_symbols_forget(uintptr_t start, uintptr_t end)
{
    __atomic_add_fetch(&forgets, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&symbols.lock);
    if (symbols.table)
        table_copy(symbols.table->slots, start, end);
    symbols.modules_stale = true;
    size_t kept = 0;
    for (size_t i = 0; i < symbols.closing_count; i++)
        if (symbols.closing[i].inside < start || symbols.closing[i].inside >= end)
            symbols.closing[kept++] = symbols.closing[i];
    symbols.closing_count = kept;
    pthread_mutex_unlock(&symbols.lock);
}

void pk_symbols_prepare(void)
{
    unsigned long long generation = loaded_objects_generation();
    code_ranges ranges;
    session_lock(generation, &ranges);
    session_prepare(generation, NULL);
    session_unlock(&ranges);
}

/* Notes a closing library (once: a library may be closed again before it goes). */
static void closing_add(uintptr_t inside, uintptr_t bias, const char *path)
{
    for (size_t i = 0; i < symbols.closing_count; i++)
        if (symbols.closing[i].inside == inside) {
            symbols.closing[i].bias = bias;
            symbols.closing[i].path = intern_locked(path);
            return;
        }
    pk_grow(&symbols.closing, &symbols.closing_capacity, symbols.closing_count,
            sizeof *symbols.closing);
    symbols.closing[symbols.closing_count++] =
        (struct closing_library){inside, bias, intern_locked(path), false};
}

/*
 * The list is read again now when code went since it was read (stale: an
 * unloaded library may still hold the address), and when it lacks the
 * library and may be out of date (in the program's own process when the
 * loader's generation moved, in a drainer, generation 0, always): it was
 * read before the library was loaded, and lacks the dependencies loaded
 * with it too, which the close may unload with it and whose destructors
 * run inside it. Read now, while they are mapped (the closing thread
 * waits), it has them for those events; the reading puts the closing
 * libraries back. Otherwise a library it lacks is added from its file.
 */
void pk_symbols_closing(uintptr_t inside, uintptr_t bias, const char *path)
{
    unsigned long long generation = loaded_objects_generation();
    code_ranges ranges;
    session_lock(generation, &ranges);
    bool built = symbols.dwfl && symbols.reported_pid == pk_program();
    if (session_prepare(generation, NULL) == 0) {
        if (!built)
            symbols.modules_stale = false;
        bool kept = inside && *path;
        if (kept)
            closing_add(inside, bias, path);
        bool moved = generation == 0 || generation != symbols.reported_generation;
        bool lacking = !symbols.modules_stale && inside && !holds_library(inside, path);
        if ((symbols.modules_stale || (lacking && moved)) && session_report(generation, NULL) == 0)
            symbols.modules_stale = false;
        else if (lacking && kept)
            closing_restore();
    }
    session_unlock(&ranges);
}

void pk_symbols_closed(uintptr_t inside)
{
    pthread_mutex_lock(&symbols.lock);
    for (size_t i = 0; i < symbols.closing_count; i++) {
        if (symbols.closing[i].inside != inside)
            continue;
        /* Put back over another library: that one is named again once the maps are read. */
        symbols.modules_stale |= symbols.closing[i].over;
        symbols.closing[i] = symbols.closing[--symbols.closing_count];
        break;
    }
    pthread_mutex_unlock(&symbols.lock);
}

void pk_symbols_lookup(uintptr_t address, pk_symbol *out)
{
    const cache_entry *entry = address ? table_read(address) : NULL;
    if (entry)
        *out = entry->symbol;
    else
        lookup_slow(address, out);
}

/* The call instruction ends just before the return address: its line is the call's. */
void pk_symbols_lookup_site(uintptr_t return_address, pk_symbol *out)
{
    pk_symbols_lookup(return_address ? return_address - 1 : 0, out);
}

void pk_symbols_frame(uintptr_t return_address, pk_symbol *out, void *user)
{
    (void)user;
    pk_symbols_lookup_site(return_address, out);
}

/* ---- matching function names ---------------------------------------------- */

typedef struct symbol_match {
    uintptr_t address;
    const char *name; /* interned */
} symbol_match;

typedef struct match_search {
    const char *const *globs;
    size_t glob_count;
    symbol_match *found;
    size_t count;
    size_t capacity;
} match_search;

static bool matches_any(const match_search *search, const char *name)
{
    for (size_t i = 0; i < search->glob_count; i++) {
        if (pk_glob_match(search->globs[i], name))
            return true;
    }
    return false;
}

static void search_add(match_search *search, uintptr_t address, const char *name)
{
    pk_grow(&search->found, &search->capacity, search->count, sizeof *search->found);
    search->found[search->count++] = (symbol_match){address, name};
}

/*
 * A function symbol defined in the module. IFUNC symbols are left out: their
 * address is the resolver's, which never runs as the function itself.
 */
static bool is_defined_function(const GElf_Sym *elf_symbol, GElf_Addr address,
                                GElf_Word section)
{
    return GELF_ST_TYPE(elf_symbol->st_info) == STT_FUNC && address != 0 &&
           section != SHN_UNDEF;
}

/*
 * A C++ name matches by its mangled or its demangled spelling; the shown
 * (demangled) one is passed on. Only matching names are interned.
 */
static void search_symbol(match_search *search, uintptr_t address, const char *name)
{
    char *demangled = demangled_copy(name);
    if (matches_any(search, name) || (demangled && matches_any(search, demangled)))
        search_add(search, address, intern_locked(demangled ? demangled : name));
    free(demangled);
}

static void search_module(match_search *search, Dwfl_Module *module)
{
    int count = dwfl_module_getsymtab(module);
    for (int i = 0; i < count; i++) {
        GElf_Sym elf_symbol;
        GElf_Addr address = 0;
        GElf_Word section = SHN_UNDEF;
        const char *name =
            dwfl_module_getsym_info(module, i, &elf_symbol, &address, &section, NULL, NULL);
        if (name && *name && is_defined_function(&elf_symbol, address, section))
            search_symbol(search, (uintptr_t)address, name);
    }
}

/*
 * Searches the modules the dynamic loader has loaded. The session's list
 * (from /proc/PID/maps) also holds every ELF file merely mapped as data,
 * libdw's own reads included: searching those would report addresses that
 * never run, and opening them would map them once more.
 */
static int search_modules(match_search *search, const loaded_objects *objects, pk_error *err)
{
    if (session_prepare(objects->generation, err) != 0 ||
        session_refresh(objects->generation, err) != 0)
        return -1;
    for (size_t i = 0; i < objects->count; i++) {
        Dwfl_Module *module = dwfl_addrmodule(symbols.dwfl, objects->code[i]);
        if (module)
            search_module(search, module);
    }
    return 0;
}

static int compare_matches(const void *a, const void *b)
{
    const symbol_match *left = a;
    const symbol_match *right = b;
    if (left->address != right->address)
        return left->address < right->address ? -1 : 1;
    return strcmp(left->name, right->name);
}

/* A module's symbol tables (its own, its debug file's) can repeat a function: report each once. */
static void sort_unique(match_search *search)
{
    if (search->count == 0)
        return;
    qsort(search->found, search->count, sizeof *search->found, compare_matches);
    size_t kept = 1;
    for (size_t i = 1; i < search->count; i++) {
        const symbol_match *last = &search->found[kept - 1];
        if (search->found[i].address != last->address || search->found[i].name != last->name)
            search->found[kept++] = search->found[i];
    }
    search->count = kept;
}

/* fn is called after the lock is released, so it may look symbols up itself. */
int pk_symbols_each_match(const char *const *globs, size_t n,
                          void (*fn)(uintptr_t address, const char *name, void *user),
                          void *user, pk_error *err)
{
    loaded_objects objects = {0};
    loaded_objects_read(&objects);
    demangler_refresh(objects.generation);
    match_search search = {.globs = globs, .glob_count = n};
    code_ranges ranges;
    session_lock(objects.generation, &ranges);
    int status = search_modules(&search, &objects, err);
    session_unlock(&ranges);
    free(objects.code);
    if (status == 0) {
        sort_unique(&search);
        for (size_t i = 0; i < search.count; i++)
            fn(search.found[i].address, search.found[i].name, user);
    }
    free(search.found);
    return status;
}

/* ---- fork and exit -------------------------------------------------------- */

/* Held across fork so the child never inherits the lock taken by another thread. */
static void lock_before_fork(void)
{
    pthread_mutex_lock(&symbols.lock);
}

static void unlock_after_fork(void)
{
    pthread_mutex_unlock(&symbols.lock);
}

__attribute__((constructor)) static void symbols_register_fork_handlers(void)
{
    pthread_atfork(lock_before_fork, unlock_after_fork, unlock_after_fork);
}

/*
 * Frees everything at exit. Priority 101 runs this after pikoc's other
 * destructors (lower priorities run later), which may still look symbols up.
 * A call after this starts from scratch.
 */
__attribute__((destructor(101))) static void symbols_teardown(void)
{
    pthread_mutex_lock(&symbols.lock);
    modules_clear();
    if (symbols.dwfl)
        dwfl_end(symbols.dwfl);
    table_free_all();
    free(symbols.strings);
    free(symbols.closing);
    symbols.closing = NULL;
    symbols.closing_count = symbols.closing_capacity = 0;
    while (symbols.arena) {
        arena_block *next = symbols.arena->next;
        free(symbols.arena);
        symbols.arena = next;
    }
    symbols.dwfl = NULL;
    symbols.reported_pid = 0;
    symbols.reported_generation = 0;
    symbols.strings = NULL;
    symbols.string_slots = symbols.string_count = 0;
    pthread_mutex_unlock(&symbols.lock);
}
