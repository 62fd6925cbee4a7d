/*
 * Scripted writer for the context ABI tests, built from one source as C
 * (gcc -std=c11) and as C++ (g++ -x c++). test_context.py runs it as a child
 * process and reads its mappings from outside, as the agent would.
 *
 * Protocol on stdout, one line each (written with a single write(2) so the
 * forked child's lines never interleave with the parent's):
 *   READY {json}   process identity
 *   EVENT {json}   one attach/detach with clock readings taken around it
 *   CHECK {json}   a checkpoint; the writer then blocks until a stdin line
 *   DONE
 * Keep the code in the common subset of C11 and C++ so both builds test the
 * header the way each language sees it.
 */
#include "../../clients/c/flare_context.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>

/* Defined in writer_other_tu.c, always compiled as C: proves that translation
 * units, even of two languages, share one mapping and one slot per thread. */
#ifdef __cplusplus
extern "C"
#endif
int other_tu_attach(const uint8_t trace_id[16], const uint8_t span_id[8], const uint8_t root_id[8],
                    const char *name);

static void emit(const char *fmt, ...) {
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof buf - 2) n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t off = 0;
    while (off < n) {
        ssize_t w = write(1, buf + off, (size_t)(n - off));
        if (w <= 0) return;
        off += w;
    }
}

static void wait_go(void) {
    char line[256];
    if (fgets(line, sizeof line, stdin) == NULL) exit(3);
}

static uint64_t mono(void) { return flare__now_ns(CLOCK_MONOTONIC); }

static void sleep_us(long us) {
    struct timespec ts;
    ts.tv_sec = us / 1000000;
    ts.tv_nsec = (us % 1000000) * 1000;
    nanosleep(&ts, NULL);
}

static void hex(char *out, const uint8_t *b, size_t n) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* A span whose every id is derived from k, so a reader can detect torn reads. */
typedef struct {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t root_id[8];
    char name[96];
} span_t;

static span_t make_span(uint64_t k) {
    span_t s;
    for (int i = 0; i < 8; i++) {
        uint8_t b = (uint8_t)(k >> (56 - 8 * i));
        s.trace_id[i] = b;
        s.trace_id[8 + i] = b;
        s.span_id[i] = b;
        s.root_id[i] = (uint8_t)(b ^ 0x5a);
    }
    snprintf(s.name, sizeof s.name, "op-%" PRIu64, k);
    return s;
}

static int g_tid;

static void event(const char *op, uint64_t before, uint64_t after, int rc, const span_t *s, uint8_t trace_flags,
                  const char *name) {
    if (s == NULL) {
        emit("EVENT {\"op\":\"%s\",\"before\":%" PRIu64 ",\"after\":%" PRIu64 ",\"rc\":%d,\"tid\":%d}", op, before,
             after, rc, g_tid);
        return;
    }
    char t[33], sp[17], r[17];
    hex(t, s->trace_id, 16);
    hex(sp, s->span_id, 8);
    hex(r, s->root_id, 8);
    /* Names are printed as hex so non-ASCII test names survive JSON untouched. */
    char nh[2 * 128 + 1] = "";
    if (name != NULL) hex(nh, (const uint8_t *)name, strlen(name) < 128 ? strlen(name) : 128);
    emit("EVENT {\"op\":\"%s\",\"before\":%" PRIu64 ",\"after\":%" PRIu64 ",\"rc\":%d,\"tid\":%d,"
         "\"trace_id\":\"%s\",\"span_id\":\"%s\",\"root_id\":\"%s\",\"trace_flags\":%u,\"name_hex\":%s%s%s}",
         op, before, after, rc, g_tid, t, sp, r, trace_flags, name ? "\"" : "", name ? nh : "null", name ? "\"" : "");
}

static int do_attach(const span_t *s, uint8_t flags, const char *name) {
    uint64_t before = mono();
    int rc = flare_span_attach(s->trace_id, s->span_id, s->root_id, flags, name);
    uint64_t after = mono();
    event("attach", before, after, rc, s, flags, name);
    return rc;
}

static int do_detach(void) {
    uint64_t before = mono();
    int rc = flare_span_detach();
    uint64_t after = mono();
    event("detach", before, after, rc, NULL, 0, NULL);
    return rc;
}

/* ---- scenarios ---- */

static void scenario_basic(void) {
    int rc = flare_context_publish_resource("checkout", "1.2.3", "prod");
    emit("RESOURCE {\"rc\":%d}", rc);
    span_t a = make_span(0xA1), b = make_span(0xB2);
    sleep_us(3000);
    do_attach(&a, 1, a.name);
    sleep_us(3000);
    {
        uint64_t before = mono();
        int r = other_tu_attach(b.trace_id, b.span_id, a.span_id, "root-from-other-tu");
        uint64_t after = mono();
        span_t shown = b;
        memcpy(shown.root_id, a.span_id, 8);
        event("attach", before, after, r, &shown, 1, "root-from-other-tu");
    }
    sleep_us(3000);
    do_attach(&a, 0, a.name);
    sleep_us(3000);
    do_detach();
    sleep_us(3000);
    emit("CHECK {\"name\":\"basic\"}");
    wait_go();
    rc = flare_context_publish_resource("checkout", "1.2.4", NULL);
    emit("RESOURCE {\"rc\":%d}", rc);
    emit("CHECK {\"name\":\"resource-updated\"}");
    wait_go();
}

static void scenario_wrap(int ops) {
    for (int i = 0; i < ops; i++) {
        if (i % 2 == 0) {
            span_t s = make_span((uint64_t)i + 1000);
            do_attach(&s, 1, s.name);
        } else {
            do_detach();
        }
        sleep_us(1000);
    }
    emit("CHECK {\"name\":\"wrap\",\"ops\":%d}", ops);
    wait_go();
}

static void scenario_names(void) {
    /* 50 two-byte characters: 100 bytes, cut to 72 on a character boundary. */
    char two[128] = "", odd[128] = "a", four[128] = "", exact[80];
    for (int i = 0; i < 50; i++) strcat(two, "\xc3\xa9");
    for (int i = 0; i < 50; i++) strcat(odd, "\xc3\xa9");
    for (int i = 0; i < 20; i++) strcat(four, "\xf0\x9f\x94\xa5");
    memset(exact, 'x', 72);
    exact[72] = '\0';
    const char *names[] = {two, odd, four, exact, "", NULL};
    for (int i = 0; i < 6; i++) {
        span_t s = make_span((uint64_t)i + 77);
        do_attach(&s, 1, names[i]);
        sleep_us(2000);
    }
    emit("CHECK {\"name\":\"names\"}");
    wait_go();
}

typedef struct {
    uint64_t k;
    int detach;
} churn_arg_t;

static void *churn_thread(void *p) {
    churn_arg_t *a = (churn_arg_t *)p;
    span_t s = make_span(a->k);
    flare_span_attach(s.trace_id, s.span_id, s.root_id, 1, s.name);
    /* Half the threads exit while still attached: the TLS destructor must free
     * their slot all the same. */
    if (a->detach) flare_span_detach();
    return NULL;
}

static void scenario_churn(int total) {
    enum { BATCH = 64 };
    pthread_t th[BATCH];
    churn_arg_t args[BATCH];
    for (int done = 0; done < total;) {
        int n = total - done < BATCH ? total - done : BATCH;
        for (int i = 0; i < n; i++) {
            args[i].k = (uint64_t)(done + i);
            args[i].detach = (done + i) % 2;
            if (pthread_create(&th[i], NULL, churn_thread, &args[i]) != 0) exit(4);
        }
        for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
        done += n;
    }
    emit("CHECK {\"name\":\"churn\",\"threads\":%d}", total);
    wait_go();
}

typedef struct {
    uint64_t k;
    int tid;
    int rc;
    pthread_barrier_t *ready;
    pthread_barrier_t *go;
} overflow_arg_t;

static void *overflow_thread(void *p) {
    overflow_arg_t *a = (overflow_arg_t *)p;
    a->tid = (int)flare__gettid();
    span_t s = make_span(a->k);
    a->rc = flare_span_attach(s.trace_id, s.span_id, s.root_id, 1, s.name);
    pthread_barrier_wait(a->ready);
    pthread_barrier_wait(a->go);
    return NULL;
}

static void scenario_overflow(int threads) {
    pthread_t th[64];
    overflow_arg_t args[64];
    pthread_barrier_t ready, go;
    if (threads > 64) threads = 64;
    pthread_barrier_init(&ready, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        args[i].k = (uint64_t)i + 500;
        args[i].ready = &ready;
        args[i].go = &go;
        pthread_create(&th[i], NULL, overflow_thread, &args[i]);
    }
    pthread_barrier_wait(&ready);
    char list[64 * 32] = "";
    for (int i = 0; i < threads; i++) {
        char item[48];
        snprintf(item, sizeof item, "%s[%d,%d,%" PRIu64 "]", i ? "," : "", args[i].tid, args[i].rc, args[i].k);
        strcat(list, item);
    }
    emit("CHECK {\"name\":\"overflow\",\"threads\":[%s]}", list);
    wait_go();
    pthread_barrier_wait(&go);
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    emit("CHECK {\"name\":\"overflow-exited\"}");
    wait_go();
}

static void scenario_fork(void) {
    flare_context_publish_resource("parent-svc", "1", NULL);
    span_t a = make_span(0xAAAA), b = make_span(0xBBBB);
    do_attach(&a, 1, "parent-root");
    int ready[2], release[2];
    if (pipe(ready) != 0 || pipe(release) != 0) exit(5);
    pid_t child = fork();
    if (child == 0) {
        /* Only the parent may hold the write end: if the parent dies, read()
         * below returns 0 and the child exits instead of lingering. */
        close(release[1]);
        close(ready[0]);
        /* The child inherits neither mapping; its first attach builds its own. */
        int rc_ctx = flare_context_publish_resource("child-svc", "2", NULL);
        int rc = flare_span_attach(b.trace_id, b.span_id, b.root_id, 1, "child-root");
        char msg[128];
        int n = snprintf(msg, sizeof msg, "%d %d %d %d", (int)getpid(), (int)flare__gettid(), rc, rc_ctx);
        if (write(ready[1], msg, (size_t)n) != n) _exit(6);
        char c;
        _exit(read(release[0], &c, 1) == 1 ? 0 : 7);
    }
    close(release[0]);
    close(ready[1]);
    char msg[128] = "";
    ssize_t n = read(ready[0], msg, sizeof msg - 1);
    if (n <= 0) exit(8);
    msg[n] = '\0';
    int cpid = 0, ctid = 0, crc = 0, cctx = 0;
    sscanf(msg, "%d %d %d %d", &cpid, &ctid, &crc, &cctx);
    emit("CHECK {\"name\":\"fork\",\"child_pid\":%d,\"child_tid\":%d,\"child_rc\":%d,\"child_ctx_rc\":%d}", cpid, ctid,
         crc, cctx);
    wait_go();
    if (write(release[1], "x", 1) != 1) exit(9);
    int status = 0;
    waitpid(child, &status, 0);
    emit("CHECK {\"name\":\"fork-reaped\",\"child_status\":%d}", status);
    wait_go();
}

static int g_stop;
static uint64_t g_written;

static void *stress_thread(void *p) {
    int *tid = (int *)p;
    __atomic_store_n(tid, (int)flare__gettid(), __ATOMIC_RELEASE);
    uint64_t k = 1;
    while (!__atomic_load_n(&g_stop, __ATOMIC_ACQUIRE)) {
        span_t s = make_span(k++);
        flare_span_attach(s.trace_id, s.span_id, s.root_id, 1, s.name);
        /* Spread entries out a little so the 16-entry ring spans a time range a
         * reader in another process can actually hit. */
        uint64_t until = mono() + 2000;
        while (mono() < until) {
        }
        if (k % 3 == 0) flare_span_detach();
    }
    __atomic_store_n(&g_written, k, __ATOMIC_RELEASE);
    return NULL;
}

static void scenario_stress(void) {
    pthread_t th;
    int tid = 0;
    pthread_create(&th, NULL, stress_thread, &tid);
    while (__atomic_load_n(&tid, __ATOMIC_ACQUIRE) == 0) sleep_us(100);
    sleep_us(20000);
    emit("CHECK {\"name\":\"stress\",\"writer_tid\":%d}", tid);
    wait_go();
    __atomic_store_n(&g_stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    emit("CHECK {\"name\":\"stress-done\",\"written\":%" PRIu64 "}", __atomic_load_n(&g_written, __ATOMIC_ACQUIRE));
    wait_go();
}

static void scenario_bench(long iterations) {
    span_t s = make_span(42);
    /* Warm up: claims the slot so the timed loop is the steady-state path. */
    for (int i = 0; i < 1000; i++) {
        flare_span_attach(s.trace_id, s.span_id, s.root_id, 1, s.name);
        flare_span_detach();
    }
    uint64_t t0 = mono();
    for (long i = 0; i < iterations; i++) {
        flare_span_attach(s.trace_id, s.span_id, s.root_id, 1, s.name);
        flare_span_detach();
    }
    uint64_t t1 = mono();
    volatile uint64_t sink = 0;
    for (long i = 0; i < iterations; i++) sink += mono() + mono();
    uint64_t t2 = mono();
    (void)sink;
    emit("CHECK {\"name\":\"bench\",\"pair_ns\":%.2f,\"two_clock_reads_ns\":%.2f}", (double)(t1 - t0) / iterations,
         (double)(t2 - t1) / iterations);
    wait_go();
}

static void scenario_fallback(void) {
    int ctx_rc = flare_context_publish_resource("fallback-svc", NULL, NULL);
    span_t a = make_span(0xFA11);
    int rc = do_attach(&a, 1, a.name);
    emit("CHECK {\"name\":\"fallback\",\"rc\":%d,\"ctx_rc\":%d}", rc, ctx_rc);
    wait_go();
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    g_tid = (int)flare__gettid();
    emit("READY {\"pid\":%d,\"tid\":%d}", (int)getpid(), g_tid);
    const char *scenario = argc > 1 ? argv[1] : "basic";
    long arg = argc > 2 ? atol(argv[2]) : 0;
    if (strcmp(scenario, "basic") == 0)
        scenario_basic();
    else if (strcmp(scenario, "wrap") == 0)
        scenario_wrap(arg ? (int)arg : 40);
    else if (strcmp(scenario, "names") == 0)
        scenario_names();
    else if (strcmp(scenario, "churn") == 0)
        scenario_churn(arg ? (int)arg : 3000);
    else if (strcmp(scenario, "overflow") == 0)
        scenario_overflow(arg ? (int)arg : 6);
    else if (strcmp(scenario, "fork") == 0)
        scenario_fork();
    else if (strcmp(scenario, "stress") == 0)
        scenario_stress();
    else if (strcmp(scenario, "bench") == 0)
        scenario_bench(arg ? arg : 2000000);
    else if (strcmp(scenario, "fallback") == 0)
        scenario_fallback();
    else {
        fprintf(stderr, "unknown scenario %s\n", scenario);
        return 2;
    }
    emit("DONE");
    return 0;
}
