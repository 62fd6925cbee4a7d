// CPU split across four functions in known proportions: 40/30/20/10 %.
// Each function runs the same loop body, for rounds proportional to its share.
#include <stdlib.h>

static volatile unsigned long sink;

#define WORK(name, share)                                                          \
    __attribute__((noinline)) void name(unsigned long n) {                         \
        unsigned long x = sink;                                                    \
        for (unsigned long i = 0; i < (share) * n; i++)                            \
            x = x * 6364136223846793005UL + 1442695040888963407UL;                 \
        sink = x;                                                                  \
    }

WORK(work_forty, 4)
WORK(work_thirty, 3)
WORK(work_twenty, 2)
WORK(work_ten, 1)

int main(int argc, char **argv) {
    unsigned long rounds = argc > 1 ? strtoul(argv[1], 0, 10) : 2000;
    for (unsigned long r = 0; r < rounds; r++) {
        work_forty(100000);
        work_thirty(100000);
        work_twenty(100000);
        work_ten(100000);
    }
    return 0;
}
