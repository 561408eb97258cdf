#include "shale_support.h"

#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>

int shale_crc32c_hw_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2")))
uint32_t shale_crc32c_hw(uint32_t crc, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    uint64_t c = (uint32_t)~crc;
    while (n > 0 && ((uintptr_t)b & 7) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *b++);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        c = _mm_crc32_u64(c, w);
        b += 8;
        n -= 8;
    }
    while (n > 0) {
        c = _mm_crc32_u8((uint32_t)c, *b++);
        n--;
    }
    return ~(uint32_t)c;
}

#else

int shale_crc32c_hw_available(void) { return 0; }

uint32_t shale_crc32c_hw(uint32_t crc, const void *p, size_t n) {
    (void)p;
    (void)n;
    return crc;
}

#endif
