// 200-deep recursion with the work at the bottom (-O2 -fomit-frame-pointer).
#include <stdlib.h>

static volatile unsigned long sink;

__attribute__((noinline)) unsigned long recurse(int depth, unsigned long n) {
    if (depth == 0) {
        unsigned long x = sink;
        for (unsigned long i = 0; i < n; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
        return x;
    }
    volatile int keep = depth;  // defeats tail-call elimination
    return recurse(depth - 1, n) + keep;
}

int main(int argc, char **argv) {
    unsigned long rounds = argc > 1 ? strtoul(argv[1], 0, 10) : 1000;
    for (unsigned long r = 0; r < rounds; r++) sink += recurse(200, 1000000);
    return 0;
}
