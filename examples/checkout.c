/*
 * A small "checkout service" for the demo. Each request is a trace: a root
 * span "GET /checkout" with child spans for validating, pricing and writing
 * the receipt, each burning CPU in its own function. Every tenth request
 * carries a big cart, so its pricing is slow: the trace to look at.
 *
 * The span context is published through clients/c/flare_context.h (so the
 * profiler labels every sample with its span), and the spans themselves are
 * written as OTLP/JSON for the store's POST /v1/traces.
 *
 *   checkout SECONDS SPANS.json
 */
#include "flare_context.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

__attribute__((noinline)) static unsigned long hash_item(unsigned long x, int rounds) {
    for (int i = 0; i < rounds; i++) x = (x ^ (x >> 31)) * 0x9e3779b97f4a7c15UL;
    return x;
}

__attribute__((noinline)) static void validate_cart(int items) {
    for (int i = 0; i < items; i++) sink += hash_item((unsigned long)i, 2000);
}

__attribute__((noinline)) static void apply_discounts(int items) {
    for (int i = 0; i < items; i++) sink += hash_item((unsigned long)i * 7, 9000);
}

__attribute__((noinline)) static void price_cart(int items) {
    for (int i = 0; i < items; i++) sink += hash_item((unsigned long)i * 3, 12000);
    apply_discounts(items);
}

__attribute__((noinline)) static void write_receipt(int items) {
    char buffer[4096];
    for (int i = 0; i < items; i++) {
        snprintf(buffer, sizeof buffer, "item %d: %lu\n", i, hash_item((unsigned long)i, 500));
        sink += strlen(buffer);
    }
}

/* One finished span, kept for the OTLP/JSON file. */
struct span {
    uint8_t trace_id[16], span_id[8], parent_id[8];
    const char *name;
    uint64_t start_ns, end_ns;
};

static struct span *g_spans;
static size_t g_count, g_capacity;
static uint64_t g_state = 0x853c49e6748fea9bull;

static uint64_t wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void random_id(uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        g_state = g_state * 6364136223846793005ull + 1442695040888963407ull;
        out[i] = (uint8_t)(g_state >> 56);
    }
    out[0] |= 1; /* never all zero */
}

static struct span *record(const uint8_t *trace_id, const uint8_t *parent_id, const char *name) {
    if (g_count == g_capacity) {
        g_capacity = g_capacity ? 2 * g_capacity : 1024;
        g_spans = realloc(g_spans, g_capacity * sizeof *g_spans);
        if (!g_spans) exit(1);
    }
    struct span *s = &g_spans[g_count++];
    memcpy(s->trace_id, trace_id, 16);
    random_id(s->span_id, 8);
    if (parent_id) memcpy(s->parent_id, parent_id, 8); else memset(s->parent_id, 0, 8);
    s->name = name;
    s->start_ns = wall_ns();
    return s;
}

/* Runs one child span: attach it, do the work, attach the root again. */
#define CHILD(root, name, call)                                                        \
    do {                                                                               \
        struct span *child = record((root)->trace_id, (root)->span_id, name);          \
        flare_span_attach((root)->trace_id, child->span_id, (root)->span_id, 1, "GET /checkout"); \
        call;                                                                          \
        child->end_ns = wall_ns();                                                     \
        flare_span_attach((root)->trace_id, (root)->span_id, (root)->span_id, 1, "GET /checkout"); \
    } while (0)

static void handle_request(int items) {
    uint8_t trace_id[16];
    random_id(trace_id, 16);
    size_t root_index = g_count;
    record(trace_id, NULL, "GET /checkout");
    struct span root = g_spans[root_index];
    flare_span_attach(root.trace_id, root.span_id, root.span_id, 1, "GET /checkout");
    CHILD(&root, "validate_cart", validate_cart(items));
    CHILD(&root, "price_cart", price_cart(items));
    CHILD(&root, "write_receipt", write_receipt(items));
    flare_span_detach();
    g_spans[root_index].end_ns = wall_ns();
}

static void hex(FILE *out, const uint8_t *bytes, size_t n) {
    for (size_t i = 0; i < n; i++) fprintf(out, "%02x", bytes[i]);
}

static int write_otlp_json(const char *path) {
    FILE *out = fopen(path, "w");
    if (!out) { perror(path); return 1; }
    fprintf(out, "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
                 "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"checkout\"}},"
                 "{\"key\":\"service.version\",\"value\":{\"stringValue\":\"1.0\"}}]},"
                 "\"scopeSpans\":[{\"scope\":{\"name\":\"checkout-demo\"},\"spans\":[");
    for (size_t i = 0; i < g_count; i++) {
        const struct span *s = &g_spans[i];
        int is_root = s->parent_id[0] == 0 && memcmp(s->parent_id, s->parent_id + 1, 7) == 0;
        fprintf(out, "%s{\"traceId\":\"", i ? "," : "");
        hex(out, s->trace_id, 16);
        fprintf(out, "\",\"spanId\":\"");
        hex(out, s->span_id, 8);
        fprintf(out, "\",\"parentSpanId\":\"");
        if (!is_root) hex(out, s->parent_id, 8);
        fprintf(out, "\",\"name\":\"%s\",\"kind\":%d,\"startTimeUnixNano\":\"%llu\",\"endTimeUnixNano\":\"%llu\"}",
                s->name, is_root ? 2 : 1, (unsigned long long)s->start_ns, (unsigned long long)s->end_ns);
    }
    fprintf(out, "]}]}]}\n");
    return fclose(out) != 0;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 10;
    const char *spans_path = argc > 2 ? argv[2] : "checkout-spans.json";
    g_state ^= (uint64_t)getpid() << 17 ^ wall_ns();
    flare_context_publish_resource("checkout", "1.0", "demo");

    uint64_t end = wall_ns() + (uint64_t)(seconds * 1e9);
    int requests = 0;
    while (wall_ns() < end) {
        /* Every tenth cart is big: that request's pricing is the slow part. */
        handle_request(requests % 10 == 9 ? 2000 : 64);
        requests++;
        usleep(20000);
    }

    /* The slowest request: the trace the demo points at. */
    const struct span *slowest = NULL;
    for (size_t i = 0; i < g_count; i++) {
        const struct span *s = &g_spans[i];
        if (strcmp(s->name, "GET /checkout") == 0 && (!slowest || s->end_ns - s->start_ns > slowest->end_ns - slowest->start_ns)) slowest = s;
    }
    if (write_otlp_json(spans_path) != 0) return 1;
    printf("checkout: served %d requests; slowest trace ", requests);
    if (slowest) hex(stdout, slowest->trace_id, 16);
    printf(" (%.1f ms)\n", slowest ? (slowest->end_ns - slowest->start_ns) / 1e6 : 0.0);
    return 0;
}
