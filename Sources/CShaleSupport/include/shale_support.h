#ifndef SHALE_SUPPORT_H
#define SHALE_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/// Whether this CPU has a CRC-32C instruction `shale_crc32c_hw` can use (x86-64 SSE 4.2).
int shale_crc32c_hw_available(void);

/// CRC-32C (Castagnoli) of `n` bytes at `p`, continuing from `crc` (0 to start), with the
/// CPU's CRC-32C instruction. Call only when `shale_crc32c_hw_available()` returned non-zero.
uint32_t shale_crc32c_hw(uint32_t crc, const void *p, size_t n);

/// Names the calling thread (at most 15 bytes are kept; shown by top, perf and gdb). No
/// effect where the system has no thread names.
void shale_set_thread_name(const char *name);

/// Asks the CPU to start loading the cache line at `p` for reading (no effect on results).
static inline void shale_prefetch(const void *p) {
    __builtin_prefetch(p, 0, 3);
}

/// Number of stripes of a striped counter (`shale_counter_*`): 16 cache lines of 64 bytes.
#define SHALE_COUNTER_STRIPES 16

/// This thread's stripe of a striped counter, in 0..<SHALE_COUNTER_STRIPES: threads get
/// consecutive stripes in the order they first ask, so the first 16 threads never share one.
unsigned shale_thread_stripe(void);

/// Adds `n` to this thread's stripe of the counter at `slots` (SHALE_COUNTER_STRIPES * 8
/// words, 64-byte aligned), with a relaxed atomic add on a line no other thread of the first
/// 16 writes.
void shale_counter_add(uint64_t *slots, uint64_t n);

/// The sum of all stripes of the counter at `slots` (relaxed loads; wraps modulo 2^64).
uint64_t shale_counter_sum(const uint64_t *slots);

/// Sets every stripe of the counter at `slots` to 0.
void shale_counter_reset(uint64_t *slots);

#endif
