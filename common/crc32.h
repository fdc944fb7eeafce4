#ifndef LOOPSAN_CRC32_H
#define LOOPSAN_CRC32_H
#include <stddef.h>
#include <stdint.h>

/* CRC-32C (Castagnoli). Start with crc = 0; to continue over more data,
 * pass the previous result. loopsan_crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t loopsan_crc32c(uint32_t crc, const void *data, size_t len);

#endif
