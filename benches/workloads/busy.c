/*
 * A busy multi-process service stand-in for the agent benchmark: PROCS
 * worker processes each do ROUNDS rounds of mixed work (libc qsort, a
 * hash loop, a short recursive descent), then the parent prints the wall
 * time. Built -O2 without frame pointers, as a real deployment would be.
 *
 *   busy PROCS ROUNDS
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

static int compare(const void *a, const void *b) {
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return (x > y) - (x < y);
}

__attribute__((noinline)) static void sort_batch(unsigned seed) {
    unsigned values[2048];
    for (int i = 0; i < 2048; i++) { seed = seed * 1103515245u + 12345u; values[i] = seed; }
    qsort(values, 2048, sizeof values[0], compare);
    sink += values[1024];
}

__attribute__((noinline)) static unsigned long hash_batch(unsigned long x) {
    for (int i = 0; i < 200000; i++) x = (x ^ (x >> 31)) * 0x9E3779B97F4A7C15ul + i;
    return x;
}

__attribute__((noinline)) static unsigned long descend(int depth, unsigned long x) {
    if (depth == 0) return hash_batch(x);
    return descend(depth - 1, x * 31 + depth) + 1;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int procs = argc > 1 ? atoi(argv[1]) : 4;
    int rounds = argc > 2 ? atoi(argv[2]) : 200;
    double start = now();
    for (int p = 0; p < procs; p++) {
        if (fork() == 0) {
            for (int r = 0; r < rounds; r++) {
                sort_batch((unsigned)(p * 7919 + r));
                sink += descend(12, (unsigned long)r);
            }
            _exit(0);
        }
    }
    while (wait(NULL) > 0) {}
    printf("%.6f\n", now() - start);
    return 0;
}
