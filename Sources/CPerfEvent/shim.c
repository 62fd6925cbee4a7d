#define _GNU_SOURCE
#include "CPerfEvent.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int cperf_open(const cperf_options *o, pid_t pid, int cpu, int group_fd) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.freq = 1;
    attr.sample_freq = o->frequency;
    attr.sample_type = o->sample_type;
    attr.sample_regs_user = o->sample_regs_user;
    attr.sample_stack_user = o->sample_stack_user;
    attr.sample_max_stack = o->sample_max_stack;
    attr.inherit = o->inherit;
    attr.enable_on_exec = o->enable_on_exec;
    attr.disabled = o->disabled;
    attr.exclude_kernel = o->exclude_kernel;
    attr.exclude_hv = 1;
    attr.exclude_callchain_kernel = o->exclude_kernel;
    attr.mmap = o->track_tasks;
    attr.mmap2 = o->track_tasks;
    attr.comm = o->track_tasks;
    attr.comm_exec = o->track_tasks;
    attr.task = o->track_tasks;
    attr.sample_id_all = 1;
    // Timestamps on the clock that span writers use, so samples and span
    // transitions can be compared directly.
    attr.use_clockid = 1;
    attr.clockid = CLOCK_MONOTONIC;
    if (o->wakeup_watermark > 0) {
        attr.watermark = 1;
        attr.wakeup_watermark = o->wakeup_watermark;
    } else {
        attr.wakeup_events = 1;
    }
    return (int)syscall(SYS_perf_event_open, &attr, pid, cpu, group_fd, PERF_FLAG_FD_CLOEXEC);
}

int cperf_enable(int fd) { return ioctl(fd, PERF_EVENT_IOC_ENABLE, 0); }
int cperf_disable(int fd) { return ioctl(fd, PERF_EVENT_IOC_DISABLE, 0); }
int cperf_set_output(int fd, int target_fd) { return ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, target_fd); }

uint64_t cperf_ring_head(const struct perf_event_mmap_page *page) {
    return __atomic_load_n(&page->data_head, __ATOMIC_ACQUIRE);
}

void cperf_ring_set_tail(struct perf_event_mmap_page *page, uint64_t tail) {
    __atomic_store_n(&page->data_tail, tail, __ATOMIC_RELEASE);
}

uint64_t cperf_ring_data_offset(const struct perf_event_mmap_page *page) { return page->data_offset; }
uint64_t cperf_ring_data_size(const struct perf_event_mmap_page *page) { return page->data_size; }

pid_t cperf_spawn_paused(const char *path, char *const argv[], int *release_fd, int *exec_error_fd) {
    int release[2], failure[2];
    if (pipe2(release, O_CLOEXEC) != 0) return -1;
    if (pipe2(failure, O_CLOEXEC) != 0) {
        int saved = errno;
        close(release[0]); close(release[1]);
        errno = saved;
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int saved = errno;
        close(release[0]); close(release[1]); close(failure[0]); close(failure[1]);
        errno = saved;
        return -1;
    }
    if (pid == 0) {
        // Child: only async-signal-safe calls from here on.
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        char go;
        ssize_t n;
        do { n = read(release[0], &go, 1); } while (n < 0 && errno == EINTR);
        if (n != 1) _exit(127);
        execv(path, argv);
        int error = errno;
        ssize_t ignored = write(failure[1], &error, sizeof error);
        (void)ignored;
        _exit(127);
    }
    close(release[0]);
    close(failure[1]);
    *release_fd = release[1];
    *exec_error_fd = failure[0];
    return pid;
}

uint64_t cperf_timestamp_counter(void) {
#if defined(__x86_64__)
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
#else
    return 0;
#endif
}

void cperf_limit_malloc_arenas(int count) { mallopt(M_ARENA_MAX, count); }

void cperf_return_free_memory(void) { malloc_trim(0); }

unsigned long cperf_heap_in_use(void) {
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}

unsigned long cperf_release_code_pages(void) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 0;
    exe[n] = 0;
    FILE *smaps = fopen("/proc/self/smaps", "re");
    if (!smaps) return 0;
    char line[4352];
    unsigned long start = 0, end = 0, released = 0;
    int candidate = 0;
    while (fgets(line, sizeof line, smaps)) {
        unsigned long s, e, offset, inode;
        char perms[8], dev[16], path[4096];
        path[0] = 0;
        if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %4095[^\n]", &s, &e, perms, &offset, dev, &inode, path) >= 6) {
            start = s;
            end = e;
            /* r-xp only: read-only, executable, private; the loader never writes code of a PIE. */
            candidate = strcmp(perms, "r-xp") == 0 && strcmp(path, exe) == 0;
            continue;
        }
        unsigned long anonymous;
        /* Pages copied on write (a debugger's breakpoint, a uprobe) must stay. */
        if (candidate && sscanf(line, "Anonymous: %lu kB", &anonymous) == 1) {
            if (anonymous == 0 && madvise((void *)start, end - start, MADV_DONTNEED) == 0) released += end - start;
            candidate = 0;
        }
    }
    fclose(smaps);
    return released;
}
