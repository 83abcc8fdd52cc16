/*
 * records.h — building records by hand for recorder and filter tests.
 */
#ifndef PK_TEST_RECORDS_H
#define PK_TEST_RECORDS_H

#include <pikoc.h>
#include <string.h>

/* A call or return of `function` with every field set to a known value. */
static inline pk_record test_record(uint64_t index, pk_event_type type, const char *function,
                                    unsigned depth, uint64_t time_ns)
{
    pk_record r;
    memset(&r, 0, sizeof r);
    r.index = index;
    r.type = type;
    r.flags = PK_RECORD_MEMORY | PK_RECORD_ALLOC;
    r.function = function;
    r.file = "demo.c";
    r.line = 10 + (unsigned)index;
    r.caller = "main";
    r.caller_file = "demo.c";
    r.caller_line = 100 + (unsigned)index;
    r.thread = 4242;
    r.depth = depth;
    r.time_ns = time_ns;
    r.rss = 4096 * 100;
    r.vms = 4096 * 1000;
    r.allocated = 1000;
    r.freed = 500;
    return r;
}

#endif
