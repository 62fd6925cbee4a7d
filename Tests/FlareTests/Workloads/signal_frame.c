// A hot path inside a signal handler: the stack runs through the kernel's
// signal frame (__restore_rt), whose CFI is DWARF expressions. The loop sends
// itself SIGPROF with a raw tgkill every other round, so the handler runs
// (delivered on the syscall's return, interrupting interrupted_loop itself)
// however the machine schedules it: a CPU-time timer could stay silent.
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile unsigned long sink;

__attribute__((noinline)) static void handler_work(void) {
    for (unsigned long i = 0; i < 400000; i++) sink += i * i;
}

static void on_alarm(int sig) {
    (void)sig;
    handler_work();
}

__attribute__((noinline)) static void interrupted_loop(long rounds) {
    long pid = getpid(), tid = syscall(SYS_gettid);
    for (long r = 0; r < rounds; r++) {
        for (unsigned long i = 0; i < 1000000; i++) sink += i;
        if (r % 2 == 0) {
            long result;
            __asm__ volatile("syscall" : "=a"(result) : "a"((long)SYS_tgkill), "D"(pid), "S"(tid), "d"((long)SIGPROF)
                             : "rcx", "r11", "memory");
        }
    }
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 2000;
    struct sigaction action = {0};
    action.sa_handler = on_alarm;
    sigaction(SIGPROF, &action, NULL);
    // Delivered even if whoever started this process blocked it.
    sigset_t profiling;
    sigemptyset(&profiling);
    sigaddset(&profiling, SIGPROF);
    sigprocmask(SIG_UNBLOCK, &profiling, NULL);
    interrupted_loop(rounds);
    return 0;
}
