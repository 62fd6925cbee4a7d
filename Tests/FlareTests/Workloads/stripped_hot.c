// A program whose only hot function has no symbol once the binary is
// stripped: its name can then come only from a separate debug file.
//   stripped_hot MILLISECONDS
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

static unsigned long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long)ts.tv_sec * 1000ul + (unsigned long)ts.tv_nsec / 1000000ul;
}

__attribute__((noinline)) void hidden_hot_loop(unsigned long until) {
    unsigned long x = until;
    do {
        for (int i = 0; i < 100000; i++) x = x * 6364136223846793005ul + 1442695040888963407ul;
        sink += x;
    } while (now_ms() < until);
}

int main(int argc, char **argv) {
    hidden_hot_loop(now_ms() + (unsigned long)(argc > 1 ? atol(argv[1]) : 3000));
    return 0;
}
