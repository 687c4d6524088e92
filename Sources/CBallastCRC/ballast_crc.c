// CRC-32C with the SSE4.2 crc32 instruction: the write-ahead log and the Raft transport
// checksum every byte they write, and the table-driven Swift version costs a fifth of a core
// at full load. The instruction computes exactly the Castagnoli polynomial.
#include "ballast_crc.h"
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>

int ballast_crc32c_hardware_available(void) {
    static int cached = -1;
    if (cached < 0) {
        unsigned int eax, ebx, ecx, edx;
        cached = (__get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_SSE4_2)) ? 1 : 0;
    }
    return cached;
}

__attribute__((target("sse4.2")))
uint32_t ballast_crc32c_hardware_update(uint32_t state, const void *data, size_t length) {
    const unsigned char *bytes = (const unsigned char *)data;
    uint64_t wide = state;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        wide = _mm_crc32_u64(wide, word);
        bytes += 8;
        length -= 8;
    }
    uint32_t narrow = (uint32_t)wide;
    while (length > 0) {
        narrow = _mm_crc32_u8(narrow, *bytes);
        bytes += 1;
        length -= 1;
    }
    return narrow;
}
#else
int ballast_crc32c_hardware_available(void) { return 0; }
uint32_t ballast_crc32c_hardware_update(uint32_t state, const void *data, size_t length) {
    (void)data; (void)length;
    return state;
}
#endif
