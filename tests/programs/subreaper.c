/*
 * subreaper.c — executes a command that is then a child subreaper: orphans
 * among its descendants become its children, and stay zombies unless it
 * waits for them, as under a container whose first process is the command.
 * tests/crash.sh runs pikoc run so.
 *
 *   subreaper COMMAND ARGS...
 */
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
        perror("subreaper");
        return 1;
    }
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    return 127;
}
