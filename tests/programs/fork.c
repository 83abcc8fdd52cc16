/*
 * fork.c — the parent records before and after a fork; the child's copy of
 * the run must write nothing (not even the parent's buffered records).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static int before(int x)
{
    return x + 1;
}

__attribute__((noinline)) static int in_child(int x)
{
    return x + 2;
}

__attribute__((noinline)) static int after(int x)
{
    return x + 3;
}

int main(void)
{
    int r = before(1);
    pid_t pid = fork();
    if (pid == 0) {
        r = in_child(r);
        exit(r == 4 ? 0 : 1); /* runs atexit handlers: they must write nothing */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    r = after(r);
    printf("%d %d\n", r, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}
