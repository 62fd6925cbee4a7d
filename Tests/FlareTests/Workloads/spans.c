/*
 * Ground truth for span labels: two threads run short spans in turn, each
 * span burning CPU in its own distinctly named function span_work_K, and
 * publish every attach/detach with clients/c/flare_context.h.
 *
 *   spans RATE MILLISECONDS   RATE = span switches per second per thread
 *
 * Ids encode what the test checks: span_id = 5A | thread | K | counter, and
 * the trace id's low half repeats the span id, so a sample whose stack holds
 * span_work_K must carry a span id with that K and that thread.
 */
#include "flare_context.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SPAN_KINDS 12 /* more than a 16-entry ring holds (8 spans), so an old entry never has the same K */

static long g_rate;
static uint64_t g_end;
static volatile uint64_t g_sink;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put64(uint8_t *out, uint64_t v) {
    for (int i = 7; i >= 0; i--) { out[i] = (uint8_t)v; v >>= 8; }
}

/* Burns CPU until the deadline, checking the clock only now and then so
 * samples land in the span's own function rather than in the vDSO. */
#define SPAN_WORK(K)                                                    \
    __attribute__((noinline)) void span_work_##K(uint64_t deadline) {   \
        uint64_t x = K;                                                 \
        do {                                                            \
            for (int i = 0; i < 300; i++) x = x * 6364136223846793005ull + 1442695040888963407ull; \
        } while (now_ns() < deadline);                                  \
        g_sink += x;                                                    \
    }
SPAN_WORK(0) SPAN_WORK(1) SPAN_WORK(2) SPAN_WORK(3) SPAN_WORK(4) SPAN_WORK(5)
SPAN_WORK(6) SPAN_WORK(7) SPAN_WORK(8) SPAN_WORK(9) SPAN_WORK(10) SPAN_WORK(11)

static void (*const g_work[SPAN_KINDS])(uint64_t) = {
    span_work_0, span_work_1, span_work_2, span_work_3, span_work_4, span_work_5,
    span_work_6, span_work_7, span_work_8, span_work_9, span_work_10, span_work_11,
};

static void *worker(void *arg) {
    uint64_t thread = (uint64_t)(uintptr_t)arg;
    char name[16];
    snprintf(name, sizeof name, "worker%llu", (unsigned long long)thread);
    pthread_setname_np(pthread_self(), name);
    uint64_t period = 1000000000ull / (uint64_t)g_rate;
    uint64_t next = now_ns();
    uint32_t counter = 0;
    while (next < g_end) {
        uint64_t k = counter % SPAN_KINDS;
        uint64_t span = 0x5A00000000000000ull | (thread << 40) | (k << 32) | counter;
        uint8_t trace_id[16], span_id[8];
        put64(trace_id, 0x7ACE000000000000ull | (thread << 40) | (k << 32));
        put64(trace_id + 8, span);
        put64(span_id, span);
        char root[16];
        snprintf(root, sizeof root, "span-%llu", (unsigned long long)k);
        next += period;
        flare_span_attach(trace_id, span_id, span_id, 1, root);
        g_work[k](next);
        flare_span_detach();
        counter++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    g_rate = argc > 1 ? atol(argv[1]) : 1000;
    long ms = argc > 2 ? atol(argv[2]) : 2000;
    if (g_rate <= 0) g_rate = 1000;
    flare_context_publish_resource("ground-truth-c", "1.0", "test");
    g_end = now_ns() + (uint64_t)ms * 1000000ull;
    pthread_t threads[2];
    for (uintptr_t t = 0; t < 2; t++) pthread_create(&threads[t], NULL, worker, (void *)t);
    for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
    return 0;
}
