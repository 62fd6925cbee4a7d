// Loads a plugin with dlopen after start-up and spends its time inside it.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) unsigned long call_plugin(unsigned long (*entry)(unsigned long), unsigned long n) {
    return entry(n) + 1;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: dlopen_host PLUGIN.so [ROUNDS]\n"); return 2; }
    unsigned long rounds = argc > 2 ? strtoul(argv[2], 0, 10) : 1000;
    void *handle = dlopen(argv[1], RTLD_NOW);
    if (!handle) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    unsigned long (*entry)(unsigned long) = (unsigned long (*)(unsigned long))dlsym(handle, "plugin_entry");
    unsigned long total = 0;
    for (unsigned long r = 0; r < rounds; r++) total += call_plugin(entry, 1000000);
    return (int)(total & 1);
}
