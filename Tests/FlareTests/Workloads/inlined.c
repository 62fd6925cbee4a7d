// Built with -O2 -g: mix() is always inlined into churn(), so its time shows
// as an inlined frame with the file and line of its hot loop.
#include <stdlib.h>

static volatile unsigned long sink;

static inline __attribute__((always_inline)) unsigned long mix(unsigned long x, unsigned long n) {
    for (unsigned long i = 0; i < n; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;  // MIX_LOOP
    return x;
}

__attribute__((noinline)) unsigned long churn(unsigned long n) {
    unsigned long x = sink;
    x = mix(x, n);
    return x ^ (x >> 7);
}

int main(int argc, char **argv) {
    unsigned long rounds = argc > 1 ? strtoul(argv[1], 0, 10) : 1000;
    for (unsigned long r = 0; r < rounds; r++) sink += churn(1000000);
    return 0;
}
