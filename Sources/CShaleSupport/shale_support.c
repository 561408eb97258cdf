#define _GNU_SOURCE
#include "shale_support.h"

#include <pthread.h>

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

static unsigned shale_next_stripe = 0;
static _Thread_local unsigned shale_stripe_plus_one = 0;

unsigned shale_thread_stripe(void) {
    unsigned s = shale_stripe_plus_one;
    if (s == 0) {
        s = __atomic_fetch_add(&shale_next_stripe, 1, __ATOMIC_RELAXED) % SHALE_COUNTER_STRIPES + 1;
        shale_stripe_plus_one = s;
    }
    return s - 1;
}

void shale_counter_add(uint64_t *slots, uint64_t n) {
    __atomic_fetch_add(&slots[shale_thread_stripe() * 8], n, __ATOMIC_RELAXED);
}

uint64_t shale_counter_sum(const uint64_t *slots) {
    uint64_t total = 0;
    for (unsigned i = 0; i < SHALE_COUNTER_STRIPES; i++) {
        total += __atomic_load_n(&slots[i * 8], __ATOMIC_RELAXED);
    }
    return total;
}

void shale_counter_reset(uint64_t *slots) {
    for (unsigned i = 0; i < SHALE_COUNTER_STRIPES; i++) {
        __atomic_store_n(&slots[i * 8], 0, __ATOMIC_RELAXED);
    }
}

void shale_set_thread_name(const char *name) {
    char buf[16];
    strncpy(buf, name, sizeof buf - 1);
    buf[sizeof buf - 1] = 0;
#if defined(__APPLE__)
    pthread_setname_np(buf);
#elif defined(__linux__)
    pthread_setname_np(pthread_self(), buf);
#endif
}
