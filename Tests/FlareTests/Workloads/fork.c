// The parent forks a child that does all the work, then waits for it.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile unsigned long sink;

__attribute__((noinline)) void child_work(unsigned long n) {
    unsigned long x = sink;
    for (unsigned long i = 0; i < n; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    sink = x;
}

int main(int argc, char **argv) {
    unsigned long rounds = argc > 1 ? strtoul(argv[1], 0, 10) : 1000;
    pid_t child = fork();
    if (child == 0) {
        for (unsigned long r = 0; r < rounds; r++) child_work(1000000);
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    return 0;
}
