/* CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320): the checksum of
 * every trace chunk. Table-driven, the table built at compile time so the
 * shim needs no initialisation order. */
#include "common/crc32.h"

#define CRC_ROW(n) CRC_BYTE((n) + 0), CRC_BYTE((n) + 1), CRC_BYTE((n) + 2), CRC_BYTE((n) + 3)
#define S1(c) (((c) & 1u) ? 0xEDB88320u ^ ((c) >> 1) : ((c) >> 1))
#define S8(c) S1(S1(S1(S1(S1(S1(S1(S1(c))))))))
#define CRC_BYTE(n) S8((uint32_t)(n))
#define CRC_16(n) CRC_ROW(n), CRC_ROW((n) + 4), CRC_ROW((n) + 8), CRC_ROW((n) + 12)
#define CRC_64(n) CRC_16(n), CRC_16((n) + 16), CRC_16((n) + 32), CRC_16((n) + 48)

static const uint32_t crc_table[256] = {CRC_64(0), CRC_64(64), CRC_64(128), CRC_64(192)};

uint32_t loopsan_crc32(uint32_t crc, const void *data, size_t len) {
  const unsigned char *p = data;
  crc = ~crc;
  while (len--)
    crc = crc_table[(crc ^ *p++) & 0xffu] ^ (crc >> 8);
  return ~crc;
}
