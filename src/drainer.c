/*
 * drainer.c — a run drained by a process of its own (under pikoc run): the
 * program's rings lie in a region shared with a drainer process forked as
 * the run starts, which records them through recorders it opens itself and
 * outlives the program, so that when the program crashes, is killed or
 * leaves through _exit, every event it had pushed is still recorded. The
 * drainer has the program's address space as it was at the fork: code
 * addresses and the strings of modules loaded by then mean the same there.
 * Nothing here runs on the hot path but pk_drainer_alive (system calls only).
 */
#include "clock.h"
#include "drain.h"
#include "hot.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * A pipe's end the program holds. Its inode tells whether the descriptor
 * still is that pipe: a program may close descriptors it did not open and
 * reuse their numbers.
 */
struct pipe_end {
    int fd; /* -1: none */
    ino_t inode;
};

/* The program's side of the drainer it started. */
static struct {
    struct pipe_end alive;    /* the write end whose end of file the drainer waits for */
    struct pipe_end finished; /* the read end the drainer closes once the run is written */
    struct pipe_end launcher; /* pikoc run's pipe, handed to the next drainer then closed */
    bool wanted;              /* PIKOC_LAUNCHER_PIPE was set: runs are drained out of process */
    bool forking;             /* between fork and its return: the fork handlers leave it alone */
    bool is_self;             /* this process is a drainer */
} drainer = {{-1, 0}, {-1, 0}, {-1, 0}, false, false, false};

PK_HOT_FN static bool still_ours(const struct pipe_end *end)
{
    struct stat st;
    return end->fd >= 0 && fstat(end->fd, &st) == 0 && S_ISFIFO(st.st_mode) &&
           st.st_ino == end->inode;
}

static struct pipe_end pipe_end_of(int fd)
{
    struct stat st;
    struct pipe_end end = {fd, 0};
    if (fstat(fd, &st) == 0)
        end.inode = st.st_ino;
    return end;
}

static void close_end(struct pipe_end *end)
{
    if (still_ours(end))
        close(end->fd);
    end->fd = -1;
}

/*
 * PIKOC_LAUNCHER_PIPE=FD:INODE names the write end of a pipe pikoc run reads
 * until every holder has closed it. It is only believed when FD still is
 * that pipe (a program may have reused the number): then the drainer of
 * this process's run keeps it, and no process the program starts gets it.
 */
bool pk_drainer_configure(void)
{
    const char *text = getenv("PIKOC_LAUNCHER_PIPE");
    if (!text)
        return drainer.wanted;
    drainer.wanted = true;
    int fd = -1;
    unsigned long long inode = 0;
    if (sscanf(text, "%d:%llu", &fd, &inode) == 2 && fd > 2) {
        struct pipe_end named = {fd, (ino_t)inode};
        if (still_ours(&named)) {
            close_end(&drainer.launcher);
            drainer.launcher = named;
            fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
    }
    return true;
}

void pk_drainer_mark_self(void)
{
    drainer.is_self = true;
}

bool pk_in_drainer(void)
{
    return drainer.is_self;
}

bool pk_drainer_forking(void)
{
    return drainer.forking;
}

/*
 * The drainer holds the write end of `finished` until it ends: an end of
 * file there says it is gone even while it is a zombie nobody reaps (pikoc
 * run as a container's first process, or a child subreaper), which
 * kill(pid, 0) still finds. Without that pipe (the program closed it),
 * kill is all there is.
 */
PK_HOT_FN bool pk_drainer_alive(pid_t pid)
{
    struct pipe_end end = drainer.finished;
    if (!still_ours(&end))
        return kill(pid, 0) == 0 || errno != ESRCH;
    struct pollfd hangup = {.fd = end.fd, .events = POLLIN};
    return poll(&hangup, 1, 0) <= 0 || !(hangup.revents & (POLLHUP | POLLERR));
}

void pk_drainer_forget(void)
{
    close_end(&drainer.alive);
    close_end(&drainer.finished);
    close_end(&drainer.launcher);
    pk_rings_unshare();
}

/* Reads until end of file or up to size bytes; returns how many (0 at end of file). */
static size_t read_some(int fd, char *bytes, size_t size)
{
    ssize_t got;
    do
        got = read(fd, bytes, size);
    while (got < 0 && errno == EINTR);
    return got > 0 ? (size_t)got : 0;
}

/* Waits for the drainer's byte that says the run has started, or for its reason why not. */
static int wait_until_started(int finished, pk_error *err)
{
    char said[sizeof err->message];
    size_t got = read_some(finished, said, sizeof said - 1);
    if (got == 1 && said[0] == '\0')
        return 0;
    if (got == 0)
        return pk_fail(err, "the drainer process ended before the run started");
    said[got] = '\0';
    return pk_fail(err, "%s", said);
}

/*
 * The terminal's signals are for the program: ^C ends it, not the record of
 * it. The drainer ends with the program's run or its process.
 */
static void ignore_terminal_signals(void)
{
    static const int ignored[] = {SIGINT,  SIGQUIT, SIGTERM, SIGHUP,
                                  SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU};
    struct sigaction ignore = {.sa_handler = SIG_IGN};
    for (size_t i = 0; i < PK_ARRAY_SIZE(ignored); i++)
        sigaction(ignored[i], &ignore, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* How the program's run came to its end, as the drainer sees it. */
enum program_end {
    RUN_ENDED,        /* the program ended its run (exit, _exit) */
    PROGRAM_EXECUTED, /* it executed another program: this image's events are all pushed */
    PROGRAM_GONE,     /* its process is gone without ending the run (a crash, a kill) */
};

/*
 * Whether the program's process has executed another program: it maps
 * memory (a process on its way out no longer does), but not the shared
 * region (the new image maps a region of its own, elsewhere).
 */
static bool executed_another(pid_t program)
{
    char path[64], start[32], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)program);
    int length = snprintf(start, sizeof start, "%lx-", (unsigned long)(uintptr_t)pk_rt.shared);
    FILE *maps = fopen(path, "re");
    if (!maps)
        return false;
    bool mapped = false, region = false;
    while (!region && fgets(line, sizeof line, maps)) {
        mapped = true;
        region = strncmp(line, start, (size_t)length) == 0;
    }
    fclose(maps);
    return mapped && !region;
}

/* The program's process is gone: whether it had ended its run first. */
static enum program_end gone_after(void)
{
    return atomic_load(&pk_rt.shared->ended) ? RUN_ENDED : PROGRAM_GONE;
}

/*
 * Until the program has ended: it closed its pipe after ending its run, or
 * its process is gone (a crash, a kill). An end of file with the run not
 * ended is an exec (the pipe is close-on-exec, closed once the new image is
 * mapped), the process on its way out, or the program closing descriptors
 * it did not open: in the last two the drainer waits until it is gone.
 */
static enum program_end wait_for_the_end(pid_t program, int alive, int gone)
{
    struct pollfd fds[2] = {{.fd = alive, .events = POLLIN}, {.fd = gone, .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return gone_after();
        }
        if (fds[1].revents)
            return gone_after();
        char byte;
        if (fds[0].revents && read_some(alive, &byte, 1) == 0) {
            if (atomic_load(&pk_rt.shared->ended) || gone < 0)
                return gone_after();
            if (executed_another(program))
                return PROGRAM_EXECUTED;
            fds[0].fd = -1; /* poll skips it */
        }
    }
}

static bool records_to_stdout(pk_monitor *recording)
{
    for (size_t i = 0; i < pk_monitor_logger_count(recording); i++) {
        pk_recorder *r = pk_logger_recorder(pk_monitor_logger_at(recording, i));
        if (pk_recorder_ops_of(r) == &pk_recorder_stdout)
            return true;
    }
    return false;
}

/*
 * The program's standard input, and its standard output unless a stdout
 * recorder writes there, are not the drainer's to hold: a process the
 * program leaves running (a daemon) would keep a pipe open that a reader
 * waits on (`$(pikoc run ...)`) for as long as it lives. Standard error
 * stays: the drainer's warnings go there.
 */
static void let_go_of_stdio(pk_monitor *recording)
{
    /* (hold_closed_stdio kept the descriptors the drainer opened off them) */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0)
        return;
    dup2(null, STDIN_FILENO);
    if (!records_to_stdout(recording))
        dup2(null, STDOUT_FILENO);
    if (null > STDERR_FILENO)
        close(null);
}

/*
 * A standard stream the program closed is held open on /dev/null, read
 * only (a write fails as it would have): what the drainer opens before
 * let_go_of_stdio (the program's pidfd, a recorder's file) must not take
 * the number of stdin or stdout, which let_go_of_stdio replaces.
 */
static void hold_closed_stdio(void)
{
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
            open("/dev/null", O_RDONLY); /* the lowest free number: fd */
}

/*
 * Hands each logger the run's end: its totals when the program ended the
 * run; 'executed' to a database's or a collector's run when it executed
 * another program.
 */
static void end_loggers(pk_monitor *recording, const pk_run_totals *totals, enum program_end end)
{
    for (size_t i = 0; i < pk_monitor_logger_count(recording); i++) {
        pk_logger *lg = pk_monitor_logger_at(recording, i);
        if (end == RUN_ENDED)
            pk_logger_finish(lg, totals);
        else if (end == PROGRAM_EXECUTED)
            pk_logger_executed(lg, totals);
        /* Otherwise the run keeps what was recorded under 'running': pikoc run
         * marks how the program ended. */
        pk_logger_free(lg);
    }
}

/* The program's start waits for one NUL byte, or for why the run cannot start. */
__attribute__((noreturn)) static void fail_to_start(int finished, const pk_error *err)
{
    const char *why = err->message[0] ? err->message : "the drainer process cannot record";
    ssize_t written = write(finished, why, strlen(why));
    (void)written;
    _exit(1);
}

/*
 * The run starts once its recorders are open, as a run drained in process
 * does: the time the drainer takes to start is not the program's.
 */
static void start_now(pk_run_info *run, struct pk_pipeline *pipeline)
{
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    run->start_ns = pipeline->start_ns = pk_clock_monotonic_ns();
    run->start_wall_ns = (int64_t)wall.tv_sec * 1000000000 + wall.tv_nsec;
}

/*
 * pikoc run gets the pid of the drainer that holds its pipe: asked to stop
 * waiting for the run to be written (a second ^C), it kills that drainer.
 */
static void tell_launcher(void)
{
    pid_t self = getpid();
    if (still_ours(&drainer.launcher)) {
        ssize_t written = write(drainer.launcher.fd, &self, sizeof self);
        (void)written;
    }
}

/*
 * The drainer's life: open the recorders (a monitor that only holds them),
 * start the run in each, say so, drain until the program has ended, then
 * drain what is left and end the run.
 */
__attribute__((noreturn)) static void drainer_main(const struct pk_pipeline *pipeline,
                                                   const pk_run_info *run, const char *record,
                                                   pid_t program, pid_t parent, int alive,
                                                   int finished)
{
    /* Nothing this process allocates is the program's. */
    pk_self.busy = 1;
    pk_drainer_mark_self();
    pk_monitor_drainer_forked();         /* its recorders' monitor may be freed (a failure) */
    prctl(PR_SET_NAME, "pikoc-drainer"); /* what ps shows */
    hold_closed_stdio();
    atomic_store(&pk_rt.enabled, 0);
    atomic_store(&pk_rt.allocations, 0);
    ignore_terminal_signals();
    /* A session of its own: with autogroup the scheduler shares the CPUs
     * between the program's session and this one, so a program with more
     * threads than CPUs does not leave the drainer (which they wait on once
     * their rings fill) one thread's share of them. */
    setsid();
    pk_set_program(program, parent);
    /* The program is alive (it waits for us): its pid is not yet anyone else's. */
    int gone = (int)syscall(SYS_pidfd_open, program, 0);
    pk_symbols_prepare();
    pk_error err;
    pk_monitor *recording = pk_auto_recorders(record, &err);
    if (!recording)
        fail_to_start(finished, &err);
    let_go_of_stdio(recording);
    struct pk_pipeline mine = *pipeline;
    pk_run_info started = *run;
    start_now(&started, &mine);
    mine.loggers = pk_xcalloc(pk_monitor_logger_count(recording), sizeof *mine.loggers);
    mine.logger_count = pk_monitor_logger_count(recording);
    for (size_t i = 0; i < mine.logger_count; i++) {
        mine.loggers[i] = pk_monitor_logger_at(recording, i);
        pk_logger_start(mine.loggers[i], &started);
    }
    if (pk_drain_start(&mine, &err) != 0)
        fail_to_start(finished, &err);
    atomic_store(&pk_rt.shared->drainer, getpid());
    if (write(finished, "", 1) != 1)
        _exit(1);
    tell_launcher();
    enum program_end end = wait_for_the_end(program, alive, gone);
    pk_run_totals totals;
    pk_drain_stop(&totals);
    end_loggers(recording, &totals, end);
    _exit(0);
}

/*
 * Forks twice, so that the drainer is no child of the program's (its wait
 * calls never see it) and outlives it. The fork handlers of pikoc and of
 * the allocator run, but pikoc's leave the program's state alone: the
 * drainer's copy of it is what the run is about.
 */
static pid_t fork_drainer(const struct pk_pipeline *pipeline, const pk_run_info *run,
                          const char *record, int alive[2], int finished[2])
{
    pid_t program = getpid(), parent = getppid();
    drainer.forking = true;
    pid_t middle = fork();
    if (middle == 0) {
        close(alive[1]);
        close(finished[0]);
        pid_t pid = fork();
        if (pid == 0)
            drainer_main(pipeline, run, record, program, parent, alive[0], finished[1]);
        if (pid < 0) {
            pk_error err;
            pk_fail(&err, "cannot start the drainer process: %s", strerror(errno));
            fail_to_start(finished[1], &err);
        }
        _exit(0);
    }
    drainer.forking = false;
    return middle;
}

/* fd, or a copy of it above the standard streams (fd closed); -1 when none can be made. */
static int above_stdio(int fd)
{
    if (fd > STDERR_FILENO)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    int e = errno;
    close(fd);
    errno = e;
    return moved;
}

/*
 * A pipe whose ends are not the numbers of standard streams the program
 * closed (a daemon's child): the drainer gives its standard streams up
 * (let_go_of_stdio), and the program expects its next open to get them.
 */
static int pipe_above_stdio(int ends[2])
{
    if (pipe2(ends, O_CLOEXEC) != 0)
        return -1;
    ends[0] = above_stdio(ends[0]);
    ends[1] = above_stdio(ends[1]);
    if (ends[0] >= 0 && ends[1] >= 0)
        return 0;
    int e = errno;
    for (int i = 0; i < 2; i++)
        if (ends[i] >= 0)
            close(ends[i]);
    errno = e;
    return -1;
}

int pk_drainer_start(const struct pk_pipeline *pipeline, const pk_run_info *run, const char *record,
                     pk_error *err)
{
    int alive[2], finished[2];
    if (pipe_above_stdio(alive) != 0)
        return pk_fail(err, "cannot start the drainer process: %s", strerror(errno));
    if (pipe_above_stdio(finished) != 0) {
        int e = errno;
        close(alive[0]);
        close(alive[1]);
        return pk_fail(err, "cannot start the drainer process: %s", strerror(e));
    }
    pid_t middle = fork_drainer(pipeline, run, record, alive, finished);
    int e = errno;
    close(alive[0]);
    close(finished[1]);
    close_end(&drainer.launcher); /* the drainer holds it now */
    if (middle > 0)
        while (waitpid(middle, NULL, 0) < 0 && errno == EINTR)
            ;
    if (middle < 0 || wait_until_started(finished[0], err) != 0) {
        close(alive[1]);
        close(finished[0]);
        return middle < 0 ? pk_fail(err, "cannot start the drainer process: %s", strerror(e)) : -1;
    }
    drainer.alive = pipe_end_of(alive[1]);
    drainer.finished = pipe_end_of(finished[0]);
    /* Threads send their stacks again: this drainer has seen none. */
    atomic_fetch_add(&pk_rt.stack_generation, 1);
    atomic_store_explicit(&pk_rt.running, 1, memory_order_release);
    return 0;
}

void pk_drainer_stop(void)
{
    atomic_store_explicit(&pk_rt.running, 0, memory_order_release);
    atomic_store(&pk_rt.shared->ended, 1);
    close_end(&drainer.alive);
    char byte;
    if (still_ours(&drainer.finished))
        read_some(drainer.finished.fd, &byte, 1); /* end of file: the run is written */
    close_end(&drainer.finished);
}
