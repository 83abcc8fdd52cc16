/*
 * host.c — facts about the process and machine that describe a run: the
 * command line and the host name, each read once and kept (behind a mutex)
 * until the process exits; the peak resident set, read when asked (of the
 * program a drainer process records, when that is another process); and the
 * CURVE key files the ZeroMQ sender and collector read, and the check that
 * a key is Z85. Off the hot path.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;
static char *command_line;                 /* NULL until read */
static char host_name[HOST_NAME_MAX + 1];
static bool host_name_known;

/* Reads a whole /proc file, which reports its size as 0, into a NUL-terminated buffer. */
static char *read_proc_file(const char *path, size_t *length)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t capacity = 4096;
    size_t used = 0;
    char *bytes = pk_xcalloc(capacity, 1);
    for (;;) {
        if (used + 1 == capacity) {
            char *larger = pk_xcalloc(capacity * 2, 1);
            memcpy(larger, bytes, used);
            free(bytes);
            bytes = larger;
            capacity *= 2;
        }
        ssize_t got = read(fd, bytes + used, capacity - 1 - used);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            close(fd);
            if (got < 0) {
                free(bytes);
                return NULL;
            }
            *length = used;
            return bytes;
        }
        used += (size_t)got;
    }
}

/* argv is stored NUL-separated (with a final NUL): join it with single spaces. */
static char *read_command_line(void)
{
    size_t length = 0;
    char *text = read_proc_file("/proc/self/cmdline", &length);
    if (!text)
        return pk_xstrdup("");
    if (length > 0 && text[length - 1] == '\0')
        length--;
    for (size_t i = 0; i < length; i++) {
        if (text[i] == '\0')
            text[i] = ' ';
    }
    text[length] = '\0';
    return text;
}

const char *pk_command_line(void)
{
    pthread_mutex_lock(&host_lock);
    if (!command_line)
        command_line = read_command_line();
    const char *text = command_line;
    pthread_mutex_unlock(&host_lock);
    return text;
}

const char *pk_host_name(void)
{
    pthread_mutex_lock(&host_lock);
    if (!host_name_known) {
        /* gethostname may truncate without a terminator: keep the last byte NUL. */
        if (gethostname(host_name, sizeof host_name - 1) != 0)
            host_name[0] = '\0';
        host_name[sizeof host_name - 1] = '\0';
        host_name_known = true;
    }
    pthread_mutex_unlock(&host_lock);
    return host_name;
}

/* Runs with the symbol teardown's priority: after pikoc's other destructors. */
__attribute__((destructor(101))) static void host_teardown(void)
{
    pthread_mutex_lock(&host_lock);
    free(command_line);
    command_line = NULL;
    pthread_mutex_unlock(&host_lock);
}

static _Atomic pid_t program_pid; /* 0: this process */
static _Atomic pid_t program_parent;

void pk_set_program(pid_t pid, pid_t parent)
{
    atomic_store(&program_pid, pid);
    atomic_store(&program_parent, parent);
}

pid_t pk_program_parent(void)
{
    return atomic_load(&program_pid) ? atomic_load(&program_parent) : getppid();
}

pid_t pk_program(void)
{
    pid_t pid = atomic_load(&program_pid);
    return pid ? pid : getpid();
}

/* Another process's high-water mark: VmHWM in its /proc/PID/status (kB). */
static uint64_t program_peak_rss(pid_t pid)
{
    char path[64];
    size_t length = 0;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    char *text = read_proc_file(path, &length);
    const char *line = text ? strstr(text, "\nVmHWM:") : NULL;
    uint64_t kilobytes = line ? strtoull(line + 7, NULL, 10) : 0;
    free(text);
    return kilobytes * 1024;
}

uint64_t pk_process_peak_rss(void)
{
    pid_t program = atomic_load(&program_pid);
    if (program)
        return program_peak_rss(program);
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0)
        return 0;
    return (uint64_t)usage.ru_maxrss * 1024; /* kilobytes on Linux */
}

enum pk_key_file pk_read_key_file(const char *path, char key[41], char *why, size_t size)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT || errno == ENOTDIR ? PK_KEY_MISSING : PK_KEY_UNREADABLE;
    size_t n = fread(key, 1, 40, f);
    int error = ferror(f) ? errno : 0;
    fclose(f);
    key[n] = '\0';
    if (error) {
        errno = error;
        return PK_KEY_UNREADABLE;
    }
    if (n != 40)
        return PK_KEY_SHORT;
    return pk_z85_fault(key, why, size) == 0 ? PK_KEY_READ : PK_KEY_NOT_Z85;
}

int pk_z85_fault(const char key[40], char *why, size_t size)
{
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    for (int group = 0; group < 40; group += 5) {
        uint64_t value = 0;
        for (int i = group; i < group + 5; i++) {
            const char *digit = key[i] ? strchr(alphabet, key[i]) : NULL;
            if (!digit) {
                snprintf(why, size, "character %d (0x%02x) is not in Z85's alphabet", i + 1,
                         (unsigned char)key[i]);
                return -1;
            }
            value = value * 85 + (uint64_t)(digit - alphabet);
        }
        if (value > UINT32_MAX) {
            snprintf(why, size, "characters %d to %d are over 32 bits", group + 1, group + 5);
            return -1;
        }
    }
    return 0;
}
