#ifndef CDWFL_UNWIND_H
#define CDWFL_UNWIND_H

#include <stddef.h>
#include <stdint.h>

/// libdw's own unwinder run over a copied user stack: the slow path for CFI
/// rules Flare's compact tables cannot express (DWARF expressions, signal
/// frames). One walker per process holds a Dwfl with the process's modules.
typedef struct cdwfl_walker cdwfl_walker;

/// The x86-64 DWARF registers libdw starts from: rax, rdx, rcx, rbx, rsi, rdi,
/// rbp, rsp, r8-r15, then the return-address column (the sampled pc).
enum { CDWFL_REGISTER_COUNT = 17 };

/// How a walk ended.
typedef enum {
    /// The outermost frame was reached.
    CDWFL_COMPLETE = 0,
    /// `max_frames` were written.
    CDWFL_DEPTH_LIMIT = 1,
    /// A read fell outside the stack copy.
    CDWFL_STACK_COPY_TOO_SMALL = 2,
    /// libdw could not go on (no module, no CFI, a bad rule).
    CDWFL_FAILED = 3,
} cdwfl_status;

cdwfl_walker *cdwfl_walker_create(int pid);
/// Reports one file mapped with load bias `bias`; call before the first walk.
/// Returns 0, or -1 if libdw refused the file.
int cdwfl_walker_report(cdwfl_walker *walker, const char *path, uint64_t bias);
/// Finishes reporting and attaches the thread callbacks. Returns 0 or -1.
int cdwfl_walker_ready(cdwfl_walker *walker);
/// Unwinds from `registers` over `stack` (a copy of memory from
/// `registers[7]`, the stack pointer, upward). Writes up to `max_frames` pcs
/// and whether each is exact (the leaf, or a frame interrupted by a signal)
/// rather than a return address; returns the number written in `*count`.
cdwfl_status cdwfl_walker_unwind(cdwfl_walker *walker, const uint64_t registers[CDWFL_REGISTER_COUNT],
                                 const uint8_t *stack, size_t stack_size,
                                 uint64_t *pcs, uint8_t *exact, size_t max_frames, size_t *count);
/// The load bias of a file mapped at `start` from file offset `offset`, from
/// its program headers; returns 0 and sets `*bias`, or -1 for a non-ELF file.
int cdwfl_load_bias(const char *path, uint64_t start, uint64_t offset, uint64_t *bias);
void cdwfl_walker_destroy(cdwfl_walker *walker);

#endif
