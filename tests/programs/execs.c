/*
 * execs.c — a program that executes another after a fixed call graph
 * (main -> a -> b, c -> b, twice over).
 *
 * usage: execs                   the graph, then "total 6"
 *        execs HOW PROGRAM [ARG] the graph, then executes PROGRAM (with ARG)
 *                                through HOW: execv, execve, execvp, execvpe,
 *                                execl, execle, execlp, fexecve or execveat;
 *                                when that fails: "HOW PROGRAM: why", the
 *                                graph once more, exit status 3
 *        execs vfork PROGRAM     a vforked child executes PROGRAM while the
 *                                parent waits, then the graph; "child N"
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

static int execute(const char *how, const char *program, char *arg)
{
    char *argv[] = {(char *)program, arg, NULL};
    if (strcmp(how, "execv") == 0)
        return execv(program, argv);
    if (strcmp(how, "execve") == 0)
        return execve(program, argv, environ);
    if (strcmp(how, "execvp") == 0)
        return execvp(program, argv);
    if (strcmp(how, "execvpe") == 0)
        return execvpe(program, argv, environ);
    if (strcmp(how, "execl") == 0)
        return arg ? execl(program, program, arg, (char *)NULL)
                   : execl(program, program, (char *)NULL);
    if (strcmp(how, "execle") == 0)
        return arg ? execle(program, program, arg, (char *)NULL, environ)
                   : execle(program, program, (char *)NULL, environ);
    if (strcmp(how, "execlp") == 0)
        return arg ? execlp(program, program, arg, (char *)NULL)
                   : execlp(program, program, (char *)NULL);
    if (strcmp(how, "fexecve") == 0) {
        int fd = open(program, O_RDONLY | O_CLOEXEC);
        return fd < 0 ? -1 : fexecve(fd, argv, environ);
    }
    if (strcmp(how, "execveat") == 0)
        return execveat(AT_FDCWD, program, argv, environ, 0);
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
    graph(2);
    fflush(stdout);
    int rc = execute(argv[1], argv[2], argc > 3 ? argv[3] : NULL);
    int error = errno;
    fprintf(stderr, "%s %s: %s (returned %d)\n", argv[1], argv[2], strerror(error), rc);
    graph(1);
    return 3;
}
