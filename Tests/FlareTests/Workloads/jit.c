// A tiny JIT: copies a counting loop into anonymous executable memory, names
// it in /tmp/perf-PID.map as perf's JIT interface asks, and runs it.
//   jit ROUNDS [nomap]   nomap: writes no map (someone else may plant one);
//                        prints "jit_code 0xADDR" either way.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// mov rcx, rdi; loop: dec rcx; jnz loop; mov rax, rdi; ret
static const unsigned char code[] = {0x48, 0x89, 0xf9, 0x48, 0xff, 0xc9, 0x75, 0xfb, 0x48, 0x89, 0xf8, 0xc3};

__attribute__((noinline)) unsigned long run_jitted(unsigned long (*fn)(unsigned long), unsigned long n) {
    return fn(n) + 1;
}

int main(int argc, char **argv) {
    unsigned long rounds = argc > 1 ? strtoul(argv[1], 0, 10) : 1000;
    unsigned char *region = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) { perror("mmap"); return 1; }
    memcpy(region + 64, code, sizeof code);
    if (argc <= 2 || strcmp(argv[2], "nomap") != 0) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/perf-%d.map", getpid());
        FILE *map = fopen(path, "w");
        if (map == NULL) { perror(path); return 1; }
        fprintf(map, "%lx %zx jitted_counting_loop\n", (unsigned long)(region + 64), sizeof code);
        fclose(map);
    }
    printf("jit_code 0x%lx\n", (unsigned long)(region + 64));
    fflush(stdout);
    unsigned long (*fn)(unsigned long) = (unsigned long (*)(unsigned long))(region + 64);
    unsigned long total = 0;
    for (unsigned long r = 0; r < rounds; r++) total += run_jitted(fn, 3000000);
    return (int)(total & 1);
}
