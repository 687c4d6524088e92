#ifndef BALLAST_CNGHTTP2_SHIM_H
#define BALLAST_CNGHTTP2_SHIM_H
// ssize_t must be declared before nghttp2.h (Debian's 1.52 uses it in callbacks).
#include <sys/types.h>
#include <nghttp2/nghttp2.h>
#endif
