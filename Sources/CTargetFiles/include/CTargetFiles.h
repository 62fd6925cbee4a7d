#ifndef CTARGETFILES_H
#define CTARGETFILES_H

#include <stdint.h>

/*
 * openat2(2) for files a profiled process names.
 *
 * Why a shim: openat2 has no glibc wrapper on Debian 12 and Swift cannot call
 * the variadic syscall(2). Its RESOLVE_* flags are what keeps a path a target
 * controls (a symlink in its container, "..", a magic link) inside the
 * directory the agent meant.
 */

/// RESOLVE_* flags of <linux/openat2.h>, as constants Swift can import.
extern const uint64_t ctargetfiles_resolve_in_root;
extern const uint64_t ctargetfiles_resolve_beneath;
extern const uint64_t ctargetfiles_resolve_no_symlinks;
extern const uint64_t ctargetfiles_resolve_no_magiclinks;
/// O_PATH, which Glibc's Swift module hides behind _GNU_SOURCE.
extern const int ctargetfiles_o_path;

/// openat2(dirfd, path, {flags, 0, resolve}). Returns the descriptor, or -errno.
int ctargetfiles_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve);

#endif
