#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "CRemoteMemory.h"

#include <errno.h>
#include <sys/uio.h>

#define CREMOTEMEMORY_BATCH 1024 /* IOV_MAX on Linux */

ssize_t cremotememory_read(pid_t pid, void *local, size_t length, uint64_t remote) {
    struct iovec l = {local, length};
    struct iovec r = {(void *)(uintptr_t)remote, length};
    ssize_t n;
    do {
        n = process_vm_readv(pid, &l, 1, &r, 1, 0);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

ssize_t cremotememory_read_many(pid_t pid, void *local, const uint64_t *remotes, size_t count, size_t length) {
    struct iovec r[CREMOTEMEMORY_BATCH];
    size_t total = 0;
    for (size_t start = 0; start < count; start += CREMOTEMEMORY_BATCH) {
        size_t batch = count - start < CREMOTEMEMORY_BATCH ? count - start : CREMOTEMEMORY_BATCH;
        for (size_t i = 0; i < batch; i++) {
            r[i].iov_base = (void *)(uintptr_t)remotes[start + i];
            r[i].iov_len = length;
        }
        struct iovec l = {(char *)local + total, batch * length};
        ssize_t n;
        do {
            n = process_vm_readv(pid, &l, 1, r, (unsigned long)batch, 0);
        } while (n < 0 && errno == EINTR);
        if (n < 0) return -errno;
        total += (size_t)n;
        if ((size_t)n != batch * length) break;
    }
    return (ssize_t)total;
}
