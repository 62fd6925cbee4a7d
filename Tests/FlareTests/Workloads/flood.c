/*
 * Floods an unprivileged process can aim at a whole-host profiler
 * (docs/security.md). Each mode prints "ready" once the flood is in place,
 * then burns CPU in flood_burn() (or in its mapped pages) for SECONDS.
 *
 *   flood threads COUNT SECONDS   COUNT threads (fewer if RLIMIT_NPROC says
 *                                 so; prints "threads N") blocked on a pipe,
 *                                 stacks carved from one mapping, named with
 *                                 control characters
 *   flood maps COUNT SECONDS      COUNT executable mappings of one file, no
 *                                 two mergeable; the burn runs in some of them
 *   flood forks SECONDS           children forked and reaped as fast as two
 *                                 workers can; prints "forks N"
 *   flood names SECONDS           re-runs itself from a path of about 4 KB of
 *                                 control characters, its name and its
 *                                 threads' names control characters too
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;
static int block_pipe[2];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) void flood_burn(double seconds) {
    double end = now() + seconds;
    unsigned long x = sink;
    do {
        for (int i = 0; i < 20000; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    } while (now() < end);
    sink = x;
}

static void ready(void) {
    printf("ready\n");
    fflush(stdout);
}

/* Control characters for names: C0 (escape sequences, bell, newline,
 * carriage return), DEL and C1's CSI in UTF-8. Never NUL or '/'. */
static void hostile_name(char *out, size_t length) {
    static const char pattern[] = "\x1b[31m\x07\n\r\t\x01\x7f\xc2\x9b" "2J\x08\x0b\x0c";
    for (size_t i = 0; i < length; i++) out[i] = pattern[i % (sizeof pattern - 1)];
    out[length] = 0;
}

static void *blocked(void *unused) {
    (void)unused;
    char c;
    while (read(block_pipe[0], &c, 1) < 0 && errno == EINTR) {}
    return NULL;
}

static int threads(long count, double seconds) {
    const size_t stack = 16384;
    /* No more than this user may have (RLIMIT_NPROC counts threads), less a margin. */
    struct rlimit limit;
    if (getrlimit(RLIMIT_NPROC, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && (long)limit.rlim_cur - 2000 < count)
        count = (long)limit.rlim_cur - 2000;
    printf("threads %ld\n", count);
    if (pipe(block_pipe) != 0) return 1;
    char *stacks = mmap(NULL, stack * count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (stacks == MAP_FAILED) { perror("mmap"); return 1; }
    char name[16];
    hostile_name(name, 15);
    long started = 0;
    for (; started < count; started++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstack(&attr, stacks + started * stack, stack);
        pthread_t thread;
        int error = pthread_create(&thread, &attr, blocked, NULL);
        pthread_attr_destroy(&attr);
        if (error) { fprintf(stderr, "pthread_create %ld: %s\n", started, strerror(error)); return 1; }
        if (started % 16 == 0) pthread_setname_np(thread, name);
    }
    ready();
    flood_burn(seconds);
    _exit(0);
}

/* x86-64: dec %rdi; jnz .-3; ret */
static const unsigned char spin_code[] = {0x48, 0xff, 0xcf, 0x75, 0xfb, 0xc3};

static int maps(long count, double seconds) {
    const long page = sysconf(_SC_PAGESIZE);
    char path[] = "/tmp/flare-flood-maps-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 1;
    unlink(path);
    if (ftruncate(fd, page * count) != 0) return 1;
    /* Code in one page of every 1 000; the rest stays a hole. */
    for (long i = 0; i < count; i += 1000) {
        if (pwrite(fd, spin_code, sizeof spin_code, i * page) != (ssize_t)sizeof spin_code) return 1;
    }
    char *region = mmap(NULL, page * count, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED) return 1;
    /* Page i of the region shows page count-1-i of the file: neighbours never merge. */
    for (long i = 0; i < count; i++) {
        if (mmap(region + i * page, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED, fd, (count - 1 - i) * page) == MAP_FAILED) {
            fprintf(stderr, "mmap %ld: %s\n", i, strerror(errno));
            return 1;
        }
    }
    ready();
    double end = now() + seconds;
    /* Half the time in flood_burn, half spread over the mapped code. */
    while (now() < end) {
        flood_burn(0.01);
        for (long i = 0; i < count; i += 1000) {
            void (*spin)(long) = (void (*)(long))(region + (count - 1 - i) * page);
            spin(100000);
        }
    }
    return 0;
}

static int forks(double seconds) {
    long total = 0;
    int report[2];
    if (pipe(report) != 0) return 1;
    for (int worker = 0; worker < 2; worker++) {
        if (fork() == 0) {
            long n = 0;
            double end = now() + seconds;
            while (now() < end) {
                pid_t pid = fork();
                if (pid == 0) _exit(0);
                if (pid > 0) { waitpid(pid, NULL, 0); n++; }
            }
            if (write(report[1], &n, sizeof n) != sizeof n) _exit(1);
            _exit(0);
        }
    }
    ready();
    for (int worker = 0; worker < 2; worker++) {
        long n = 0;
        if (read(report[0], &n, sizeof n) == sizeof n) total += n;
        wait(NULL);
    }
    printf("forks %ld\n", total);
    return 0;
}

static void *named_burn(void *seconds) {
    char name[16];
    hostile_name(name, 15);
    prctl(PR_SET_NAME, name);
    flood_burn(*(double *)seconds);
    return NULL;
}

static int names(double seconds, const char *self) {
    if (strcmp(self, "child") != 0) {
        /* Build the path, copy this program to its end and run it from there. */
        char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) return 1;
        exe[n] = 0;
        char base[64];
        snprintf(base, sizeof base, "/tmp/flare-flood-names-%d", getpid());
        if (mkdir(base, 0755) != 0 || chdir(base) != 0) return 1;
        char component[256];
        hostile_name(component, 255);
        for (int depth = 0; depth < 14; depth++) {
            if (mkdir(component, 0755) != 0 || chdir(component) != 0) { perror("mkdir"); return 1; }
        }
        int in = open(exe, O_RDONLY), out = open(component, O_WRONLY | O_CREAT | O_TRUNC, 0755);
        if (in < 0 || out < 0) return 1;
        char buffer[65536];
        ssize_t got;
        while ((got = read(in, buffer, sizeof buffer)) > 0) {
            if (write(out, buffer, got) != got) return 1;
        }
        close(in);
        close(out);
        char relative[260] = "./";
        strcat(relative, component);
        char duration[32];
        snprintf(duration, sizeof duration, "%f", seconds);
        execl(relative, "flood", "names", duration, "child", (char *)NULL);
        perror("execl");
        return 1;
    }
    char name[16];
    hostile_name(name, 15);
    prctl(PR_SET_NAME, name);
    ready();
    pthread_t thread;
    pthread_create(&thread, NULL, named_burn, &seconds);
    flood_burn(seconds);
    pthread_join(thread, NULL);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "threads") == 0) return threads(atol(argv[2]), atof(argv[3]));
    if (argc >= 4 && strcmp(argv[1], "maps") == 0) return maps(atol(argv[2]), atof(argv[3]));
    if (argc >= 3 && strcmp(argv[1], "forks") == 0) return forks(atof(argv[2]));
    if (argc >= 3 && strcmp(argv[1], "names") == 0) return names(atof(argv[2]), argc > 3 ? argv[3] : "");
    fprintf(stderr, "usage: flood threads COUNT SECONDS | maps COUNT SECONDS | forks SECONDS | names SECONDS\n");
    return 2;
}
