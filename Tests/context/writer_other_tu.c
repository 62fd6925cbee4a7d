/*
 * A second translation unit including flare_context.h. The header keeps its
 * state in weak symbols; if that broke, this file would get its own mapping and
 * its own per-thread slot, and the basic scenario would see two FLARE_SLOTS
 * mappings or a thread with two slots.
 */
#include "../../clients/c/flare_context.h"

int other_tu_attach(const uint8_t trace_id[16], const uint8_t span_id[8], const uint8_t root_id[8], const char *name);

int other_tu_attach(const uint8_t trace_id[16], const uint8_t span_id[8], const uint8_t root_id[8], const char *name) {
    return flare_span_attach(trace_id, span_id, root_id, 1, name);
}
