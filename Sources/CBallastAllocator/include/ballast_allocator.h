#ifndef BALLAST_ALLOCATOR_H
#define BALLAST_ALLOCATOR_H

/// jemalloc's version string (for example "5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c"),
/// or "" when it cannot be read.
const char *ballast_allocator_version(void);
#endif
