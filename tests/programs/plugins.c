/*
 * plugins.c — loads each library named on its command line in turn, runs
 * its plugin_run(3) and closes it, printing where plugin_run was and what
 * it returned ("- -" for a library without one, only opened and closed):
 * the function monitor names a closed library's functions, and those of
 * one loaded where it was, each under its own file.
 */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        void *library = dlopen(argv[i], RTLD_NOW);
        if (!library) {
            fprintf(stderr, "plugins: %s\n", dlerror());
            return 1;
        }
        int (*run)(int) = (int (*)(int))dlsym(library, "plugin_run");
        if (run)
            printf("%p %d\n", (void *)run, run(3));
        else
            printf("- -\n");
        dlclose(library);
    }
    return 0;
}
