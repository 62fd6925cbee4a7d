#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "CTargetFiles.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

const uint64_t ctargetfiles_resolve_in_root = RESOLVE_IN_ROOT;
const uint64_t ctargetfiles_resolve_beneath = RESOLVE_BENEATH;
const uint64_t ctargetfiles_resolve_no_symlinks = RESOLVE_NO_SYMLINKS;
const uint64_t ctargetfiles_resolve_no_magiclinks = RESOLVE_NO_MAGICLINKS;
const int ctargetfiles_o_path = O_PATH;

int ctargetfiles_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
    struct open_how how = {.flags = flags, .mode = 0, .resolve = resolve};
    long fd;
    do {
        fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : (int)fd;
}

/* A fixed table, read lock-free by the signal handler: a slot is claimed by
 * CAS on its start and published by writing its end; cleared end first. */
#define GUARD_SLOTS 4096
static _Atomic uintptr_t guard_start[GUARD_SLOTS];
static _Atomic uintptr_t guard_end[GUARD_SLOTS];
static _Atomic uint64_t guard_faults;
static struct sigaction guard_previous;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static int guard_error;

static void guard_handler(int signal, siginfo_t *info, void *context) {
    uintptr_t address = (uintptr_t)info->si_addr;
    if (info->si_code == BUS_ADRERR) {
        for (int i = 0; i < GUARD_SLOTS; i++) {
            uintptr_t end = atomic_load(&guard_end[i]);
            if (end == 0 || address >= end || address < atomic_load(&guard_start[i])) continue;
            uintptr_t page = address & ~((uintptr_t)sysconf(_SC_PAGESIZE) - 1);
            void *zeros = mmap((void *)page, (size_t)sysconf(_SC_PAGESIZE), PROT_READ,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            if (zeros != MAP_FAILED) {
                atomic_fetch_add(&guard_faults, 1);
                return;  /* the read is retried, and now finds zeros */
            }
            break;
        }
    }
    /* Not ours: whoever handled SIGBUS before, or the default (the fault repeats on return). */
    if ((guard_previous.sa_flags & SA_SIGINFO) && guard_previous.sa_sigaction != NULL) {
        guard_previous.sa_sigaction(signal, info, context);
        return;
    }
    if (guard_previous.sa_handler != SIG_DFL && guard_previous.sa_handler != SIG_IGN && guard_previous.sa_handler != NULL) {
        guard_previous.sa_handler(signal);
        return;
    }
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigaction(SIGBUS, &fallback, NULL);
}

static void guard_install_once(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = guard_handler;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    guard_error = sigaction(SIGBUS, &action, &guard_previous) == 0 ? 0 : -errno;
}

int ctargetfiles_guard_install(void) {
    pthread_once(&guard_once, guard_install_once);
    return guard_error;
}

int ctargetfiles_guard_add(const void *start, uint64_t length) {
    if (ctargetfiles_guard_install() != 0 || start == NULL || length == 0) return -1;
    for (int i = 0; i < GUARD_SLOTS; i++) {
        uintptr_t free_slot = 0;
        if (atomic_compare_exchange_strong(&guard_start[i], &free_slot, (uintptr_t)start)) {
            atomic_store(&guard_end[i], (uintptr_t)start + (uintptr_t)length);
            return i;
        }
    }
    return -1;
}

void ctargetfiles_guard_remove(int slot) {
    if (slot < 0 || slot >= GUARD_SLOTS) return;
    atomic_store(&guard_end[slot], 0);
    atomic_store(&guard_start[slot], 0);
}

uint64_t ctargetfiles_guard_faults(void) { return atomic_load(&guard_faults); }
