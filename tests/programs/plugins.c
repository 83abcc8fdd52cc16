/*
 * plugins.c — loads each library named on its command line in turn, runs
 * its plugin_run(3) and closes it, printing where plugin_run was and what
 * it returned: the function monitor names a closed library's functions,
 * and those of one loaded where it was, each under its own file.
 */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        void *library = dlopen(argv[i], RTLD_NOW);
        int (*run)(int) = library ? (int (*)(int))dlsym(library, "plugin_run") : NULL;
        if (!run) {
            fprintf(stderr, "plugins: %s\n", dlerror());
            return 1;
        }
        printf("%p %d\n", (void *)run, run(3));
        dlclose(library);
    }
    return 0;
}
