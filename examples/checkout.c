// A small "checkout service" for the demo: each request validates a cart,
// prices it (the hot part), and serialises a receipt, for about two seconds.
#include <stdio.h>
#include <string.h>
#include <time.h>

static volatile unsigned long sink;

__attribute__((noinline)) static unsigned long hash_item(unsigned long x, int rounds) {
    for (int i = 0; i < rounds; i++) x = (x ^ (x >> 31)) * 0x9e3779b97f4a7c15UL;
    return x;
}

__attribute__((noinline)) static void validate_cart(int items) {
    for (int i = 0; i < items; i++) sink += hash_item((unsigned long)i, 200);
}

__attribute__((noinline)) static void apply_discounts(int items) {
    for (int i = 0; i < items; i++) sink += hash_item((unsigned long)i * 7, 900);
}

__attribute__((noinline)) static void price_cart(int items) {
    for (int i = 0; i < items; i++) sink += hash_item((unsigned long)i * 3, 1200);
    apply_discounts(items);
}

__attribute__((noinline)) static void write_receipt(int items) {
    char buffer[4096];
    for (int i = 0; i < items; i++) {
        snprintf(buffer, sizeof buffer, "item %d: %lu\n", i, hash_item((unsigned long)i, 50));
        sink += strlen(buffer);
    }
}

__attribute__((noinline)) static void handle_request(int items) {
    validate_cart(items);
    price_cart(items);
    write_receipt(items);
}

int main(void) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int requests = 0;
    do {
        handle_request(64);
        requests++;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) * 1e-9 < 2.0);
    printf("checkout: served %d requests\n", requests);
    return 0;
}
