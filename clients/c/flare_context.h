/*
 * flare_context.h - publish span context for the Flare profiler.
 *
 * Header-only writer for the two mappings specified in docs/context-abi.md:
 *
 *   OTEL_CTX     the OpenTelemetry process context (OTEP 4719): resource
 *                attributes such as service.name, read once per process.
 *   FLARE_SLOTS  one slot per thread holding a short, timestamped ring of span
 *                attach/detach transitions (FLARE_SLOTS v1, ABI 1.1), so the agent
 *                can tell which span was active at a sample's own timestamp.
 *
 * API (C11 or C++11 and later, GCC or Clang, Linux):
 *
 *   int flare_context_publish_resource(service_name, service_version, environment);
 *   int flare_span_attach(trace_id[16], span_id[8], local_root_span_id[8],
 *                         trace_flags, root_span_name);
 *   int flare_span_detach(void);
 *   void flare_thread_release(void);
 *
 * Include this header before any system header, or build with _GNU_SOURCE
 * defined (g++ always does): it needs memfd, madvise and syscall declarations.
 *
 * Everything is static inline so there is nothing to link, yet the process
 * must hold exactly one FLARE_SLOTS mapping and each thread exactly one slot,
 * however many translation units include this file. The shared state is
 * therefore kept in weak variables, which the linker merges into one.
 * Do not dlclose() a shared object that includes this header after it has
 * published: its fork handlers and TLS destructor stay registered.
 *
 * Tuning, read once when the FLARE_SLOTS mapping is created:
 *   FLARE_SLOT_COUNT   slots (threads publishing at once), default 256
 *   FLARE_RING_LENGTH  entries per slot, a power of two, default 16
 *   FLARE_CLOCK        "monotonic" keeps CLOCK_MONOTONIC timestamps; by default
 *                      an x86-64 process whose kernel clocksource is the TSC
 *                      stamps entries with rdtsc (clock_id FLARE_CLOCK_TSC),
 *                      which costs about half a vDSO clock_gettime
 * Define FLARE_CONTEXT_NO_MEMFD to force the anonymous-mapping fallback (used
 * by tests; also useful where seccomp forbids memfd_create).
 */
#ifndef FLARE_CONTEXT_H
#define FLARE_CONTEXT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif
#ifndef PR_SET_VMA_ANON_NAME
#define PR_SET_VMA_ANON_NAME 0
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef CLOCK_BOOTTIME
#define CLOCK_BOOTTIME 7
#endif

#ifdef __cplusplus
extern "C" {
#define FLARE__STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define FLARE__STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#else /* C99: a negative array size fails the build instead */
#define FLARE__CONCAT2(a, b) a##b
#define FLARE__CONCAT(a, b) FLARE__CONCAT2(a, b)
#define FLARE__STATIC_ASSERT(cond, msg) \
    typedef char FLARE__CONCAT(flare__static_assert_, __LINE__)[(cond) ? 1 : -1] __attribute__((unused))
#endif

#define FLARE__WEAK __attribute__((weak))
#define FLARE__COLD __attribute__((cold, noinline))
#define FLARE__UNUSED __attribute__((unused))
#define FLARE__LIKELY(x) __builtin_expect(!!(x), 1)
#define FLARE__UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- FLARE_SLOTS v1 layout, ABI 1.1 (docs/context-abi.md, "FLARE_SLOTS") ---- */

#define FLARE_SLOTS_MAGIC "FLARESLT"
#define FLARE_SLOTS_VERSION 1u
#define FLARE_SLOTS_HEADER_SIZE 64u
#define FLARE_SLOT_HEADER_SIZE 64u
#define FLARE_ENTRY_SIZE 128u
#define FLARE_ROOT_NAME_MAX 72u
#define FLARE_ENTRY_ATTACHED 0x01u
/* clock_id of a mapping whose times are x86-64 time-stamp counter ticks. */
#define FLARE_CLOCK_TSC 256u
/* features bit (ABI 1.1): releases leave released_tid and release_time_ns,
 * claim_count moves with every claim and release, and a released slot is not
 * claimed again within FLARE_RELEASE_GRACE_NS while another free slot is older. */
#define FLARE_FEATURE_RELEASE_TIMES 0x1u
#ifndef FLARE_RELEASE_GRACE_NS
#define FLARE_RELEASE_GRACE_NS 1000000000ull
#endif

#ifndef FLARE_DEFAULT_SLOT_COUNT
#define FLARE_DEFAULT_SLOT_COUNT 256u
#endif
#ifndef FLARE_DEFAULT_RING_LENGTH
#define FLARE_DEFAULT_RING_LENGTH 16u
#endif
#define FLARE__MAX_SLOT_COUNT 65536u
#define FLARE__MAX_RING_LENGTH 4096u
/* Keeps a misconfigured environment from reserving gigabytes per process. */
#define FLARE__MAX_MAPPING_BYTES (256u * 1024u * 1024u)

typedef struct flare_slots_header {
    char magic[8];
    uint32_t version;
    uint32_t header_size;
    uint32_t slot_size;
    uint32_t ring_length;
    uint32_t entry_size;
    uint32_t clock_id;
    uint32_t slot_count;
    uint32_t features;
    uint64_t overflow_count;
    uint64_t claim_count;
    uint8_t reserved1[8];
} flare_slots_header_t;

typedef struct flare_slot_header {
    uint32_t owner_tid;
    uint32_t released_tid;
    uint64_t generation;
    uint64_t claim_time_ns;
    uint64_t head;
    uint64_t release_time_ns;
    uint64_t release_mono_ns;
    uint8_t reserved1[16];
} flare_slot_header_t;

typedef struct flare_slot_entry {
    uint64_t seq;
    uint8_t flags;
    uint8_t trace_flags;
    uint16_t name_length;
    uint32_t reserved0;
    uint64_t t_ns;
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t local_root_span_id[8];
    char root_span_name[FLARE_ROOT_NAME_MAX];
} flare_slot_entry_t;

/* The layout is an ABI shared with readers in other languages: pin it. */
FLARE__STATIC_ASSERT(sizeof(flare_slots_header_t) == 64, "FLARE_SLOTS header is 64 bytes");
FLARE__STATIC_ASSERT(offsetof(flare_slots_header_t, version) == 8, "version at 8");
FLARE__STATIC_ASSERT(offsetof(flare_slots_header_t, slot_size) == 16, "slot_size at 16");
FLARE__STATIC_ASSERT(offsetof(flare_slots_header_t, ring_length) == 20, "ring_length at 20");
FLARE__STATIC_ASSERT(offsetof(flare_slots_header_t, clock_id) == 28, "clock_id at 28");
FLARE__STATIC_ASSERT(offsetof(flare_slots_header_t, slot_count) == 32, "slot_count at 32");
FLARE__STATIC_ASSERT(offsetof(flare_slots_header_t, features) == 36, "features at 36");
FLARE__STATIC_ASSERT(offsetof(flare_slots_header_t, overflow_count) == 40, "overflow_count at 40");
FLARE__STATIC_ASSERT(offsetof(flare_slots_header_t, claim_count) == 48, "claim_count at 48");
FLARE__STATIC_ASSERT(sizeof(flare_slot_header_t) == 64, "slot header is 64 bytes");
FLARE__STATIC_ASSERT(offsetof(flare_slot_header_t, generation) == 8, "generation at 8");
FLARE__STATIC_ASSERT(offsetof(flare_slot_header_t, claim_time_ns) == 16, "claim_time_ns at 16");
FLARE__STATIC_ASSERT(offsetof(flare_slot_header_t, head) == 24, "head at 24");
FLARE__STATIC_ASSERT(offsetof(flare_slot_header_t, released_tid) == 4, "released_tid at 4");
FLARE__STATIC_ASSERT(offsetof(flare_slot_header_t, release_time_ns) == 32, "release_time_ns at 32");
FLARE__STATIC_ASSERT(offsetof(flare_slot_header_t, release_mono_ns) == 40, "release_mono_ns at 40");
FLARE__STATIC_ASSERT(sizeof(flare_slot_entry_t) == 128, "entry is 128 bytes");
FLARE__STATIC_ASSERT(offsetof(flare_slot_entry_t, flags) == 8, "flags at 8");
FLARE__STATIC_ASSERT(offsetof(flare_slot_entry_t, name_length) == 10, "name_length at 10");
FLARE__STATIC_ASSERT(offsetof(flare_slot_entry_t, t_ns) == 16, "t_ns at 16");
FLARE__STATIC_ASSERT(offsetof(flare_slot_entry_t, trace_id) == 24, "trace_id at 24");
FLARE__STATIC_ASSERT(offsetof(flare_slot_entry_t, span_id) == 40, "span_id at 40");
FLARE__STATIC_ASSERT(offsetof(flare_slot_entry_t, local_root_span_id) == 48, "local_root_span_id at 48");
FLARE__STATIC_ASSERT(offsetof(flare_slot_entry_t, root_span_name) == 56, "root_span_name at 56");

/* ---- OTEL_CTX layout (OTEP 4719, header version 2) ---- */

#define FLARE_OTEL_CTX_VERSION 2u
#define FLARE_OTEL_CTX_HEADER_SIZE 32u

typedef struct flare_otel_ctx_header {
    char signature[8];
    uint32_t version;
    uint32_t payload_size;
    uint64_t published_at_ns;
    uint64_t payload;
} flare_otel_ctx_header_t;

FLARE__STATIC_ASSERT(sizeof(flare_otel_ctx_header_t) == 32, "OTEL_CTX header is 32 bytes");
FLARE__STATIC_ASSERT(offsetof(flare_otel_ctx_header_t, payload_size) == 12, "payload_size at 12");
FLARE__STATIC_ASSERT(offsetof(flare_otel_ctx_header_t, published_at_ns) == 16, "published_at_ns at 16");
FLARE__STATIC_ASSERT(offsetof(flare_otel_ctx_header_t, payload) == 24, "payload at 24");

/* ---- Process- and thread-wide state ---- */

typedef struct flare__process {
    pthread_mutex_t lock;           /* guards creation and the fields below */
    uint8_t *slots;                 /* FLARE_SLOTS base, published with release */
    int slots_state;                /* 0 not tried, 1 ready, -1 unavailable */
    uint32_t slot_count;
    uint32_t slot_size;
    uint32_t ring_length;
    int hooks_ready;                /* pthread_atfork + TLS key registered */
    pthread_key_t key;              /* its destructor frees the slot at thread exit */
    uint8_t *otel_ctx;              /* OTEL_CTX base, valid only in otel_ctx_pid */
    size_t otel_ctx_size;
    pid_t otel_ctx_pid;
    uint32_t clock_id;              /* CLOCK_MONOTONIC or FLARE_CLOCK_TSC, set before slots publish */
} flare__process_t;

typedef struct flare__thread {
    flare_slot_header_t *slot;      /* NULL until claimed; the only hot-path check */
    flare_slot_entry_t *entries;
    uint64_t mask;                  /* ring_length - 1 */
    int overflowed;                 /* found no free slot; do not rescan on every call */
} flare__thread_t;

FLARE__WEAK flare__process_t flare__proc = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0, 0, 0, 0, NULL, 0, 0, 0};
FLARE__WEAK __thread flare__thread_t flare__tls;

/* ---- Small helpers ---- */

static inline uint64_t flare__now_ns(clockid_t clock) {
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The time of a slot entry or claim, in the mapping's clock. rdtsc is not
 * ordered against nearby stores; the few cycles it may run early do not
 * matter next to the sampling period. */
static inline uint64_t flare__slot_time(void) {
#if defined(__x86_64__)
    if (FLARE__LIKELY(flare__proc.clock_id == FLARE_CLOCK_TSC)) {
        uint32_t lo, hi;
        __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
        return ((uint64_t)hi << 32) | lo;
    }
#endif
    return flare__now_ns(CLOCK_MONOTONIC);
}

/* The TSC only where the kernel itself keeps time with it: then it is
 * synchronized across CPUs and runs at a constant rate, so a reader can map
 * it to CLOCK_MONOTONIC with a linear fit. */
static inline uint32_t flare__choose_clock(void) {
#if defined(__x86_64__)
    const char *forced = getenv("FLARE_CLOCK");
    if (forced != NULL && strcmp(forced, "monotonic") == 0) return (uint32_t)CLOCK_MONOTONIC;
    char source[16] = {0};
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, source, sizeof source - 1);
        close(fd);
        if (n >= 3 && memcmp(source, "tsc", 3) == 0 && (n == 3 || source[3] == '\n')) return FLARE_CLOCK_TSC;
    }
#endif
    return (uint32_t)CLOCK_MONOTONIC;
}

static inline uint32_t flare__gettid(void) {
    return (uint32_t)syscall(SYS_gettid);
}

/* Names are cut on a UTF-8 character boundary so readers never see half a
 * character; bytes after name_length are unspecified. */
static inline uint16_t flare__name_length(const char *name) {
    if (name == NULL) return 0;
    size_t n = strnlen(name, FLARE_ROOT_NAME_MAX + 1);
    if (n <= FLARE_ROOT_NAME_MAX) return (uint16_t)n;
    n = FLARE_ROOT_NAME_MAX;
    while (n > 0 && ((unsigned char)name[n] & 0xC0u) == 0x80u) n--;
    return (uint16_t)n;
}

static inline uint32_t flare__env_u32(const char *name, uint32_t fallback) {
    const char *s = getenv(name);
    if (s == NULL || *s == '\0') return fallback;
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (end == NULL || *end != '\0' || v == 0 || v > 0xFFFFFFFFul) return fallback;
    return (uint32_t)v;
}

/*
 * Creates a mapping readers can find by name: a memfd first, which
 * /proc/PID/maps names on every kernel, else anonymous memory named with
 * PR_SET_VMA_ANON_NAME (Linux 5.17+ with CONFIG_ANON_VMA_NAME). MADV_DONTFORK
 * keeps children from inheriting a mapping that describes the parent.
 * Returns NULL when the mapping could not be made, or not made findable.
 */
static inline uint8_t *flare__map_named(const char *name, size_t size, int shared, int name_memfd) {
    void *p = MAP_FAILED;
    int via_memfd = 0;
#ifndef FLARE_CONTEXT_NO_MEMFD
    /* Kernels with vm.memfd_noexec=2 demand MFD_NOEXEC_SEAL; older ones reject it. */
    int fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
    if (fd < 0) fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd >= 0) {
        if (ftruncate(fd, (off_t)size) == 0)
            p = mmap(NULL, size, PROT_READ | PROT_WRITE, shared ? MAP_SHARED : MAP_PRIVATE, fd, 0);
        close(fd);
        via_memfd = (p != MAP_FAILED);
    }
#else
    (void)shared;
#endif
    if (p == MAP_FAILED) p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    if (madvise(p, size, MADV_DONTFORK) != 0) {
        munmap(p, size);
        return NULL;
    }
    if (!via_memfd || name_memfd) {
        int named = prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)p, (unsigned long)size,
                          (unsigned long)name) == 0;
        if (!via_memfd && !named) {
            /* Without a memfd name or an anon name no reader can find it. */
            munmap(p, size);
            return NULL;
        }
    }
    return (uint8_t *)p;
}

/* ---- Fork and thread-exit hooks ---- */

static void flare__atfork_prepare(void) { pthread_mutex_lock(&flare__proc.lock); }
static void flare__atfork_parent(void) { pthread_mutex_unlock(&flare__proc.lock); }

/* MADV_DONTFORK removed both mappings from the child: forget them so the
 * child creates its own on first use instead of touching unmapped memory.
 * Only the forking thread survives, so only its TLS needs resetting. */
static void flare__atfork_child(void) {
    pthread_mutex_init(&flare__proc.lock, NULL);
    flare__proc.slots = NULL;
    flare__proc.slots_state = 0;
    flare__proc.otel_ctx = NULL;
    flare__proc.otel_ctx_size = 0;
    flare__proc.otel_ctx_pid = 0;
    memset(&flare__tls, 0, sizeof flare__tls);
    if (flare__proc.hooks_ready) pthread_setspecific(flare__proc.key, NULL);
}

/* Tells readers that an owner changed: they may keep what they learnt of
 * the slots until this counter moves. */
static inline void flare__count_claim(void) {
    uint8_t *base = __atomic_load_n(&flare__proc.slots, __ATOMIC_ACQUIRE);
    if (base != NULL) __atomic_fetch_add(&((flare_slots_header_t *)base)->claim_count, 1, __ATOMIC_RELEASE);
}

/* Runs on the owning thread (its exit, or flare_thread_release). The ring
 * stays readable: released_tid and release_time_ns, stored before owner_tid
 * goes to 0, let a reader still attribute the thread's earlier samples, and
 * the grace period keeps the slot from being claimed again at once. */
static void flare__release_slot(void *slot) {
    flare_slot_header_t *s = (flare_slot_header_t *)slot;
    if (s != NULL) {
        __atomic_store_n(&s->released_tid, __atomic_load_n(&s->owner_tid, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
        __atomic_store_n(&s->release_time_ns, flare__slot_time(), __ATOMIC_RELAXED);
        __atomic_store_n(&s->release_mono_ns, flare__now_ns(CLOCK_MONOTONIC), __ATOMIC_RELAXED);
        __atomic_store_n(&s->owner_tid, 0u, __ATOMIC_RELEASE);
        flare__count_claim();
    }
    flare__tls.slot = NULL;
    flare__tls.entries = NULL;
}

static inline void flare__ensure_hooks_locked(void) {
    if (flare__proc.hooks_ready) return;
    if (pthread_key_create(&flare__proc.key, flare__release_slot) != 0) return;
    pthread_atfork(flare__atfork_prepare, flare__atfork_parent, flare__atfork_child);
    flare__proc.hooks_ready = 1;
}

/* ---- FLARE_SLOTS writer ---- */

static inline void flare__create_slots_locked(void) {
    uint32_t ring = flare__env_u32("FLARE_RING_LENGTH", FLARE_DEFAULT_RING_LENGTH);
    uint32_t count = flare__env_u32("FLARE_SLOT_COUNT", FLARE_DEFAULT_SLOT_COUNT);
    if (ring > FLARE__MAX_RING_LENGTH || (ring & (ring - 1)) != 0) ring = FLARE_DEFAULT_RING_LENGTH;
    if (count > FLARE__MAX_SLOT_COUNT) count = FLARE_DEFAULT_SLOT_COUNT;
    uint64_t slot_size = FLARE_SLOT_HEADER_SIZE + (uint64_t)ring * FLARE_ENTRY_SIZE;
    uint64_t size = FLARE_SLOTS_HEADER_SIZE + (uint64_t)count * slot_size;
    if (size > FLARE__MAX_MAPPING_BYTES) {
        ring = FLARE_DEFAULT_RING_LENGTH;
        count = FLARE_DEFAULT_SLOT_COUNT;
        slot_size = FLARE_SLOT_HEADER_SIZE + (uint64_t)ring * FLARE_ENTRY_SIZE;
        size = FLARE_SLOTS_HEADER_SIZE + (uint64_t)count * slot_size;
    }
    flare__ensure_hooks_locked();
    uint8_t *base = flare__proc.hooks_ready ? flare__map_named("FLARE_SLOTS", (size_t)size, 1, 0) : NULL;
    if (base == NULL) {
        flare__proc.slots_state = -1;
        return;
    }
    flare_slots_header_t *h = (flare_slots_header_t *)base;
    h->version = FLARE_SLOTS_VERSION;
    h->header_size = FLARE_SLOTS_HEADER_SIZE;
    h->slot_size = (uint32_t)slot_size;
    h->ring_length = ring;
    h->entry_size = FLARE_ENTRY_SIZE;
    flare__proc.clock_id = flare__choose_clock();
    h->clock_id = flare__proc.clock_id;
    h->slot_count = count;
    h->features = FLARE_FEATURE_RELEASE_TIMES;
    /* The magic goes last so a reader never validates a half-written header. */
    uint64_t magic;
    memcpy(&magic, FLARE_SLOTS_MAGIC, 8);
    __atomic_store_n((uint64_t *)(void *)h->magic, magic, __ATOMIC_RELEASE);
    flare__proc.slot_count = count;
    flare__proc.slot_size = (uint32_t)slot_size;
    flare__proc.ring_length = ring;
    flare__proc.slots_state = 1;
    __atomic_store_n(&flare__proc.slots, base, __ATOMIC_RELEASE);
}

static inline uint8_t *flare__slots_base(void) {
    uint8_t *base = __atomic_load_n(&flare__proc.slots, __ATOMIC_ACQUIRE);
    if (base != NULL) return base;
    pthread_mutex_lock(&flare__proc.lock);
    if (flare__proc.slots_state == 0) flare__create_slots_locked();
    base = flare__proc.slots;
    pthread_mutex_unlock(&flare__proc.lock);
    return base;
}

/* Takes slot s if it is still free: CAS on owner_tid, then the claim's
 * fields, generation last (release), then claim_count. */
static inline int flare__take(flare_slot_header_t *s, uint32_t tid) {
    uint32_t expected = 0;
    if (!__atomic_compare_exchange_n(&s->owner_tid, &expected, tid, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) return 0;
    __atomic_store_n(&s->head, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->released_tid, 0u, __ATOMIC_RELAXED);
    __atomic_store_n(&s->release_time_ns, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->claim_time_ns, flare__slot_time(), __ATOMIC_RELAXED);
    uint64_t gen = __atomic_load_n(&s->generation, __ATOMIC_RELAXED);
    __atomic_store_n(&s->generation, gen + 1, __ATOMIC_RELEASE);
    flare__count_claim();
    return 1;
}

/* One pass over the slots, from a tid-derived start so threads born
 * together rarely race for one: takes the first free slot out of its grace
 * period, else the free slot released longest ago. NULL when none is free. */
static inline flare_slot_header_t *flare__take_free(uint8_t *base, uint32_t tid, uint64_t now) {
    uint32_t count = flare__proc.slot_count, slot_size = flare__proc.slot_size;
    flare_slot_header_t *oldest = NULL;
    uint64_t oldest_release = UINT64_MAX;
    for (uint32_t k = 0; k < count; k++) {
        uint32_t i = (tid + k) % count;
        flare_slot_header_t *s = (flare_slot_header_t *)(base + FLARE_SLOTS_HEADER_SIZE + (size_t)i * slot_size);
        if (__atomic_load_n(&s->owner_tid, __ATOMIC_RELAXED) != 0) continue;
        uint64_t released = __atomic_load_n(&s->release_mono_ns, __ATOMIC_RELAXED);
        if (released == 0 || released > now || now - released >= FLARE_RELEASE_GRACE_NS) {
            if (flare__take(s, tid)) return s;
        } else if (released < oldest_release) {
            oldest_release = released;
            oldest = s;
        }
    }
    return oldest != NULL && flare__take(oldest, tid) ? oldest : NULL;
}

/* Slow path, once per thread: claim a free slot. A slot released less than
 * the grace period ago is taken only when no other free slot is, so readers
 * can still resolve its last owner's samples for that long. */
static FLARE__COLD flare_slot_header_t *flare__claim(void) {
    flare__thread_t *t = &flare__tls;
    if (t->overflowed) return NULL;
    uint8_t *base = flare__slots_base();
    if (base == NULL) return NULL;
    uint32_t tid = flare__gettid();
    uint64_t now = flare__now_ns(CLOCK_MONOTONIC);
    /* A lost race for the oldest released slot is worth one more pass. */
    flare_slot_header_t *s = flare__take_free(base, tid, now);
    if (s == NULL) s = flare__take_free(base, tid, now);
    if (s == NULL) {
        __atomic_fetch_add(&((flare_slots_header_t *)base)->overflow_count, 1, __ATOMIC_RELAXED);
        t->overflowed = 1;
        return NULL;
    }
    t->entries = (flare_slot_entry_t *)(void *)((uint8_t *)s + FLARE_SLOT_HEADER_SIZE);
    t->mask = flare__proc.ring_length - 1;
    t->slot = s;
    pthread_setspecific(flare__proc.key, s);
    return s;
}

/*
 * The seqlock write of one ring entry. seq odd marks the entry as being
 * written, seq = 2n+2 (release) commits it, and head = n+1 (release) tells the
 * reader which entries are complete. Only the owning thread writes its slot,
 * so plain loads of head are enough here.
 */
static inline int flare__publish(uint8_t flags, uint8_t trace_flags, const uint8_t *trace_id, const uint8_t *span_id,
                                 const uint8_t *root_id, const char *name) {
    flare_slot_header_t *s = flare__tls.slot;
    if (FLARE__UNLIKELY(s == NULL)) {
        s = flare__claim();
        if (s == NULL) return -1;
    }
    uint64_t n = __atomic_load_n(&s->head, __ATOMIC_RELAXED);
    flare_slot_entry_t *e = &flare__tls.entries[n & flare__tls.mask];
    __atomic_store_n(&e->seq, 2 * n + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    e->flags = flags;
    e->trace_flags = trace_flags;
    e->reserved0 = 0;
    if (flags & FLARE_ENTRY_ATTACHED) {
        uint16_t len = flare__name_length(name);
        e->name_length = len;
        memcpy(e->trace_id, trace_id, 16);
        memcpy(e->span_id, span_id, 8);
        if (root_id != NULL)
            memcpy(e->local_root_span_id, root_id, 8);
        else
            memset(e->local_root_span_id, 0, 8);
        if (len) memcpy(e->root_span_name, name, len);
    } else {
        e->name_length = 0;
        memset(e->trace_id, 0, sizeof e->trace_id);
        memset(e->span_id, 0, sizeof e->span_id);
        memset(e->local_root_span_id, 0, sizeof e->local_root_span_id);
    }
    e->t_ns = flare__slot_time();
    __atomic_store_n(&e->seq, 2 * n + 2, __ATOMIC_RELEASE);
    __atomic_store_n(&s->head, n + 1, __ATOMIC_RELEASE);
    return 0;
}

/* ---- Public API ---- */

/// Records that the calling thread now runs the given span.
/// Returns 0, or -1 when the thread has no slot (all slots taken, or the
/// mapping could not be created); nothing is published then.
/// The first call on a thread claims its slot; later calls make no syscall
/// other than clock_gettime (vDSO).
static inline int flare_span_attach(const uint8_t trace_id[16], const uint8_t span_id[8],
                                    const uint8_t local_root_span_id[8], uint8_t trace_flags,
                                    const char *root_span_name) {
    return flare__publish(FLARE_ENTRY_ATTACHED, trace_flags, trace_id, span_id, local_root_span_id, root_span_name);
}

/// Records that the calling thread no longer runs any span.
static inline int flare_span_detach(void) {
    return flare__publish(0, 0, NULL, NULL, NULL, NULL);
}

/// Frees the calling thread's slot now rather than at thread exit, e.g. before
/// a pooled thread parks for a long time. The next attach claims a slot again.
static inline void flare_thread_release(void) {
    flare__thread_t *t = &flare__tls;
    if (t->slot != NULL) {
        flare__release_slot(t->slot);
        pthread_setspecific(flare__proc.key, NULL);
    }
    t->overflowed = 0;
}

/* ---- OTEL_CTX writer ---- */

static inline size_t flare__varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline uint8_t *flare__put_varint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Size of a length-delimited field (tag byte + length + body); all field
 * numbers used here are < 16, so tags are one byte. */
static inline size_t flare__ld_len(size_t body) { return 1 + flare__varint_len(body) + body; }

/* KeyValue{key = 1: string, value = 2: AnyValue{string_value = 1}} body size. */
static inline size_t flare__kv_body_len(const char *key, const char *value) {
    return flare__ld_len(strlen(key)) + flare__ld_len(flare__ld_len(strlen(value)));
}

static inline uint8_t *flare__put_ld(uint8_t *p, uint32_t field, size_t body_len) {
    *p++ = (uint8_t)((field << 3) | 2u);
    return flare__put_varint(p, body_len);
}

static inline uint8_t *flare__put_kv(uint8_t *p, uint32_t field, const char *key, const char *value) {
    size_t klen = strlen(key), vlen = strlen(value);
    p = flare__put_ld(p, field, flare__kv_body_len(key, value));
    p = flare__put_ld(p, 1, klen);
    memcpy(p, key, klen);
    p += klen;
    p = flare__put_ld(p, 2, flare__ld_len(vlen));
    p = flare__put_ld(p, 1, vlen);
    memcpy(p, value, vlen);
    return p + vlen;
}

/* Encodes ProcessContext{resource = 1: Resource{attributes = 1: KeyValue...}}
 * into out (capacity cap). Returns the size, or 0 if it does not fit. */
static inline size_t flare__encode_process_context(uint8_t *out, size_t cap, const char *const *keys,
                                                   const char *const *values, int n) {
    size_t resource = 0;
    for (int i = 0; i < n; i++) resource += flare__ld_len(flare__kv_body_len(keys[i], values[i]));
    size_t total = flare__ld_len(resource);
    if (total > cap) return 0;
    uint8_t *p = flare__put_ld(out, 1, resource);
    for (int i = 0; i < n; i++) p = flare__put_kv(p, 1, keys[i], values[i]);
    return (size_t)(p - out);
}

/// Publishes the OpenTelemetry process context (OTEP 4719) with the resource
/// attributes service.name, service.version and deployment.environment.name.
/// version and environment may be NULL to leave them out; strings must be
/// UTF-8. Calling it again updates the context in place. Returns 0 or a
/// negative errno (-EINVAL, -E2BIG when the payload exceeds the mapping,
/// -ENOTSUP when no discoverable mapping can be made).
static inline int flare_context_publish_resource(const char *service_name, const char *service_version,
                                                 const char *environment) {
    if (service_name == NULL) return -EINVAL;
    const char *keys[3], *values[3];
    int n = 0;
    keys[n] = "service.name";
    values[n++] = service_name;
    if (service_version != NULL) {
        keys[n] = "service.version";
        values[n++] = service_version;
    }
    if (environment != NULL) {
        keys[n] = "deployment.environment.name";
        values[n++] = environment;
    }

    pthread_mutex_lock(&flare__proc.lock);
    flare__ensure_hooks_locked();
    int rc = 0;
    pid_t pid = getpid();
    uint8_t *base = flare__proc.otel_ctx_pid == pid ? flare__proc.otel_ctx : NULL;
    size_t size = flare__proc.otel_ctx_size;
    int fresh = 0;
    if (base == NULL) {
        /* Two pages: the OTEP's size hint for readers on kernels that cannot name mappings. */
        long page = sysconf(_SC_PAGESIZE);
        size = (size_t)(page > 0 ? page : 4096) * 2;
        base = flare__map_named("OTEL_CTX", size, 0, 0);
        if (base == NULL) {
            rc = -ENOTSUP;
            goto out;
        }
        fresh = 1;
    }
    {
        flare_otel_ctx_header_t *h = (flare_otel_ctx_header_t *)base;
        uint8_t *payload = base + FLARE_OTEL_CTX_HEADER_SIZE;
        size_t cap = size - FLARE_OTEL_CTX_HEADER_SIZE;
        /* Encode into scratch space first so a too-large update leaves the
         * published context untouched. */
        uint8_t *scratch = (uint8_t *)malloc(cap);
        size_t len = scratch ? flare__encode_process_context(scratch, cap, keys, values, n) : 0;
        if (len == 0) {
            free(scratch);
            if (fresh) munmap(base, size);
            rc = scratch ? -E2BIG : -ENOMEM;
            goto out;
        }
        uint64_t previous = __atomic_load_n(&h->published_at_ns, __ATOMIC_RELAXED);
        /* published_at_ns = 0 tells readers an update is in progress. */
        __atomic_store_n(&h->published_at_ns, 0, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        memcpy(payload, scratch, len);
        free(scratch);
        memcpy(h->signature, "OTEL_CTX", 8);
        h->version = FLARE_OTEL_CTX_VERSION;
        h->payload_size = (uint32_t)len;
        h->payload = (uint64_t)(uintptr_t)payload;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        /* Readers detect an update by a changed timestamp, so it must move. */
        uint64_t now = flare__now_ns(CLOCK_BOOTTIME);
        if (now <= previous) now = previous + 1;
        __atomic_store_n(&h->published_at_ns, now, __ATOMIC_RELEASE);
        /* Named after every publication, even where naming is unsupported or
         * the memfd already names it: eBPF readers may hook this prctl to
         * learn that a context was (re)published. */
        prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)base, (unsigned long)size, (unsigned long)"OTEL_CTX");
        flare__proc.otel_ctx = base;
        flare__proc.otel_ctx_size = size;
        flare__proc.otel_ctx_pid = pid;
    }
out:
    pthread_mutex_unlock(&flare__proc.lock);
    return rc;
}

#ifdef __cplusplus
}
#endif

#endif /* FLARE_CONTEXT_H */
