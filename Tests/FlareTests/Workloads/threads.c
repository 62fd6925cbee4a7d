// Two named threads, each burning CPU in its own function for the same time.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>

static volatile unsigned long sink;
static unsigned long rounds;

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
    for (unsigned long r = 0; r < rounds; r++) work_alpha(1000000);
    return unused;
}

static void *run_beta(void *unused) {
    pthread_setname_np(pthread_self(), "beta");
    for (unsigned long r = 0; r < rounds; r++) work_beta(1000000);
    return unused;
}

int main(int argc, char **argv) {
    rounds = argc > 1 ? strtoul(argv[1], 0, 10) : 1000;
    pthread_t a, b;
    pthread_create(&a, 0, run_alpha, 0);
    pthread_create(&b, 0, run_beta, 0);
    pthread_join(a, 0);
    pthread_join(b, 0);
    return 0;
}
