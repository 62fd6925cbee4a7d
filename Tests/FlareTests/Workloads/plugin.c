// A shared library the dlopen workload loads at run time.
static volatile unsigned long sink;

__attribute__((noinline)) unsigned long plugin_hot(unsigned long n) {
    unsigned long x = sink;
    for (unsigned long i = 0; i < n; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    sink = x;
    return x;
}

unsigned long plugin_entry(unsigned long n) { return plugin_hot(n) + 1; }
