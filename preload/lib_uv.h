/* The libuv adapter (lib_uv.c). */
#ifndef LOOPSAN_LIB_UV_H
#define LOOPSAN_LIB_UV_H

/* Describe libuv's object types to the core (TYPE records). */
void loopsan__uv_register(void);

#endif
