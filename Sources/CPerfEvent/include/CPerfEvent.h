// CPerfEvent: the few kernel interfaces Swift cannot call directly.
//
// - perf_event_open has no libc wrapper and `syscall` is variadic;
// - `ioctl` is variadic;
// - struct perf_event_attr is full of bitfields and anonymous unions, so it is
//   filled here from a plain options struct;
// - the ring buffer's data_head / data_tail need acquire / release ordering,
//   which the kernel ABI requires and Swift has no portable spelling for;
// - starting a command "paused" (so perf events exist before its first
//   instruction) needs fork + exec with only async-signal-safe calls in the child.
#ifndef CPERFEVENT_H
#define CPERFEVENT_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/perf_event.h>
// signalfd lets the sampling loop poll for SIGINT/SIGTERM beside the perf fds;
// Glibc's Swift module does not export it.
#include <sys/signalfd.h>

/// What Flare asks of one perf event: a software cpu-clock sampler.
typedef struct cperf_options {
    uint64_t frequency;          ///< samples per second (attr.freq = 1)
    uint64_t sample_type;        ///< PERF_SAMPLE_* bits
    uint64_t sample_regs_user;   ///< register mask for PERF_SAMPLE_REGS_USER
    uint32_t sample_stack_user;  ///< bytes of user stack for PERF_SAMPLE_STACK_USER
    uint32_t wakeup_watermark;   ///< bytes in the ring before poll() wakes us
    uint16_t sample_max_stack;   ///< callchain depth limit, 0 = kernel default
    uint8_t inherit;             ///< follow threads and children created later
    uint8_t enable_on_exec;      ///< start counting at the target's exec
    uint8_t disabled;            ///< created disabled
    uint8_t exclude_kernel;      ///< user space only
    uint8_t track_tasks;         ///< emit MMAP2 / COMM / FORK / EXIT records
} cperf_options;

/// perf_event_open for one (pid, cpu). Returns the fd, or -1 with errno set.
int cperf_open(const cperf_options *options, pid_t pid, int cpu, int group_fd);

int cperf_enable(int fd);
int cperf_disable(int fd);
/// Redirects the records of `fd` into the ring buffer mapped on `target_fd`.
int cperf_set_output(int fd, int target_fd);

/// The x86-64 time-stamp counter (rdtsc); 0 on other architectures.
uint64_t cperf_timestamp_counter(void);

/// Caps glibc's malloc arenas (one per thread by default, each keeping its
/// freed memory); call before starting threads.
void cperf_limit_malloc_arenas(int count);
/// Gives freed heap memory back to the kernel (malloc_trim).
void cperf_return_free_memory(void);
/// Bytes of heap in use (mallinfo2: allocated chunks plus mmapped ones).
unsigned long cperf_heap_in_use(void);
/// Drops the resident pages of this program's own executable code mappings
/// (never written, so nothing is lost: they fault back in from the page
/// cache); returns the bytes released.
unsigned long cperf_release_code_pages(void);

/// data_head, read with acquire semantics: records before it are complete.
uint64_t cperf_ring_head(const struct perf_event_mmap_page *page);
/// data_tail, written with release semantics: we are done reading up to it.
void cperf_ring_set_tail(struct perf_event_mmap_page *page, uint64_t tail);

/// Forks a child that waits until `*release_fd` is written (or closed), then
/// execv's `path` with `argv` (no PATH search and no fallback to /bin/sh, so a
/// file that is not a program fails with ENOEXEC). If exec fails the child writes its errno to
/// `*exec_error_fd` (close-on-exec, so a successful exec yields EOF).
/// Returns the child's pid, or -1 with errno set.
pid_t cperf_spawn_paused(const char *path, char *const argv[], int *release_fd, int *exec_error_fd);

/// Size of struct perf_event_mmap_page's first data byte offset (data_offset).
uint64_t cperf_ring_data_offset(const struct perf_event_mmap_page *page);
uint64_t cperf_ring_data_size(const struct perf_event_mmap_page *page);

#endif
