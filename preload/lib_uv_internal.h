/* What the libuv adapter's files share (lib_uv.c: loops and handles;
 * lib_uv_requests.c: requests). Internal to the shim. */
#ifndef LOOPSAN_LIB_UV_INTERNAL_H
#define LOOPSAN_LIB_UV_INTERNAL_H

#include <string.h>
#include <uv.h>

#include "preload/adapter.h"

/* ---- types -------------------------------------------------------------- */

#define UV_OBJECT_TYPES(X)                    \
  X(LOOP, "uv_loop_t", LOOP)                  \
  X(TIMER, "uv_timer_t", HANDLE)              \
  X(IDLE, "uv_idle_t", HANDLE)                \
  X(PREPARE, "uv_prepare_t", HANDLE)          \
  X(CHECK, "uv_check_t", HANDLE)              \
  X(ASYNC, "uv_async_t", HANDLE)              \
  X(TCP, "uv_tcp_t", HANDLE)                  \
  X(UDP, "uv_udp_t", HANDLE)                  \
  X(PIPE, "uv_pipe_t", HANDLE)                \
  X(TTY, "uv_tty_t", HANDLE)                  \
  X(POLL, "uv_poll_t", HANDLE)                \
  X(SIGNAL, "uv_signal_t", HANDLE)            \
  X(PROCESS, "uv_process_t", HANDLE)          \
  X(FS_EVENT, "uv_fs_event_t", HANDLE)        \
  X(FS_POLL, "uv_fs_poll_t", HANDLE)          \
  X(WRITE, "uv_write_t", REQUEST)             \
  X(SHUTDOWN, "uv_shutdown_t", REQUEST)       \
  X(CONNECT, "uv_connect_t", REQUEST)         \
  X(UDP_SEND, "uv_udp_send_t", REQUEST)       \
  X(GETADDRINFO, "uv_getaddrinfo_t", REQUEST) \
  X(GETNAMEINFO, "uv_getnameinfo_t", REQUEST) \
  X(WORK, "uv_work_t", REQUEST)               \
  X(FS, "uv_fs_t", REQUEST)                   \
  X(RANDOM, "uv_random_t", REQUEST)

enum uv_object_type { UV_OBJECT_TYPES(LOOPSAN_TYPE_ENUM) };

/* ---- libuv in the adapter core's terms (adapter.h) ---- */

extern struct loopsan_library_ref loopsan__uv_lib;
#define RESOLVE(fn) RESOLVE_IN(&loopsan__uv_lib, fn)
#define from_program(ra) loopsan__from_program(&loopsan__uv_lib, ra)

#endif
