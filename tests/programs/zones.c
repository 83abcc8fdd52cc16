/*
 * zones.c — code built without -finstrument-functions, marked with named
 * zones; PIKOC_RECORD enables the monitor for the whole program. With a
 * path, it then loads that library (zone_module.c) and enters its zone.
 */
#include <pikoc.h>
#include <dlfcn.h>
#include <stdio.h>

static int parse(int x)
{
    PK_ZONE("parse");
    return x + 1;
}

static int load(int n)
{
    PK_ZONE("load");
    int sum = 0;
    for (int i = 0; i < n; i++)
        sum += parse(i);
    return sum;
}

int main(int argc, char **argv)
{
    printf("%d\n", load(3));
    if (argc > 1) {
        void *module = dlopen(argv[1], RTLD_NOW);
        int (*module_zone)(int) = module ? (int (*)(int))dlsym(module, "module_zone") : NULL;
        if (!module_zone) {
            fprintf(stderr, "zones: %s\n", dlerror());
            return 1;
        }
        printf("%d\n", module_zone(21));
    }
    return 0;
}
