// Two named threads, each burning the same amount of its own CPU time in its
// own function. Budgeted by the thread's CPU clock, not by iterations, so the
// 50/50 split holds even when the two vCPUs run at different speeds.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;
static double budget;

static double thread_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define WORK(name)                                                                 \
    __attribute__((noinline)) void name(unsigned long n) {                         \
        unsigned long x = sink;                                                    \
        for (unsigned long i = 0; i < n; i++)                                      \
            x = x * 6364136223846793005UL + 1442695040888963407UL;                 \
        sink = x;                                                                  \
    }

WORK(work_alpha)
WORK(work_beta)

static void *run_alpha(void *unused) {
    pthread_setname_np(pthread_self(), "alpha");
    while (thread_cpu_seconds() < budget) work_alpha(200000);
    return unused;
}

static void *run_beta(void *unused) {
    pthread_setname_np(pthread_self(), "beta");
    while (thread_cpu_seconds() < budget) work_beta(200000);
    return unused;
}

int main(int argc, char **argv) {
    budget = (argc > 1 ? strtoul(argv[1], 0, 10) : 1000) / 1000.0;  // milliseconds of CPU per thread
    pthread_t a, b;
    pthread_create(&a, 0, run_alpha, 0);
    pthread_create(&b, 0, run_beta, 0);
    pthread_join(a, 0);
    pthread_join(b, 0);
    return 0;
}
