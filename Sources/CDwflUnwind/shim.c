#define _GNU_SOURCE
#include "CDwflUnwind.h"

#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cdwfl_walker {
    Dwfl *dwfl;
    int pid;
    /* The sample being walked: valid only during cdwfl_walker_unwind. */
    const Dwarf_Word *registers;
    const uint8_t *stack;
    size_t stack_size;
    uint64_t stack_start;
    int read_outside_copy;
    /* What the frame callback collects. */
    uint64_t *pcs;
    uint8_t *exact;
    size_t max_frames;
    size_t count;
};

static char *debuginfo_path = NULL;

static const Dwfl_Callbacks offline_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};

/* One thread per walk: the sampled one. */
static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_arg) {
    (void)dwfl;
    cdwfl_walker *walker = arg;
    if (*thread_arg != NULL) return 0;
    *thread_arg = walker;
    return walker->pid;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_arg) {
    (void)dwfl; (void)tid;
    *thread_arg = arg;
    return true;
}

/* Only the copied stack is readable: the process may be gone, and reading
   its live memory would mix two instants. */
static bool memory_read(Dwfl *dwfl, Dwarf_Addr address, Dwarf_Word *result, void *arg) {
    (void)dwfl;
    cdwfl_walker *walker = arg;
    if (address < walker->stack_start || address - walker->stack_start > walker->stack_size
        || walker->stack_size - (address - walker->stack_start) < sizeof(Dwarf_Word)) {
        walker->read_outside_copy = 1;
        return false;
    }
    memcpy(result, walker->stack + (address - walker->stack_start), sizeof(Dwarf_Word));
    return true;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *arg) {
    cdwfl_walker *walker = arg;
    if (!dwfl_thread_state_registers(thread, 0, CDWFL_REGISTER_COUNT, walker->registers)) return false;
    dwfl_thread_state_register_pc(thread, walker->registers[CDWFL_REGISTER_COUNT - 1]);
    return true;
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
    .next_thread = next_thread,
    .get_thread = get_thread,
    .memory_read = memory_read,
    .set_initial_registers = set_initial_registers,
};

cdwfl_walker *cdwfl_walker_create(int pid) {
    cdwfl_walker *walker = calloc(1, sizeof *walker);
    if (walker == NULL) return NULL;
    walker->pid = pid > 0 ? pid : 1;
    walker->dwfl = dwfl_begin(&offline_callbacks);
    if (walker->dwfl == NULL) {
        free(walker);
        return NULL;
    }
    dwfl_report_begin(walker->dwfl);
    return walker;
}

int cdwfl_walker_report(cdwfl_walker *walker, const char *path, uint64_t bias) {
    /* add_p_vaddr: `bias` is added to the file's link-time addresses. */
    return dwfl_report_elf(walker->dwfl, path, path, -1, bias, true) != NULL ? 0 : -1;
}

int cdwfl_walker_ready(cdwfl_walker *walker) {
    if (dwfl_report_end(walker->dwfl, NULL, NULL) != 0) return -1;
    return dwfl_attach_state(walker->dwfl, NULL, walker->pid, &thread_callbacks, walker) ? 0 : -1;
}

static int collect_frame(Dwfl_Frame *frame, void *arg) {
    cdwfl_walker *walker = arg;
    Dwarf_Addr pc;
    bool activation = false;
    if (!dwfl_frame_pc(frame, &pc, &activation)) return DWARF_CB_ABORT;
    if (walker->count >= walker->max_frames) return DWARF_CB_ABORT;
    walker->pcs[walker->count] = pc;
    walker->exact[walker->count] = activation;
    walker->count++;
    return DWARF_CB_OK;
}

cdwfl_status cdwfl_walker_unwind(cdwfl_walker *walker, const uint64_t registers[CDWFL_REGISTER_COUNT],
                                 const uint8_t *stack, size_t stack_size,
                                 uint64_t *pcs, uint8_t *exact, size_t max_frames, size_t *count) {
    walker->registers = registers;
    walker->stack = stack;
    walker->stack_size = stack_size;
    walker->stack_start = registers[7];
    walker->read_outside_copy = 0;
    walker->pcs = pcs;
    walker->exact = exact;
    walker->max_frames = max_frames;
    walker->count = 0;
    int result = dwfl_getthread_frames(walker->dwfl, walker->pid, collect_frame, walker);
    *count = walker->count;
    walker->registers = NULL;
    walker->stack = NULL;
    if (walker->count >= max_frames) return CDWFL_DEPTH_LIMIT;
    if (result == 0) return CDWFL_COMPLETE;
    if (walker->read_outside_copy) return CDWFL_STACK_COPY_TOO_SMALL;
    return CDWFL_FAILED;
}

int cdwfl_load_bias(const char *path, uint64_t start, uint64_t offset, uint64_t *bias) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    elf_version(EV_CURRENT);
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    int found = -1;
    size_t count = 0;
    GElf_Ehdr header;
    if (elf != NULL && gelf_getehdr(elf, &header) != NULL && elf_getphdrnum(elf, &count) == 0) {
        if (header.e_type == ET_EXEC) {
            *bias = 0;
            found = 0;
        }
        for (size_t i = 0; i < count && found != 0; i++) {
            GElf_Phdr segment;
            if (gelf_getphdr(elf, (int)i, &segment) == NULL || segment.p_type != PT_LOAD) continue;
            uint64_t page_start = segment.p_offset & ~(uint64_t)0xfff;
            if (offset >= page_start && offset < segment.p_offset + segment.p_filesz) {
                *bias = start - offset - (segment.p_vaddr - segment.p_offset);
                found = 0;
            }
        }
    }
    if (elf != NULL) elf_end(elf);
    close(fd);
    return found;
}

void cdwfl_walker_destroy(cdwfl_walker *walker) {
    if (walker == NULL) return;
    dwfl_end(walker->dwfl);
    free(walker);
}
