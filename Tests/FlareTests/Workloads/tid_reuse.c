/*
 * Tid reuse: in each round a thread attaches a span, burns CPU in
 * dead_thread_work and dies without detaching or releasing its slot (a raw
 * exit syscall skips the thread-exit destructor), so its slot still names its
 * tid. The next thread is then given that same tid through
 * /proc/sys/kernel/ns_last_pid (needs root) and burns CPU too: on even rounds
 * publishing nothing (reused_quiet_work), on odd rounds inside a span of its
 * own (reused_span_work). A reader must never credit the newcomer with the
 * dead thread's span.
 *
 *   tid_reuse ROUNDS MILLISECONDS_PER_THREAD
 *
 * Span ids: dead threads 0xDEAD << 48 | round, newcomers 0xBEEF << 48 | round.
 * Prints "reused R of N" (rounds whose newcomer got the dead thread's tid).
 */
#define _GNU_SOURCE
#include "flare_context.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long g_ms;
static volatile uint64_t g_sink;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void burn(uint64_t deadline) {
    uint64_t x = deadline;
    do {
        for (int i = 0; i < 300; i++) x = x * 6364136223846793005ull + 1442695040888963407ull;
    } while (now_ns() < deadline);
    g_sink += x;
}

__attribute__((noinline)) void dead_thread_work(void) { burn(now_ns() + (uint64_t)g_ms * 1000000ull); }
__attribute__((noinline)) void reused_quiet_work(void) { burn(now_ns() + (uint64_t)g_ms * 1000000ull); }
__attribute__((noinline)) void reused_span_work(void) { burn(now_ns() + (uint64_t)g_ms * 1000000ull); }

static void attach(uint64_t span, const char *root) {
    uint8_t trace_id[16] = {0}, span_id[8];
    for (int i = 7; i >= 0; i--) { span_id[i] = trace_id[8 + i] = (uint8_t)span; span >>= 8; }
    flare_span_attach(trace_id, span_id, span_id, 1, root);
}

typedef struct {
    uint64_t round;
    pid_t tid;
} round_t;

static void *dead_thread(void *arg) {
    round_t *r = arg;
    r->tid = (pid_t)syscall(SYS_gettid);
    attach(0xDEAD000000000000ull | r->round, "dead");
    dead_thread_work();
    syscall(SYS_exit, 0); /* no detach, no release: the slot keeps this tid */
    return NULL;
}

static void *newcomer(void *arg) {
    round_t *r = arg;
    r->tid = (pid_t)syscall(SYS_gettid);
    if (r->round % 2 == 0) {
        reused_quiet_work();
    } else {
        attach(0xBEEF000000000000ull | r->round, "newcomer");
        reused_span_work();
        flare_span_detach();
    }
    return NULL;
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 500;
    g_ms = argc > 2 ? atol(argv[2]) : 4;
    setenv("FLARE_SLOT_COUNT", "4096", 1); /* every dead thread keeps its slot */
    flare_context_publish_resource("tid-reuse", "1.0", "test");
    int last_pid = open("/proc/sys/kernel/ns_last_pid", O_RDWR);
    if (last_pid < 0) {
        perror("open /proc/sys/kernel/ns_last_pid (needs root)");
        return 3;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    long reused = 0;
    for (long i = 0; i < rounds; i++) {
        round_t dead = {(uint64_t)i, 0}, next = {(uint64_t)i, 0};
        pthread_t t;
        if (pthread_create(&t, &attr, dead_thread, &dead) != 0) return 4;
        pthread_join(t, NULL);
        char text[16];
        int n = snprintf(text, sizeof text, "%d", dead.tid - 1);
        if (pwrite(last_pid, text, (size_t)n, 0) != n) {
            perror("write /proc/sys/kernel/ns_last_pid");
            return 3;
        }
        if (pthread_create(&t, &attr, newcomer, &next) != 0) return 4;
        pthread_join(t, NULL);
        if (next.tid == dead.tid) reused++;
    }
    printf("reused %ld of %ld\n", reused, rounds);
    return 0;
}
