// The executables `ballast` and `transfers` link jemalloc (Debian's libjemalloc-dev), which
// takes the place of glibc's malloc in the whole process. See docs/architecture.md, "Memory".
#include <stddef.h>
#include "ballast_allocator.h"

// jemalloc's control interface, declared here rather than through <jemalloc/jemalloc.h>, whose
// unprefixed declarations of malloc and free would only repeat glibc's.
int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);

const char *ballast_allocator_version(void) {
    const char *version = NULL;
    size_t length = sizeof(version);
    if (mallctl("version", &version, &length, NULL, 0) != 0 || version == NULL) return "";
    return version;
}
