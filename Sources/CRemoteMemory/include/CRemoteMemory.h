#ifndef CREMOTEMEMORY_H
#define CREMOTEMEMORY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Copies memory out of another process with process_vm_readv(2).
 *
 * Why a shim: Glibc's Swift module does not export process_vm_readv (it is a
 * _GNU_SOURCE declaration in <sys/uio.h>), and the reader of the Flare
 * context ABI needs it to copy FLARE_SLOTS and OTEL_CTX bytes.
 */

/// Copies `length` bytes at `remote` in process `pid` into `local`.
/// Returns the bytes copied (a short count means part of the range is not
/// mapped), or -errno.
ssize_t cremotememory_read(pid_t pid, void *local, size_t length, uint64_t remote);

/// Copies `count` remote ranges (addresses `remotes[i]`, each `length` bytes)
/// into `local`, one after another, in as few system calls as IOV_MAX allows.
/// Returns the total bytes copied or -errno.
ssize_t cremotememory_read_many(pid_t pid, void *local, const uint64_t *remotes, size_t count, size_t length);

#endif
