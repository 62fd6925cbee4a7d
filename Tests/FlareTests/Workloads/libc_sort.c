// A hot path through libc: qsort calls our comparator, bsearch calls it again.
// Built with -O2 -fomit-frame-pointer; libc itself has no frame pointers.
#include <stdlib.h>

static volatile unsigned long sink;

__attribute__((noinline)) int compare_keys(const void *a, const void *b) {
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    for (int i = 0; i < 40; i++) { x = x * 2862933555777941757UL + 3037000493UL; y = y * 2862933555777941757UL + 3037000493UL; }
    sink += x ^ y;
    return *(const unsigned long *)a < *(const unsigned long *)b ? -1 : *(const unsigned long *)a > *(const unsigned long *)b;
}

__attribute__((noinline)) void sort_batch(unsigned long *keys, size_t n) {
    for (size_t i = 0; i < n; i++) keys[i] = (i * 2654435761UL) % 1000003;
    qsort(keys, n, sizeof keys[0], compare_keys);
}

__attribute__((noinline)) void search_batch(unsigned long *keys, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned long key = (i * 40503UL) % 1000003;
        sink += bsearch(&key, keys, n, sizeof keys[0], compare_keys) != 0;
    }
}

int main(int argc, char **argv) {
    unsigned long rounds = argc > 1 ? strtoul(argv[1], 0, 10) : 60;
    size_t n = 20000;
    unsigned long *keys = malloc(n * sizeof *keys);
    for (unsigned long r = 0; r < rounds; r++) {
        sort_batch(keys, n);
        search_batch(keys, n);
    }
    free(keys);
    return 0;
}
