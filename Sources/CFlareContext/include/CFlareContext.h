#ifndef CFLARECONTEXT_H
#define CFLARECONTEXT_H

#include <stdint.h>

/*
 * The C writer of the Flare context ABI (clients/c/flare_context.h), made
 * callable from Swift.
 *
 * Why a shim: the header is static inline with weak, thread-local state; Swift
 * would import and re-emit that state in every module that uses it. Here it is
 * compiled once, in shim.c, straight from clients/c/flare_context.h, and Swift
 * calls these plain functions. The weak symbols still merge with any
 * C library in the same process that includes the header, so the process keeps
 * one FLARE_SLOTS mapping and each thread one slot.
 */

/// flare_span_attach: the calling thread now runs this span. 0, or -1 without a slot.
int cflarecontext_span_attach(const uint8_t *trace_id, const uint8_t *span_id, const uint8_t *local_root_span_id,
                              uint8_t trace_flags, const char *root_span_name);
/// flare_span_detach: the calling thread runs no span. 0, or -1 without a slot.
int cflarecontext_span_detach(void);
/// flare_thread_release: frees the calling thread's slot now.
void cflarecontext_thread_release(void);
/// flare_context_publish_resource: 0 or a negative errno.
int cflarecontext_publish_resource(const char *service_name, const char *service_version, const char *environment);

/// A per-thread pointer the Swift layer keeps its current published span in,
/// so a scope can restore what it replaced. Opaque to C.
void *cflarecontext_current(void);
void cflarecontext_set_current(void *span);

#endif
