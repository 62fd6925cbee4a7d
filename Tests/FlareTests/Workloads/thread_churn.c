/*
 * Thread per request: each "request" is a new thread that attaches a span,
 * burns CPU in churn_span_work, detaches and exits, which releases its slot
 * (the thread-exit destructor). Its last samples are often read only after
 * it is gone: a reader attributes them through the slot's release time
 * (docs/context-abi.md, ABI 1.1), never by guessing.
 *
 *   thread_churn THREADS MILLISECONDS_PER_THREAD
 *
 * Span ids: 0xC0DE << 48 | the thread's tid, so a label can be checked
 * against the sample's thread_id.
 */
#define _GNU_SOURCE
#include "flare_context.h"

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

__attribute__((noinline)) void churn_span_work(void) {
    uint64_t deadline = now_ns() + (uint64_t)g_ms * 1000000ull, x = deadline;
    do {
        for (int i = 0; i < 300; i++) x = x * 6364136223846793005ull + 1442695040888963407ull;
    } while (now_ns() < deadline);
    g_sink += x;
}

static void *request(void *arg) {
    (void)arg;
    uint64_t span = 0xC0DE000000000000ull | (uint64_t)syscall(SYS_gettid);
    uint8_t trace_id[16] = {0}, span_id[8];
    for (int i = 7; i >= 0; i--) { span_id[i] = trace_id[8 + i] = (uint8_t)span; span >>= 8; }
    flare_span_attach(trace_id, span_id, span_id, 1, "request");
    churn_span_work();
    flare_span_detach();
    return NULL;
}

int main(int argc, char **argv) {
    long threads = argc > 1 ? atol(argv[1]) : 500;
    g_ms = argc > 2 ? atol(argv[2]) : 4;
    flare_context_publish_resource("thread-churn", "1.0", "test");
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (long i = 0; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, &attr, request, NULL) != 0) return 4;
        pthread_join(t, NULL);
    }
    printf("requests %ld\n", threads);
    return 0;
}
