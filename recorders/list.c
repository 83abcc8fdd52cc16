/*
 * list.c — the in-memory "list" recorder: keeps a copy of every record, its
 * strings included, so records outlive whatever buffers their producer used.
 * Written on the drain thread; read it with pk_list_* once the monitor is
 * disabled (a disable waits until every record is recorded).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Records live in fixed blocks so that a pointer from pk_list_get stays
 * valid while the list grows. */
#define RECORDS_PER_BLOCK 1024
#define STRING_CHUNK_SIZE 65536

/* Strings are copied into chunks: one allocation per 64 KiB, not per string. */
typedef struct string_chunk {
    struct string_chunk *older;
    size_t used;
    size_t size;
    char text[];
} string_chunk;

typedef struct list_state {
    pk_record **blocks;
    size_t block_count;
    size_t block_capacity;
    size_t count;
    string_chunk *strings; /* newest first */
} list_state;

static list_state *list_of(pk_recorder *r)
{
    return r && r->ops == &pk_recorder_list ? pk_recorder_state(r) : NULL;
}

static const char *copy_string(list_state *s, const char *text)
{
    size_t len = strlen(text ? text : "") + 1;
    string_chunk *c = s->strings;
    if (!c || c->size - c->used < len) {
        size_t size = len > STRING_CHUNK_SIZE ? len : STRING_CHUNK_SIZE;
        c = pk_xcalloc(1, sizeof *c + size);
        c->size = size;
        c->older = s->strings;
        s->strings = c;
    }
    char *copy = c->text + c->used;
    memcpy(copy, text ? text : "", len);
    c->used += len;
    return copy;
}

static void add_block(list_state *s)
{
    pk_grow(&s->blocks, &s->block_capacity, s->block_count, sizeof *s->blocks);
    s->blocks[s->block_count++] = pk_xcalloc(RECORDS_PER_BLOCK, sizeof(pk_record));
}

static int list_write(pk_recorder *r, const pk_record *rec, pk_error *err)
{
    list_state *s = pk_recorder_state(r);
    if (s->count == s->block_count * RECORDS_PER_BLOCK)
        add_block(s);
    pk_record *copy = &s->blocks[s->count / RECORDS_PER_BLOCK][s->count % RECORDS_PER_BLOCK];
    *copy = *rec;
    copy->function = copy_string(s, rec->function);
    copy->file = copy_string(s, rec->file);
    copy->caller = copy_string(s, rec->caller);
    copy->caller_file = copy_string(s, rec->caller_file);
    s->count++;
    return 0;
}

size_t pk_list_count(pk_recorder *r)
{
    list_state *s = list_of(r);
    return s ? s->count : 0;
}

const pk_record *pk_list_get(pk_recorder *r, size_t i)
{
    list_state *s = list_of(r);
    if (!s || i >= s->count)
        return NULL;
    return &s->blocks[i / RECORDS_PER_BLOCK][i % RECORDS_PER_BLOCK];
}

void pk_list_clear(pk_recorder *r)
{
    list_state *s = list_of(r);
    if (!s)
        return;
    for (size_t i = 0; i < s->block_count; i++)
        free(s->blocks[i]);
    free(s->blocks);
    while (s->strings) {
        string_chunk *older = s->strings->older;
        free(s->strings);
        s->strings = older;
    }
    memset(s, 0, sizeof *s);
}

const pk_recorder_ops pk_recorder_list = {
    .name = "list",
    .usage = "list",
    .needs_arg = false,
    .size = sizeof(list_state),
    .write = list_write,
    .close = pk_list_clear,
};
