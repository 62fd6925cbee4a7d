// CPU split across four functions in known proportions: 40/30/20/10 %.
// Each round gives each function a time budget proportional to its share
// (4, 3, 2 and 1 ms), so the split holds whatever the code's speed.
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define WORK(name, share)                                                          \
    __attribute__((noinline)) void name(double unit) {                             \
        double end = now() + (share) * unit;                                       \
        unsigned long x = sink;                                                    \
        do {                                                                       \
            for (int i = 0; i < 20000; i++)                                        \
                x = x * 6364136223846793005UL + 1442695040888963407UL;             \
        } while (now() < end);                                                     \
        sink = x;                                                                  \
    }

WORK(work_forty, 4)
WORK(work_thirty, 3)
WORK(work_twenty, 2)
WORK(work_ten, 1)

int main(int argc, char **argv) {
    unsigned long rounds = argc > 1 ? strtoul(argv[1], 0, 10) : 200;  // 10 ms each
    for (unsigned long r = 0; r < rounds; r++) {
        work_forty(0.001);
        work_thirty(0.001);
        work_twenty(0.001);
        work_ten(0.001);
    }
    return 0;
}
