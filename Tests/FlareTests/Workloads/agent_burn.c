/*
 * A busy process for the agent tests: burns CPU in burn_here() for the
 * given number of seconds, with short sleeps so it never hogs a CPU.
 *
 *   agent_burn SECONDS
 */
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) void burn_here(double seconds) {
    double end = now() + seconds;
    unsigned long x = sink;
    do {
        for (int i = 0; i < 20000; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    } while (now() < end);
    sink = x;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 10;
    double end = now() + seconds;
    struct timespec pause = {0, 10 * 1000 * 1000};
    while (now() < end) {
        burn_here(0.03);
        nanosleep(&pause, NULL);
    }
    return 0;
}
