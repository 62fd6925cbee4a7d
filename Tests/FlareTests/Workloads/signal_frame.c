// A hot path inside a signal handler: the stack runs through the kernel's
// signal frame (__restore_rt), whose CFI is DWARF expressions.
#include <signal.h>
#include <stdlib.h>
#include <sys/time.h>

static volatile unsigned long sink;

__attribute__((noinline)) static void handler_work(void) {
    for (unsigned long i = 0; i < 400000; i++) sink += i * i;
}

static void on_alarm(int sig) {
    (void)sig;
    handler_work();
}

__attribute__((noinline)) static void interrupted_loop(long rounds) {
    for (long r = 0; r < rounds; r++)
        for (unsigned long i = 0; i < 1000000; i++) sink += i;
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 2000;
    struct sigaction action = {0};
    action.sa_handler = on_alarm;
    sigaction(SIGPROF, &action, NULL);
    // Every 2 ms of CPU time; the handler takes a good share of it.
    struct itimerval timer = {{0, 2000}, {0, 2000}};
    setitimer(ITIMER_PROF, &timer, NULL);
    interrupted_loop(rounds);
    return 0;
}
