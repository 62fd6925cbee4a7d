// Deletes its own executable, then keeps working: the profile must survive.
#include <stdlib.h>
#include <unistd.h>

static volatile unsigned long sink;

__attribute__((noinline)) void work_after_delete(unsigned long n) {
    unsigned long x = sink;
    for (unsigned long i = 0; i < n; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    sink = x;
}

int main(int argc, char **argv) {
    unsigned long rounds = argc > 1 ? strtoul(argv[1], 0, 10) : 1000;
    unlink(argv[0]);
    for (unsigned long r = 0; r < rounds; r++) work_after_delete(1000000);
    return 0;
}
