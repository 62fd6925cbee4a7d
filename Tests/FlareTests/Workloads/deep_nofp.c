// Built with -O2 -fomit-frame-pointer: the hot leaf is four calls below main,
// and no function keeps a frame pointer, so only DWARF CFI can walk the stack.
#include <stdlib.h>

static volatile unsigned long sink;

__attribute__((noinline)) unsigned long leaf_hot(unsigned long n) {
    unsigned long x = sink;
    for (unsigned long i = 0; i < n; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    return x;
}

// Each level keeps something live across the call so the compiler cannot turn
// it into a tail call, and uses the stack so the CFA moves.
__attribute__((noinline)) unsigned long level_three(unsigned long n) {
    volatile unsigned long pad[4] = {n, n + 1, n + 2, n + 3};
    return leaf_hot(n) + pad[1];
}

__attribute__((noinline)) unsigned long level_two(unsigned long n) { return level_three(n) ^ (n * 3); }
__attribute__((noinline)) unsigned long level_one(unsigned long n) { return level_two(n) + (n >> 2); }

int main(int argc, char **argv) {
    unsigned long rounds = argc > 1 ? strtoul(argv[1], 0, 10) : 2000;
    unsigned long total = 0;
    for (unsigned long r = 0; r < rounds; r++) total += level_one(1000000);
    sink = total;
    return 0;
}
