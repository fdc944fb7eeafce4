#ifndef LOOPSAN_CRC32_H
#define LOOPSAN_CRC32_H
#include <stddef.h>
#include <stdint.h>

/* Start with crc = 0; feed more data by passing the previous result. */
uint32_t loopsan_crc32(uint32_t crc, const void *data, size_t len);

#endif
