/* What the libuv adapter's files share (lib_uv.c: loops and handles;
 * lib_uv_requests.c: requests). Internal to the shim. */
#ifndef LOOPSAN_LIB_UV_INTERNAL_H
#define LOOPSAN_LIB_UV_INTERNAL_H

#include <string.h>
#include <uv.h>

#include "preload/lib_uv.h"
#include "preload/shim.h"

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

enum uv_object_type {
#define X(name, str, kind) T_##name,
  UV_OBJECT_TYPES(X)
#undef X
};

/* ---- resolving libuv and telling its calls apart ------------------------ */

extern struct loopsan_library_ref loopsan__uv_lib;

#define REAL(fn) real_##fn
#define DECLARE_REAL(fn) static __typeof__(fn) *real_##fn
/* Resolve on first use; NULL only if libuv is not loaded at all, which
 * cannot happen for a program that called into it. */
#define RESOLVE(fn)          \
  (LOOPSAN_LIKELY(real_##fn) \
       ? 1                   \
       : ((real_##fn = (__typeof__(fn) *)loopsan__resolve(&loopsan__uv_lib, #fn)) != NULL))

/* Trampolines live in a section of their own: a return address inside it
 * belongs to a program callback that tail-called into libuv (uv_close() as
 * the last statement of a callback compiles to a jump), so the call is the
 * program's. Any other return address inside the shim is libuv tail-calling
 * itself from a call the shim made (uv_write -> uv_write2). */
#define TRAMPOLINE __attribute__((section("loopsan_tramp"), noinline, used))
extern const char __start_loopsan_tramp[] __attribute__((visibility("hidden")));
extern const char __stop_loopsan_tramp[] __attribute__((visibility("hidden")));

int loopsan__uv_calls_itself(uintptr_t ra);

/* Is the call that returns to RA the program's (to be observed), rather
 * than libuv's or the shim's own? */
static inline int from_program(uintptr_t ra) {
  if (!loopsan__state.active)
    return 0;
  if (loopsan__in_range(&loopsan__uv_lib, ra))
    return !loopsan__uv_calls_itself(ra);
  if (!loopsan__is_self(ra))
    return 1;
  return ra >= (uintptr_t)__start_loopsan_tramp && ra < (uintptr_t)__stop_loopsan_tramp;
}
#define CALLER ((uintptr_t)__builtin_return_address(0))

/* ---- helpers shared by handles and requests ---- */
uint64_t loopsan__uv_loop_id(const uv_loop_t *loop);
uint64_t loopsan__uv_stream_loop_id(const void *stream);
/* The program used handle H in a way that counts as starting it. */
void loopsan__uv_handle_used(const void *h);
/* A request with callback CB begins: its reference (pass the trampoline),
 * or NULL when it is not tracked (pass CB through). */
void *loopsan__uv_request_begin(const void *req, int type, uint64_t loop, void *cb);
/* libuv accepted (RC 0) or refused the request. */
void loopsan__uv_request_submitted(void *ref, const void *req, int rc, const char *fn);

#endif
