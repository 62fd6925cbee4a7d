/*
 * Many short-lived processes for the agent tests: the parent starts COUNT
 * children one after another (PARALLEL at a time); each execs this program
 * again and burns MS milliseconds of CPU in short_burn(). The parent prints
 * the children's total CPU time in seconds.
 *
 *   shortlived COUNT MS PARALLEL
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) void short_burn(double seconds) {
    double end = cpu_now() + seconds;
    unsigned long x = sink;
    do {
        for (int i = 0; i < 5000; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    } while (cpu_now() < end);
    sink = x;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "child") == 0) {
        short_burn(atof(argv[2]) / 1000.0);
        return 0;
    }
    int count = argc > 1 ? atoi(argv[1]) : 1000;
    const char *ms = argc > 2 ? argv[2] : "10";
    int parallel = argc > 3 ? atoi(argv[3]) : 2;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return 1;
    self[n] = 0;
    int running = 0;
    for (int i = 0; i < count; i++) {
        if (running == parallel) { wait(NULL); running--; }
        pid_t pid = fork();
        if (pid == 0) {
            execl(self, argv[0], "child", ms, (char *)NULL);
            _exit(127);
        }
        if (pid > 0) running++;
    }
    while (running-- > 0) wait(NULL);
    struct rusage usage;
    getrusage(RUSAGE_CHILDREN, &usage);
    printf("%.6f\n", usage.ru_utime.tv_sec + usage.ru_utime.tv_usec * 1e-6 + usage.ru_stime.tv_sec + usage.ru_stime.tv_usec * 1e-6);
    return 0;
}
