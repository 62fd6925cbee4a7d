// Ground truth for `flare diff`: two "deploys" of one program. Each round gives
// four functions a fixed number of work units (the same loop in each, so a unit
// costs the same everywhere); a build changes the units with -D flags, e.g.
// -DSLOWED_UNITS=40 -DFASTER_UNITS=15 doubles one function and halves another.
// Shares of CPU then follow the units whatever the machine's speed or load.
// A round (100 units) is much shorter than the sampling period, so samples
// do not lock onto the rounds' rhythm.
// Usage: deploy [CPU seconds, default 3]
#include <stdlib.h>
#include <time.h>

#ifndef SLOWED_UNITS
#define SLOWED_UNITS 20
#endif
#ifndef FASTER_UNITS
#define FASTER_UNITS 30
#endif
#ifndef STEADY_A_UNITS
#define STEADY_A_UNITS 25
#endif
#ifndef STEADY_B_UNITS
#define STEADY_B_UNITS 25
#endif

#define UNIT_ITERATIONS 1000L

// The loop is spelled out in each function so that its time is the function's own;
// aligning the functions alike gives every copy of the loop the same speed.
#define SPIN(units)                                                     \
    for (volatile long i = 0; i < (units) * UNIT_ITERATIONS; i++) {     \
    }

__attribute__((noinline, aligned(64))) void deploy_slowed(void) { SPIN(SLOWED_UNITS) }
__attribute__((noinline, aligned(64))) void deploy_faster(void) { SPIN(FASTER_UNITS) }
__attribute__((noinline, aligned(64))) void deploy_steady_a(void) { SPIN(STEADY_A_UNITS) }
__attribute__((noinline, aligned(64))) void deploy_steady_b(void) { SPIN(STEADY_B_UNITS) }

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 3;
    do {
        for (int r = 0; r < 40; r++) {
            deploy_slowed();
            deploy_faster();
            deploy_steady_a();
            deploy_steady_b();
        }
    } while (cpu_seconds() < seconds);
    return 0;
}
