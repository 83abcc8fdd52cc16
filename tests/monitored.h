/*
 * monitored.h — functions built with -finstrument-functions for the monitor
 * tests. Each records its own line through a *_line variable so the tests
 * can assert exact source lines without hard-coding them.
 */
#ifndef PK_TEST_MONITORED_H
#define PK_TEST_MONITORED_H

#include <pikoc.h>
#include <stddef.h>

extern pk_monitor *marked_monitor;

int leaf(int x);
int outer(int x);
int recurse(int n);
int focus_target(int n);
int not_focused(int n);
void *allocate_kept(size_t bytes);
void free_kept(void *p);
int marked(int n);
int marked_recursive(int n);
int zoned(void);

extern const unsigned leaf_line, outer_line, recurse_line;
extern const unsigned marked_line, zone_line;

#endif
