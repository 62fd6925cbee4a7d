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

/*
 * Mappings of files a target can truncate under the agent.
 *
 * A process may shorten a file it owns while the agent has it mapped (libelf
 * maps ELF files whole); touching a page past the new end raises SIGBUS,
 * which would end the agent. Ranges registered here are guarded: a SIGBUS on
 * one of their pages maps a page of zeros in its place and the read goes on
 * (the parsers then see zeros, as for any malformed file). A SIGBUS anywhere
 * else goes to the handler that was there before, or ends the process.
 */

/// Installs the SIGBUS handler once; returns 0, or -errno.
int ctargetfiles_guard_install(void);
/// Guards [start, start + length); returns a slot for release, or -1 when all
/// slots are taken (the range is then unguarded).
int ctargetfiles_guard_add(const void *start, uint64_t length);
/// Stops guarding the range in `slot` (before it is unmapped).
void ctargetfiles_guard_remove(int slot);
/// Pages replaced by zeros so far.
uint64_t ctargetfiles_guard_faults(void);

#endif
