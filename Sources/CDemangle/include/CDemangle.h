// CDemangle: declarations of the two demanglers Flare links against, which no
// importable header declares for Swift.
#ifndef CDEMANGLE_H
#define CDEMANGLE_H
#include <stddef.h>
#include <stdint.h>

/// The C++ ABI demangler from libstdc++ (malloc'd result, or NULL).
char *__cxa_demangle(const char *mangled_name, char *output_buffer, size_t *length, int *status);

/// The Swift runtime's demangler, exported by libswiftCore (malloc'd result, or NULL).
char *swift_demangle(const char *mangled_name, size_t mangled_name_length,
                     char *output_buffer, size_t *output_buffer_size, uint32_t flags);
#endif
