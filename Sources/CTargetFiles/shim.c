#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "CTargetFiles.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
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
