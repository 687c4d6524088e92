#ifndef BALLAST_CRC_H
#define BALLAST_CRC_H
#include <stddef.h>
#include <stdint.h>

/// Nonzero when the CPU has the SSE4.2 crc32 instruction (checked once).
int ballast_crc32c_hardware_available(void);

/// Continues the raw (non-inverted) CRC-32C state `state` over `length` bytes with the CPU's
/// crc32 instruction. Call only when ballast_crc32c_hardware_available() is nonzero.
uint32_t ballast_crc32c_hardware_update(uint32_t state, const void *data, size_t length);
#endif
