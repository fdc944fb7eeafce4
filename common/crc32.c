/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of
 * every trace chunk. The shim checksums every byte it writes, so where the
 * CPU has SSE4.2 its crc32 instruction does it 8 bytes at a time; elsewhere
 * a table built at compile time (no initialisation order to worry about). */
#include "common/crc32.h"

#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#define CRC_POLY 0x82F63B78u
#define S1(c) (((c)&1u) ? CRC_POLY ^ ((c) >> 1) : ((c) >> 1))
#define S8(c) S1(S1(S1(S1(S1(S1(S1(S1(c))))))))
#define CRC_BYTE(n) S8((uint32_t)(n))
#define CRC_4(n) CRC_BYTE((n) + 0), CRC_BYTE((n) + 1), CRC_BYTE((n) + 2), CRC_BYTE((n) + 3)
#define CRC_16(n) CRC_4(n), CRC_4((n) + 4), CRC_4((n) + 8), CRC_4((n) + 12)
#define CRC_64(n) CRC_16(n), CRC_16((n) + 16), CRC_16((n) + 32), CRC_16((n) + 48)

static const uint32_t crc_table[256] = {CRC_64(0), CRC_64(64), CRC_64(128), CRC_64(192)};

static uint32_t crc_soft(uint32_t crc, const unsigned char *p, size_t len) {
  while (len--)
    crc = crc_table[(crc ^ *p++) & 0xffu] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const unsigned char *p,
                                                         size_t len) {
  uint64_t c = crc;
  while (len >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    len -= 8;
  }
  crc = (uint32_t)c;
  while (len--)
    crc = __builtin_ia32_crc32qi(crc, *p++);
  return crc;
}

static int have_sse42(void) {
  static int cached = -1;
  if (cached < 0) {
    unsigned a, b, c, d;
    cached = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2);
  }
  return cached;
}
#endif

uint32_t loopsan_crc32c(uint32_t crc, const void *data, size_t len) {
  crc = ~crc;
#if defined(__x86_64__)
  if (have_sse42())
    return ~crc_hw(crc, data, len);
#endif
  return ~crc_soft(crc, data, len);
}
