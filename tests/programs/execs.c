/*
 * execs.c — a program that executes another after a fixed call graph
 * (main -> graph -> a -> b, c -> b, twice over).
 *
 * usage: execs                      the graph, then "total 6"
 *        execs HOW PROGRAM [ARG...] the graph, then executes PROGRAM with
 *                                   argv PROGRAM ARG... (at most four ARGs)
 *                                   through HOW: execv, execve, execvp,
 *                                   execvpe, execl, execle, execlp, fexecve
 *                                   or execveat; those that take an
 *                                   environment are given X=given alone.
 *                                   When that fails: "HOW PROGRAM: why
 *                                   (returned -1)" on stderr, the graph
 *                                   once more, exit status 3
 *        execs vfork PROGRAM        a vforked child executes PROGRAM while
 *                                   the parent waits, then the graph;
 *                                   "total 6 child STATUS"
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static int b(int x)
{
    return x * 2;
}

__attribute__((noinline)) static int c(int x)
{
    return b(x) + 1;
}

__attribute__((noinline)) static int a(int x)
{
    return b(x) + c(x);
}

static int graph(int times)
{
    int total = 0;
    for (int i = 0; i < times; i++)
        total += a(i);
    return total;
}

static char *given[] = {"X=given", NULL};

/* execl, execle or execlp with argv's 1 to 5 entries spelled out, as a caller writes them. */
static int execute_list(const char *how, const char *program, char **argv, int argc)
{
    char *a[5] = {NULL};
    for (int i = 0; i < argc && i < 5; i++)
        a[i] = argv[i];
    if (strcmp(how, "execle") == 0)
        switch (argc) {
        case 1:
            return execle(program, a[0], (char *)NULL, given);
        case 2:
            return execle(program, a[0], a[1], (char *)NULL, given);
        case 3:
            return execle(program, a[0], a[1], a[2], (char *)NULL, given);
        case 4:
            return execle(program, a[0], a[1], a[2], a[3], (char *)NULL, given);
        default:
            return execle(program, a[0], a[1], a[2], a[3], a[4], (char *)NULL, given);
        }
    int (*list)(const char *, const char *, ...) = strcmp(how, "execl") == 0 ? execl : execlp;
    switch (argc) {
    case 1:
        return list(program, a[0], (char *)NULL);
    case 2:
        return list(program, a[0], a[1], (char *)NULL);
    case 3:
        return list(program, a[0], a[1], a[2], (char *)NULL);
    case 4:
        return list(program, a[0], a[1], a[2], a[3], (char *)NULL);
    default:
        return list(program, a[0], a[1], a[2], a[3], a[4], (char *)NULL);
    }
}

/* argv: PROGRAM ARG..., argc of them (1 to 5), NULL after them. */
static int execute(const char *how, char **argv, int argc)
{
    const char *program = argv[0];
    if (strcmp(how, "execv") == 0)
        return execv(program, argv);
    if (strcmp(how, "execve") == 0)
        return execve(program, argv, given);
    if (strcmp(how, "execvp") == 0)
        return execvp(program, argv);
    if (strcmp(how, "execvpe") == 0)
        return execvpe(program, argv, given);
    if (strcmp(how, "execl") == 0 || strcmp(how, "execle") == 0 || strcmp(how, "execlp") == 0)
        return execute_list(how, program, argv, argc);
    if (strcmp(how, "fexecve") == 0) {
        int fd = open(program, O_RDONLY | O_CLOEXEC);
        return fd < 0 ? -1 : fexecve(fd, argv, given);
    }
    if (strcmp(how, "execveat") == 0)
        return execveat(AT_FDCWD, program, argv, given, 0);
    errno = EINVAL;
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        printf("total %d\n", graph(2));
        return 0;
    }
    if (strcmp(argv[1], "vfork") == 0) {
        pid_t child = vfork();
        if (child == 0) {
            char *args[] = {argv[2], NULL};
            execv(argv[2], args);
            _exit(127);
        }
        int status = 0;
        waitpid(child, &status, 0);
        printf("total %d child %d\n", graph(2), WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return 0;
    }
    if (argc > 7) {
        fprintf(stderr, "execs: at most four arguments after PROGRAM\n");
        return 2;
    }
    graph(2);
    fflush(stdout);
    int rc = execute(argv[1], argv + 2, argc - 2);
    int error = errno;
    fprintf(stderr, "%s %s: %s (returned %d)\n", argv[1], argv[2], strerror(error), rc);
    graph(1);
    return 3;
}
