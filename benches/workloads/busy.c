/*
 * A busy multi-process service stand-in for the agent benchmark: PROCS
 * worker processes each do ROUNDS rounds of mixed work (libc qsort, a
 * hash loop, a short recursive descent), then the parent prints the wall
 * time. Built -O2 without frame pointers, as a real deployment would be.
 *
 *   busy PROCS ROUNDS          fixed work, prints the wall time
 *   busy PROCS --count FILE    runs until killed; worker p adds each finished
 *                              round to the 64-bit counter at byte 64 * p of
 *                              FILE, so a reader can measure throughput over
 *                              any interval without processes starting or
 *                              finishing inside it
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

static void round_of_work(int p, unsigned r) {
    sort_batch((unsigned)(p * 7919) + r);
    sink += descend(12, (unsigned long)r);
}

static int count_forever(int procs, const char *path) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, 64 * procs) != 0) { perror(path); return 1; }
    volatile unsigned long *counters = mmap(NULL, 64 * procs, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (counters == MAP_FAILED) { perror("mmap"); return 1; }
    for (int p = 0; p < procs; p++) {
        if (fork() == 0) {
            for (unsigned r = 0;; r++) {
                round_of_work(p, r);
                __atomic_add_fetch(&counters[8 * p], 1, __ATOMIC_RELAXED);
            }
        }
    }
    while (wait(NULL) > 0) {}
    return 0;
}

int main(int argc, char **argv) {
    int procs = argc > 1 ? atoi(argv[1]) : 4;
    if (argc > 3 && strcmp(argv[2], "--count") == 0) return count_forever(procs, argv[3]);
    int rounds = argc > 2 ? atoi(argv[2]) : 200;
    double start = now();
    for (int p = 0; p < procs; p++) {
        if (fork() == 0) {
            for (int r = 0; r < rounds; r++) round_of_work(p, (unsigned)r);
            _exit(0);
        }
    }
    while (wait(NULL) > 0) {}
    printf("%.6f\n", now() - start);
    return 0;
}
