#ifndef SHALE_SUPPORT_H
#define SHALE_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/// Whether this CPU has a CRC-32C instruction `shale_crc32c_hw` can use (x86-64 SSE 4.2).
int shale_crc32c_hw_available(void);

/// CRC-32C (Castagnoli) of `n` bytes at `p`, continuing from `crc` (0 to start), with the
/// CPU's CRC-32C instruction. Call only when `shale_crc32c_hw_available()` returned non-zero.
uint32_t shale_crc32c_hw(uint32_t crc, const void *p, size_t n);

/// Asks the CPU to start loading the cache line at `p` for reading (no effect on results).
static inline void shale_prefetch(const void *p) {
    __builtin_prefetch(p, 0, 3);
}

#endif
