/*
 * zones.c — code built WITHOUT -finstrument-functions: named zones mark the
 * spans to record. PK_ZONE lasts until the end of the enclosing block;
 * pk_zone_begin/pk_zone_end mark a span by hand.
 */
#include <pikoc.h>
#include <stdio.h>
#include <stdlib.h>

static const pk_zone checksum_zone = {"checksum", __FILE__, "main", __LINE__};

static unsigned parse_record(int i)
{
    PK_ZONE("parse_record");
    return (unsigned)i * 2654435761u;
}

static unsigned load(int n)
{
    PK_ZONE("load");
    unsigned h = 0;
    for (int i = 0; i < n; i++)
        h ^= parse_record(i);
    return h;
}

int main(void)
{
    pk_error err;
    pk_monitor *m = pk_monitor_new("function-memory", &err);
    if (!m || !pk_monitor_record(m, "stdout", &err) || pk_monitor_enable(m, &err) != 0) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    unsigned h = load(3);
    pk_zone_begin(&checksum_zone);
    h = h * 31 + 7;
    pk_zone_end(&checksum_zone);
    pk_monitor_free(m);
    printf("hash %u\n", h);
    return 0;
}
