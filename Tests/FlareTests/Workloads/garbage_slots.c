/* A process whose FLARE_SLOTS and OTEL_CTX mappings hold garbage (random
 * bytes, or a valid-looking header with a wrong version, or a layout larger
 * than the mapping): the reader must skip it with a warning and no crash.
 *   garbage_slots MODE MILLISECONDS   MODE = random | version | size */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint8_t *named(const char *name, size_t size) {
    int fd = (int)syscall(SYS_memfd_create, name, 0);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) exit(2);
    uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "random";
    long ms = argc > 2 ? atol(argv[2]) : 1000;
    uint8_t *slots = named("FLARE_SLOTS", 65536), *ctx = named("OTEL_CTX", 8192);
    srand(42);
    for (int i = 0; i < 65536; i++) slots[i] = (uint8_t)rand();
    for (int i = 0; i < 8192; i++) ctx[i] = (uint8_t)rand();
    if (strcmp(mode, "random") != 0) {
        uint32_t h[8] = {1, 64, 64 + 16 * 128, 16, 128, 1, 256, 0}; /* 256 slots: larger than 64 KiB */
        if (strcmp(mode, "version") == 0) { h[0] = 7; h[6] = 4; }
        memcpy(slots, "FLARESLT", 8);
        memcpy(slots + 8, h, sizeof h);
        memcpy(ctx, "OTEL_CTX", 8);
        uint32_t v[2] = {2, 1000000}; /* payload_size over the 64 KiB cap */
        memcpy(ctx + 8, v, sizeof v);
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    volatile uint64_t x = 0;
    do {
        for (int i = 0; i < 100000; i++) x += (uint64_t)i * 7;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
    return 0;
}
