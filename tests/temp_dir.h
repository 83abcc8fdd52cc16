/*
 * temp_dir.h — a fresh temporary directory per cmocka test, with the path
 * of a database in it, removed with everything in it afterwards.
 */
#ifndef PK_TEST_TEMP_DIR_H
#define PK_TEST_TEMP_DIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct temp_dir {
    char dir[512];
    char db[600]; /* dir/pikoc.db */
} temp_dir;

/* A cmocka setup: *state becomes the temp_dir. */
static inline int temp_dir_make(void **state)
{
    temp_dir *t = calloc(1, sizeof *t);
    const char *tmp = getenv("TMPDIR");
    if (!t)
        return -1;
    snprintf(t->dir, sizeof t->dir, "%s/pikoc-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(t->dir)) {
        free(t);
        return -1;
    }
    snprintf(t->db, sizeof t->db, "%s/pikoc.db", t->dir);
    *state = t;
    return 0;
}

/* The matching teardown (the directory holds files only). */
static inline int temp_dir_remove(void **state)
{
    temp_dir *t = *state;
    DIR *d = opendir(t->dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[1200];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", t->dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(t->dir);
    free(t);
    return 0;
}

#endif
