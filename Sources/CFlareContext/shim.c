/* The one C writer, compiled here from where other languages take it too.
   flare_context.h defines _GNU_SOURCE itself and must come before system headers. */
#include "../../clients/c/flare_context.h"
#include "CFlareContext.h"

int cflarecontext_span_attach(const uint8_t *trace_id, const uint8_t *span_id, const uint8_t *local_root_span_id,
                              uint8_t trace_flags, const char *root_span_name) {
    return flare_span_attach(trace_id, span_id, local_root_span_id, trace_flags, root_span_name);
}

int cflarecontext_span_detach(void) { return flare_span_detach(); }

void cflarecontext_thread_release(void) { flare_thread_release(); }

int cflarecontext_publish_resource(const char *service_name, const char *service_version, const char *environment) {
    return flare_context_publish_resource(service_name, service_version, environment);
}

static __thread void *cflarecontext_current_span;

void *cflarecontext_current(void) { return cflarecontext_current_span; }

void cflarecontext_set_current(void *span) { cflarecontext_current_span = span; }
