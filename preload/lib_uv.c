/* The libuv adapter: translates libuv's API into the core's generic object
 * operations and wraps every callback libuv calls on the loop thread.
 *
 * How a callback is wrapped: the program's callback is kept in the object
 * table under the handle's (or request's) address, and libuv is given a
 * trampoline of the same type that looks it up, times it and calls it. The
 * handle's `data` and every other field stay the program's.
 *
 * libuv calls its own exported functions through the PLT (uv_timer_again ->
 * uv_timer_start, uv_write -> uv_write2, uv_loop_init for the default loop,
 * uv_async_init for its threadpool): calls whose return address lies in
 * libuv (or in the shim) pass straight through. That is what keeps libuv's
 * internal handles out of every report, and what lets uv_timer_again restart
 * a timer with the trampoline already in place. */
#include <string.h>
#include <uv.h>

#include "preload/lib_uv.h"
#include "preload/shim.h"

/* ---- types -------------------------------------------------------------- */

#define UV_OBJECT_TYPES(X)                  \
  X(LOOP, "uv_loop_t", LOOP)                \
  X(TIMER, "uv_timer_t", HANDLE)            \
  X(IDLE, "uv_idle_t", HANDLE)              \
  X(PREPARE, "uv_prepare_t", HANDLE)        \
  X(CHECK, "uv_check_t", HANDLE)            \
  X(ASYNC, "uv_async_t", HANDLE)            \
  X(TCP, "uv_tcp_t", HANDLE)                \
  X(UDP, "uv_udp_t", HANDLE)                \
  X(PIPE, "uv_pipe_t", HANDLE)              \
  X(TTY, "uv_tty_t", HANDLE)                \
  X(POLL, "uv_poll_t", HANDLE)              \
  X(SIGNAL, "uv_signal_t", HANDLE)          \
  X(PROCESS, "uv_process_t", HANDLE)        \
  X(FS_EVENT, "uv_fs_event_t", HANDLE)      \
  X(FS_POLL, "uv_fs_poll_t", HANDLE)        \
  X(WRITE, "uv_write_t", REQUEST)           \
  X(SHUTDOWN, "uv_shutdown_t", REQUEST)     \
  X(CONNECT, "uv_connect_t", REQUEST)       \
  X(UDP_SEND, "uv_udp_send_t", REQUEST)     \
  X(GETADDRINFO, "uv_getaddrinfo_t", REQUEST) \
  X(GETNAMEINFO, "uv_getnameinfo_t", REQUEST) \
  X(WORK, "uv_work_t", REQUEST)             \
  X(FS, "uv_fs_t", REQUEST)                 \
  X(RANDOM, "uv_random_t", REQUEST)

enum uv_object_type {
#define X(name, str, kind) T_##name,
  UV_OBJECT_TYPES(X)
#undef X
};

static const struct loopsan_type_desc uv_types[] = {
#define X(name, str, kind) {LOOPSAN_LIB_UV, T_##name, LOOPSAN_OBJ_##kind, str},
    UV_OBJECT_TYPES(X)
#undef X
};

void loopsan__uv_register(void) {
  loopsan__register_types(uv_types, sizeof uv_types / sizeof uv_types[0]);
}

/* ---- resolving libuv and telling its calls apart ------------------------ */

static struct loopsan_library_ref uv_lib = {.soname_prefix = "libuv.so"};

#define REAL(fn) real_##fn
#define DECLARE_REAL(fn) static __typeof__(fn) *real_##fn
/* Resolve on first use; NULL only if libuv is not loaded at all, which
 * cannot happen for a program that called into it. */
#define RESOLVE(fn)                                                                   \
  (LOOPSAN_LIKELY(real_##fn) ? 1                                                      \
                             : ((real_##fn = (__typeof__(fn) *)loopsan__resolve(&uv_lib, #fn)) != NULL))

/* Trampolines live in a section of their own: a return address inside it
 * belongs to a program callback that tail-called into libuv (uv_close() as
 * the last statement of a callback compiles to a jump), so the call is the
 * program's. Any other return address inside the shim is libuv tail-calling
 * itself from a call the shim made (uv_write -> uv_write2). */
#define TRAMPOLINE __attribute__((section("loopsan_tramp"), noinline, used))
extern const char __start_loopsan_tramp[] __attribute__((visibility("hidden")));
extern const char __stop_loopsan_tramp[] __attribute__((visibility("hidden")));

/* A return address inside libuv is libuv calling its own export, unless
 * the instruction before it is an indirect call through a pointer held
 * outside libuv: that is libuv invoking one of the program's callbacks (a
 * uv_walk callback, say) which tail-called the export, and the call is the
 * program's. libuv's own calls are `call rel32` to its PLT or code, or
 * `call *GOT(%rip)` when built with -fno-plt. */
static int libuv_calls_itself(uintptr_t ra) {
#if defined(__x86_64__)
  uintptr_t start = atomic_load_explicit(&uv_lib.start, memory_order_relaxed);
  if (ra - start < 6)
    return 1;
  const unsigned char *p = (const unsigned char *)ra;
  if (p[-5] == 0xe8) { /* call rel32 */
    int32_t rel;
    memcpy(&rel, p - 4, sizeof rel);
    if (loopsan__in_range(&uv_lib, ra + (uintptr_t)(intptr_t)rel))
      return 1;
  }
  if (p[-6] == 0xff && p[-5] == 0x15) { /* call *disp32(%rip) */
    int32_t disp;
    memcpy(&disp, p - 4, sizeof disp);
    if (loopsan__in_range(&uv_lib, ra + (uintptr_t)(intptr_t)disp))
      return 1;
  }
  return 0;
#else
  (void)ra;
  return 1;
#endif
}

static inline int from_program(uintptr_t ra) {
  if (!loopsan__state.active)
    return 0;
  if (loopsan__in_range(&uv_lib, ra))
    return !libuv_calls_itself(ra);
  if (!loopsan__is_self(ra))
    return 1;
  return ra >= (uintptr_t)__start_loopsan_tramp && ra < (uintptr_t)__stop_loopsan_tramp;
}
#define CALLER ((uintptr_t)__builtin_return_address(0))

/* ---- object helpers ----------------------------------------------------- */

/* Handles are created in bursts on one loop: remember the last answer. */
static LOOPSAN_TLS const uv_loop_t *last_loop;
static LOOPSAN_TLS uint64_t last_loop_id;

static uint64_t loop_id(const uv_loop_t *loop) {
  struct loopsan_obj o;
  if (loop == last_loop && loop)
    return last_loop_id;
  uint64_t id = loop && loopsan__obj_get(loop, &o) ? o.id : 0;
  last_loop = id ? loop : NULL;
  last_loop_id = id;
  return id;
}

static void forget_loop(const uv_loop_t *loop) {
  if (last_loop == loop)
    last_loop = NULL;
}

static void handle_new(const void *h, int type, const uv_loop_t *loop) {
  loopsan__record_new(h, LOOPSAN_LIB_UV, (uint8_t)type, loop_id(loop), 0, NULL);
}

/* The program used handle H in a way that counts as starting it. */
static void handle_used(const void *h) {
  struct loopsan_obj o;
  void *ref = loopsan__obj_get(h, &o);
  if (ref && !loopsan__obj_state_set(ref, LOOPSAN_STATE_USED))
    loopsan__record_op(o.id, LOOPSAN_OP_USE, NULL, 0, 0);
}

/* Arm callback SLOT of handle H with CB. Returns 1 when the trampoline must
 * be passed to libuv, 0 when the handle is not ours (pass CB through).
 * TRAMP tells a program that passes back the trampoline it read from the
 * handle (h->timer_cb) from a new callback. */
static void *handle_arm(const void *h, int slot, void *cb, void *tramp) {
  struct loopsan_obj o;
  void *ref = loopsan__obj_get(h, &o);
  if (!ref)
    return NULL;
  if (cb != tramp)
    loopsan__obj_set_cb(ref, slot, cb);
  if (slot == LOOPSAN_SLOT_MAIN)
    loopsan__obj_state_clear(ref, LOOPSAN_STATE_FIRED);
  loopsan__obj_state_set(ref, LOOPSAN_STATE_USED);
  return ref;
}

static void handle_started(void *ref, const void *h, int rc, const char *fn, uint32_t flags) {
  struct loopsan_obj o;
  if (!loopsan__obj_read(ref, h, &o))
    return;
  if (rc == 0)
    loopsan__record_op(o.id, LOOPSAN_OP_START, o.cb[LOOPSAN_SLOT_MAIN], flags, 0);
  else
    loopsan__record_api_error(o.id, LOOPSAN_LIB_UV, fn, rc);
}

/* A request with callback CB begins: returns 1 if tracked (pass the
 * trampoline), 0 otherwise. */
static void *request_begin(const void *req, int type, uint64_t loop, void *cb) {
  void *ref = NULL;
  if (!loopsan__record_new(req, LOOPSAN_LIB_UV, (uint8_t)type, loop, 0, &ref) || !ref)
    return NULL;
  loopsan__obj_set_cb(ref, LOOPSAN_SLOT_MAIN, cb);
  return ref;
}

static void request_submitted(void *ref, const void *req, int rc, const char *fn) {
  struct loopsan_obj o;
  if (rc == 0) {
    if (loopsan__obj_read(ref, req, &o))
      loopsan__record_op(o.id, LOOPSAN_OP_START, o.cb[LOOPSAN_SLOT_MAIN],
                         LOOPSAN_START_ONESHOT | LOOPSAN_START_SCHEDULED, 0);
    return;
  }
  /* Refused: the request never existed for libuv. */
  if (loopsan__obj_take(req, &o) == 0) {
    loopsan__record_api_error(o.id, LOOPSAN_LIB_UV, fn, rc);
    loopsan__record_op(o.id, LOOPSAN_OP_CLOSED, NULL, 0, 0);
  }
}

static uint64_t stream_loop_id(const void *stream) {
  struct loopsan_obj o;
  return loopsan__obj_get(stream, &o) ? o.loop : 0;
}

/* ---- trampolines --------------------------------------------------------- */

/* A handle callback: look up, mark the first firing since start, time. */
#define HANDLE_TRAMPOLINE(name, slot, cb_type, handle_param, params, args)     \
  TRAMPOLINE static void name params {                                         \
    struct loopsan_obj_cb o;                                                   \
    void *ref = loopsan__obj_dispatch(handle_param, slot, &o);                 \
    if (LOOPSAN_UNLIKELY(!ref || !o.cb))                                       \
      return;                                                                  \
    struct loopsan_dispatch d;                                                 \
    if ((slot) == LOOPSAN_SLOT_MAIN && LOOPSAN_UNLIKELY(!(o.state & LOOPSAN_STATE_FIRED))) { \
      loopsan__obj_state_set(ref, LOOPSAN_STATE_FIRED);                        \
      loopsan__record_op(o.id, LOOPSAN_OP_FIRED, o.cb, 0, 0);                  \
    }                                                                          \
    loopsan__dispatch_begin(&d, o.id, o.cb, slot);                             \
    ((cb_type)o.cb) args;                                                      \
    loopsan__dispatch_end(&d);                                                 \
  }

/* COMPLETE's argument holds 24 bits: errors are small negatives, byte
 * counts of fs requests are only "success". */
static inline uint32_t clamp_status(ssize_t status) {
  if (status < -0x7fffff)
    status = -0x7fffff;
  if (status > 0x7fffff)
    status = 0x7fffff;
  return (uint32_t)status;
}

/* A request callback: the request leaves the table before its callback
 * runs (the callback may free or reuse it); COMPLETE is recorded after it,
 * so that a slow callback's DISPATCH still finds its request alive. */
#define REQUEST_TRAMPOLINE(name, cb_type, req_param, status_expr, params, args) \
  TRAMPOLINE static void name params {                                         \
    struct loopsan_obj o;                                                      \
    if (LOOPSAN_UNLIKELY(loopsan__obj_take(req_param, &o) != 0))               \
      return;                                                                  \
    uint32_t complete_status = clamp_status(status_expr);                      \
    if (o.cb[0]) {                                                             \
      struct loopsan_dispatch d;                                               \
      loopsan__dispatch_begin(&d, o.id, o.cb[0], LOOPSAN_SLOT_MAIN);           \
      ((cb_type)o.cb[0]) args;                                                 \
      loopsan__dispatch_end(&d);                                               \
    }                                                                          \
    loopsan__record_op(o.id, LOOPSAN_OP_COMPLETE, o.cb[0], complete_status, 0); \
  }

HANDLE_TRAMPOLINE(tr_timer, LOOPSAN_SLOT_MAIN, uv_timer_cb, h, (uv_timer_t * h), (h))
HANDLE_TRAMPOLINE(tr_idle, LOOPSAN_SLOT_MAIN, uv_idle_cb, h, (uv_idle_t * h), (h))
HANDLE_TRAMPOLINE(tr_prepare, LOOPSAN_SLOT_MAIN, uv_prepare_cb, h, (uv_prepare_t * h), (h))
HANDLE_TRAMPOLINE(tr_check, LOOPSAN_SLOT_MAIN, uv_check_cb, h, (uv_check_t * h), (h))
HANDLE_TRAMPOLINE(tr_async, LOOPSAN_SLOT_MAIN, uv_async_cb, h, (uv_async_t * h), (h))
HANDLE_TRAMPOLINE(tr_connection, LOOPSAN_SLOT_MAIN, uv_connection_cb, s, (uv_stream_t * s, int status),
                  (s, status))
HANDLE_TRAMPOLINE(tr_alloc_known, LOOPSAN_SLOT_ALLOC, uv_alloc_cb, h,
                  (uv_handle_t * h, size_t size, uv_buf_t *buf), (h, size, buf))
/* libuv reads the buffer the allocation callback fills: should the program's
 * callback be unknown (it cannot, short of a table full at start time),
 * answer "no buffer" (UV_ENOBUFS for the read) rather than leave garbage. */
TRAMPOLINE static void tr_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  buf->base = NULL;
  buf->len = 0;
  tr_alloc_known(h, size, buf);
}
HANDLE_TRAMPOLINE(tr_read, LOOPSAN_SLOT_MAIN, uv_read_cb, s,
                  (uv_stream_t * s, ssize_t n, const uv_buf_t *buf), (s, n, buf))
HANDLE_TRAMPOLINE(tr_udp_recv, LOOPSAN_SLOT_MAIN, uv_udp_recv_cb, h,
                  (uv_udp_t * h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *addr,
                   unsigned flags),
                  (h, n, buf, addr, flags))
HANDLE_TRAMPOLINE(tr_poll, LOOPSAN_SLOT_MAIN, uv_poll_cb, h, (uv_poll_t * h, int status, int events),
                  (h, status, events))
HANDLE_TRAMPOLINE(tr_signal, LOOPSAN_SLOT_MAIN, uv_signal_cb, h, (uv_signal_t * h, int signum),
                  (h, signum))
HANDLE_TRAMPOLINE(tr_exit, LOOPSAN_SLOT_MAIN, uv_exit_cb, h,
                  (uv_process_t * h, int64_t status, int signum), (h, status, signum))
HANDLE_TRAMPOLINE(tr_fs_event, LOOPSAN_SLOT_MAIN, uv_fs_event_cb, h,
                  (uv_fs_event_t * h, const char *file, int events, int status),
                  (h, file, events, status))
HANDLE_TRAMPOLINE(tr_fs_poll, LOOPSAN_SLOT_MAIN, uv_fs_poll_cb, h,
                  (uv_fs_poll_t * h, int status, const uv_stat_t *prev, const uv_stat_t *curr),
                  (h, status, prev, curr))

REQUEST_TRAMPOLINE(tr_write, uv_write_cb, r, status, (uv_write_t * r, int status), (r, status))
REQUEST_TRAMPOLINE(tr_shutdown, uv_shutdown_cb, r, status, (uv_shutdown_t * r, int status), (r, status))
REQUEST_TRAMPOLINE(tr_connect, uv_connect_cb, r, status, (uv_connect_t * r, int status), (r, status))
REQUEST_TRAMPOLINE(tr_udp_send, uv_udp_send_cb, r, status, (uv_udp_send_t * r, int status), (r, status))
REQUEST_TRAMPOLINE(tr_after_work, uv_after_work_cb, r, status, (uv_work_t * r, int status), (r, status))
REQUEST_TRAMPOLINE(tr_getaddrinfo, uv_getaddrinfo_cb, r, status,
                   (uv_getaddrinfo_t * r, int status, struct addrinfo *res), (r, status, res))
REQUEST_TRAMPOLINE(tr_getnameinfo, uv_getnameinfo_cb, r, status,
                   (uv_getnameinfo_t * r, int status, const char *host, const char *service),
                   (r, status, host, service))
REQUEST_TRAMPOLINE(tr_fs, uv_fs_cb, r, r->result, (uv_fs_t * r), (r))
REQUEST_TRAMPOLINE(tr_random, uv_random_cb, r, status,
                   (uv_random_t * r, int status, void *buf, size_t len), (r, status, buf, len))

/* The close callback: the handle is gone before the program's callback
 * runs (it usually frees the memory, which a new handle may then reuse). */
TRAMPOLINE static void tr_close(uv_handle_t *h) {
  struct loopsan_obj o;
  if (LOOPSAN_UNLIKELY(loopsan__obj_take(h, &o) != 0))
    return;
  uv_close_cb cb = (uv_close_cb)o.cb[LOOPSAN_SLOT_CLOSE];
  if (cb) {
    struct loopsan_dispatch d;
    loopsan__dispatch_begin(&d, o.id, (void *)cb, LOOPSAN_SLOT_CLOSE);
    cb(h);
    loopsan__dispatch_end(&d);
  }
  loopsan__record_op(o.id, LOOPSAN_OP_CLOSED, (void *)cb, 0, 0);
}

/* ---- loops --------------------------------------------------------------- */

DECLARE_REAL(uv_loop_init);
DECLARE_REAL(uv_loop_new);
DECLARE_REAL(uv_default_loop);
DECLARE_REAL(uv_run);
DECLARE_REAL(uv_loop_close);
DECLARE_REAL(uv_loop_delete);

LOOPSAN_INTERPOSE int uv_loop_init(uv_loop_t *loop) {
  if (!RESOLVE(uv_loop_init))
    return UV_ENOSYS;
  int rc = REAL(uv_loop_init)(loop);
  if (rc == 0 && from_program(CALLER))
    forget_loop(loop), loopsan__record_new(loop, LOOPSAN_LIB_UV, T_LOOP, 0, 0, NULL);
  return rc;
}

LOOPSAN_INTERPOSE uv_loop_t *uv_loop_new(void) {
  if (!RESOLVE(uv_loop_new))
    return NULL;
  uv_loop_t *loop = REAL(uv_loop_new)();
  if (loop && from_program(CALLER))
    forget_loop(loop), loopsan__record_new(loop, LOOPSAN_LIB_UV, T_LOOP, 0, 0, NULL);
  return loop;
}

LOOPSAN_INTERPOSE uv_loop_t *uv_default_loop(void) {
  if (!RESOLVE(uv_default_loop))
    return NULL;
  uv_loop_t *loop = REAL(uv_default_loop)();
  struct loopsan_obj o;
  if (loop && from_program(CALLER) && !loopsan__obj_get(loop, &o))
    forget_loop(loop), loopsan__record_new(loop, LOOPSAN_LIB_UV, T_LOOP, 0, LOOPSAN_OBJF_DEFAULT_LOOP, NULL);
  return loop;
}

LOOPSAN_INTERPOSE int uv_run(uv_loop_t *loop, uv_run_mode mode) {
  if (!RESOLVE(uv_run))
    return 0;
  if (from_program(CALLER)) {
    struct loopsan_obj o;
    void *ref = loopsan__obj_get(loop, &o);
    if (ref && !loopsan__obj_state_set(ref, LOOPSAN_STATE_RAN))
      loopsan__record_op(o.id, LOOPSAN_OP_RUN, NULL, (uint32_t)mode, 0);
  }
  return REAL(uv_run)(loop, mode);
}

LOOPSAN_INTERPOSE int uv_loop_close(uv_loop_t *loop) {
  if (!RESOLVE(uv_loop_close))
    return UV_ENOSYS;
  int rc = REAL(uv_loop_close)(loop);
  struct loopsan_obj o;
  if (from_program(CALLER) && loopsan__obj_get(loop, &o)) {
    if (rc == 0) {
      forget_loop(loop);
      loopsan__obj_take(loop, &o);
      loopsan__record_op(o.id, LOOPSAN_OP_CLOSED, NULL, 0, 1);
    } else {
      loopsan__record_api_error(o.id, LOOPSAN_LIB_UV, "uv_loop_close", rc);
    }
  }
  return rc;
}

LOOPSAN_INTERPOSE void uv_loop_delete(uv_loop_t *loop) {
  if (!RESOLVE(uv_loop_delete))
    return;
  struct loopsan_obj o;
  forget_loop(loop);
  if (from_program(CALLER) && loopsan__obj_take(loop, &o) == 0)
    loopsan__record_op(o.id, LOOPSAN_OP_CLOSED, NULL, 0, 1);
  REAL(uv_loop_delete)(loop);
}

/* ---- handle initialisation ----------------------------------------------- */

#define HANDLE_INIT(fn, type, params, args, loop_arg, handle_arg)          \
  DECLARE_REAL(fn);                                                         \
  LOOPSAN_INTERPOSE int fn params {                                         \
    if (!RESOLVE(fn))                                                       \
      return UV_ENOSYS;                                                     \
    int rc = REAL(fn) args;                                                 \
    if (rc == 0 && from_program(CALLER))                                    \
      handle_new(handle_arg, type, loop_arg);                               \
    return rc;                                                              \
  }

HANDLE_INIT(uv_timer_init, T_TIMER, (uv_loop_t * l, uv_timer_t *h), (l, h), l, h)
HANDLE_INIT(uv_idle_init, T_IDLE, (uv_loop_t * l, uv_idle_t *h), (l, h), l, h)
HANDLE_INIT(uv_prepare_init, T_PREPARE, (uv_loop_t * l, uv_prepare_t *h), (l, h), l, h)
HANDLE_INIT(uv_check_init, T_CHECK, (uv_loop_t * l, uv_check_t *h), (l, h), l, h)
HANDLE_INIT(uv_tcp_init, T_TCP, (uv_loop_t * l, uv_tcp_t *h), (l, h), l, h)
HANDLE_INIT(uv_tcp_init_ex, T_TCP, (uv_loop_t * l, uv_tcp_t *h, unsigned int f), (l, h, f), l, h)
HANDLE_INIT(uv_udp_init, T_UDP, (uv_loop_t * l, uv_udp_t *h), (l, h), l, h)
HANDLE_INIT(uv_udp_init_ex, T_UDP, (uv_loop_t * l, uv_udp_t *h, unsigned int f), (l, h, f), l, h)
HANDLE_INIT(uv_pipe_init, T_PIPE, (uv_loop_t * l, uv_pipe_t *h, int ipc), (l, h, ipc), l, h)
HANDLE_INIT(uv_tty_init, T_TTY, (uv_loop_t * l, uv_tty_t *h, uv_file fd, int readable),
            (l, h, fd, readable), l, h)
HANDLE_INIT(uv_poll_init, T_POLL, (uv_loop_t * l, uv_poll_t *h, int fd), (l, h, fd), l, h)
HANDLE_INIT(uv_poll_init_socket, T_POLL, (uv_loop_t * l, uv_poll_t *h, uv_os_sock_t s), (l, h, s), l, h)
HANDLE_INIT(uv_signal_init, T_SIGNAL, (uv_loop_t * l, uv_signal_t *h), (l, h), l, h)
HANDLE_INIT(uv_fs_event_init, T_FS_EVENT, (uv_loop_t * l, uv_fs_event_t *h), (l, h), l, h)
HANDLE_INIT(uv_fs_poll_init, T_FS_POLL, (uv_loop_t * l, uv_fs_poll_t *h), (l, h), l, h)

/* An async handle is active from its init: init is also its start. */
DECLARE_REAL(uv_async_init);
LOOPSAN_INTERPOSE int uv_async_init(uv_loop_t *l, uv_async_t *h, uv_async_cb cb) {
  if (!RESOLVE(uv_async_init))
    return UV_ENOSYS;
  if (!from_program(CALLER))
    return REAL(uv_async_init)(l, h, cb);
  handle_new(h, T_ASYNC, l);
  void *ref = cb ? handle_arm(h, LOOPSAN_SLOT_MAIN, (void *)cb, (void *)tr_async) : NULL;
  int rc = REAL(uv_async_init)(l, h, ref ? tr_async : cb);
  handle_started(ref, h, rc, "uv_async_init", 0);
  return rc;
}

/* uv_spawn initialises and starts a process handle; the exit callback sits
 * in the options, which are copied, never modified. */
DECLARE_REAL(uv_spawn);
LOOPSAN_INTERPOSE int uv_spawn(uv_loop_t *l, uv_process_t *h, const uv_process_options_t *options) {
  if (!RESOLVE(uv_spawn))
    return UV_ENOSYS;
  if (!from_program(CALLER) || !options)
    return REAL(uv_spawn)(l, h, options);
  handle_new(h, T_PROCESS, l);
  uv_process_options_t copy = *options;
  void *ref = NULL;
  if (copy.exit_cb && (ref = handle_arm(h, LOOPSAN_SLOT_MAIN, (void *)copy.exit_cb, (void *)tr_exit)))
    copy.exit_cb = tr_exit;
  int rc = REAL(uv_spawn)(l, h, &copy);
  if (!ref) {
    struct loopsan_obj o;
    ref = loopsan__obj_get(h, &o);
  }
  handle_started(ref, h, rc, "uv_spawn", LOOPSAN_START_ONESHOT);
  return rc;
}

/* ---- start / stop ------------------------------------------------------------ */

/* Start functions: CB is the callback parameter, TRAMP its trampoline. */
#define HANDLE_START(fn, params, args_real, h, cb, tramp, flags)                 \
  DECLARE_REAL(fn);                                                               \
  LOOPSAN_INTERPOSE int fn params {                                               \
    if (!RESOLVE(fn))                                                             \
      return UV_ENOSYS;                                                           \
    void *ref;                                                                    \
    if (!from_program(CALLER) || !cb ||                                           \
        !(ref = handle_arm(h, LOOPSAN_SLOT_MAIN, (void *)cb, (void *)tramp)))     \
      return REAL(fn) args_real(cb);                                              \
    int rc = REAL(fn) args_real(tramp);                                           \
    handle_started(ref, h, rc, #fn, flags);                                       \
    return rc;                                                                    \
  }

#define A_TIMER(c) (h, c, timeout, repeat)
#define A_H_CB(c) (h, c)
#define A_POLL(c) (h, events, c)
#define A_SIGNAL(c) (h, c, signum)
#define A_PATH(c) (h, c, path, x)
#define A_LISTEN(c) (s, backlog, c)
HANDLE_START(uv_timer_start, (uv_timer_t * h, uv_timer_cb cb, uint64_t timeout, uint64_t repeat),
             A_TIMER, h, cb, tr_timer,
             LOOPSAN_START_SCHEDULED | (repeat ? 0u : LOOPSAN_START_ONESHOT))
HANDLE_START(uv_idle_start, (uv_idle_t * h, uv_idle_cb cb), A_H_CB, h, cb, tr_idle, 0)
HANDLE_START(uv_prepare_start, (uv_prepare_t * h, uv_prepare_cb cb), A_H_CB, h, cb, tr_prepare, 0)
HANDLE_START(uv_check_start, (uv_check_t * h, uv_check_cb cb), A_H_CB, h, cb, tr_check, 0)
HANDLE_START(uv_poll_start, (uv_poll_t * h, int events, uv_poll_cb cb), A_POLL, h, cb, tr_poll, 0)
HANDLE_START(uv_signal_start, (uv_signal_t * h, uv_signal_cb cb, int signum), A_SIGNAL, h, cb,
             tr_signal, 0)
HANDLE_START(uv_signal_start_oneshot, (uv_signal_t * h, uv_signal_cb cb, int signum), A_SIGNAL, h,
             cb, tr_signal, LOOPSAN_START_ONESHOT)
HANDLE_START(uv_fs_event_start,
             (uv_fs_event_t * h, uv_fs_event_cb cb, const char *path, unsigned int x), A_PATH, h,
             cb, tr_fs_event, 0)
HANDLE_START(uv_fs_poll_start, (uv_fs_poll_t * h, uv_fs_poll_cb cb, const char *path, unsigned int x),
             A_PATH, h, cb, tr_fs_poll, 0)
HANDLE_START(uv_listen, (uv_stream_t * s, int backlog, uv_connection_cb cb), A_LISTEN, s, cb,
             tr_connection, 0)

/* Reading arms two callbacks: allocation and the read itself. */
#define HANDLE_READ_START(fn, type, read_type, tr_recv)                                     \
  DECLARE_REAL(fn);                                                                         \
  LOOPSAN_INTERPOSE int fn(type *h, uv_alloc_cb alloc_cb, read_type read_cb) {              \
    if (!RESOLVE(fn))                                                                       \
      return UV_ENOSYS;                                                                     \
    void *ref;                                                                              \
    if (!from_program(CALLER) || !alloc_cb || !read_cb ||                                   \
        !(ref = handle_arm(h, LOOPSAN_SLOT_MAIN, (void *)read_cb, (void *)tr_recv)))        \
      return REAL(fn)(h, alloc_cb, read_cb);                                                \
    if ((void *)alloc_cb != (void *)tr_alloc)                                               \
      loopsan__obj_set_cb(ref, LOOPSAN_SLOT_ALLOC, (void *)alloc_cb);                       \
    int rc = REAL(fn)(h, tr_alloc, tr_recv);                                                \
    handle_started(ref, h, rc, #fn, 0);                                                     \
    return rc;                                                                              \
  }
HANDLE_READ_START(uv_read_start, uv_stream_t, uv_read_cb, tr_read)
HANDLE_READ_START(uv_udp_recv_start, uv_udp_t, uv_udp_recv_cb, tr_udp_recv)

#define HANDLE_STOP(fn, type)                                          \
  DECLARE_REAL(fn);                                                    \
  LOOPSAN_INTERPOSE int fn(type *h) {                                  \
    if (!RESOLVE(fn))                                                  \
      return UV_ENOSYS;                                                \
    int rc = REAL(fn)(h);                                              \
    struct loopsan_obj o;                                              \
    if (from_program(CALLER) && loopsan__obj_get(h, &o))               \
      loopsan__record_op(o.id, LOOPSAN_OP_STOP, NULL, 0, 0);           \
    return rc;                                                         \
  }
HANDLE_STOP(uv_timer_stop, uv_timer_t)
HANDLE_STOP(uv_idle_stop, uv_idle_t)
HANDLE_STOP(uv_prepare_stop, uv_prepare_t)
HANDLE_STOP(uv_check_stop, uv_check_t)
HANDLE_STOP(uv_poll_stop, uv_poll_t)
HANDLE_STOP(uv_signal_stop, uv_signal_t)
HANDLE_STOP(uv_fs_event_stop, uv_fs_event_t)
HANDLE_STOP(uv_fs_poll_stop, uv_fs_poll_t)
HANDLE_STOP(uv_read_stop, uv_stream_t)
HANDLE_STOP(uv_udp_recv_stop, uv_udp_t)

/* uv_timer_again re-arms a repeating timer with its current callback (our
 * trampoline) through uv_timer_start, which passes through as libuv's own
 * call: here it is only recorded. */
DECLARE_REAL(uv_timer_again);
LOOPSAN_INTERPOSE int uv_timer_again(uv_timer_t *h) {
  if (!RESOLVE(uv_timer_again))
    return UV_ENOSYS;
  int rc = REAL(uv_timer_again)(h);
  struct loopsan_obj o;
  void *ref;
  if (rc == 0 && from_program(CALLER) && h->repeat && (ref = loopsan__obj_get(h, &o))) {
    loopsan__obj_state_clear(ref, LOOPSAN_STATE_FIRED);
    loopsan__record_op(o.id, LOOPSAN_OP_START, o.cb[LOOPSAN_SLOT_MAIN], LOOPSAN_START_SCHEDULED, 0);
  }
  return rc;
}

/* Other uses that count as putting a handle to work. */
#define HANDLE_USE(fn, params, args, h)                    \
  DECLARE_REAL(fn);                                        \
  LOOPSAN_INTERPOSE int fn params {                        \
    if (!RESOLVE(fn))                                      \
      return UV_ENOSYS;                                    \
    int rc = REAL(fn) args;                                \
    if (from_program(CALLER))                              \
      handle_used(h);                                      \
    return rc;                                             \
  }
HANDLE_USE(uv_tcp_bind, (uv_tcp_t * h, const struct sockaddr *a, unsigned int f), (h, a, f), h)
HANDLE_USE(uv_tcp_open, (uv_tcp_t * h, uv_os_sock_t s), (h, s), h)
HANDLE_USE(uv_pipe_bind, (uv_pipe_t * h, const char *name), (h, name), h)
HANDLE_USE(uv_pipe_open, (uv_pipe_t * h, uv_file f), (h, f), h)
HANDLE_USE(uv_udp_bind, (uv_udp_t * h, const struct sockaddr *a, unsigned int f), (h, a, f), h)
HANDLE_USE(uv_udp_open, (uv_udp_t * h, uv_os_sock_t s), (h, s), h)
HANDLE_USE(uv_udp_connect, (uv_udp_t * h, const struct sockaddr *a), (h, a), h)
HANDLE_USE(uv_try_write, (uv_stream_t * h, const uv_buf_t b[], unsigned int n), (h, b, n), h)
HANDLE_USE(uv_udp_try_send,
           (uv_udp_t * h, const uv_buf_t b[], unsigned int n, const struct sockaddr *a),
           (h, b, n, a), h)
HANDLE_USE(uv_tty_set_mode, (uv_tty_t * h, uv_tty_mode_t mode), (h, mode), h)
HANDLE_USE(uv_tty_get_winsize, (uv_tty_t * h, int *width, int *height), (h, width, height), h)

DECLARE_REAL(uv_accept);
LOOPSAN_INTERPOSE int uv_accept(uv_stream_t *server, uv_stream_t *client) {
  if (!RESOLVE(uv_accept))
    return UV_ENOSYS;
  int rc = REAL(uv_accept)(server, client);
  if (rc == 0 && from_program(CALLER))
    handle_used(client);
  return rc;
}

/* ---- close ----------------------------------------------------------------- */

DECLARE_REAL(uv_close);
LOOPSAN_INTERPOSE void uv_close(uv_handle_t *h, uv_close_cb cb) {
  if (!RESOLVE(uv_close))
    return;
  struct loopsan_obj o;
  void *ref;
  if (!from_program(CALLER) || !(ref = loopsan__obj_get(h, &o))) {
    REAL(uv_close)(h, cb);
    return;
  }
  /* Our trampoline even without a program callback: it tells us when the
   * close completes. libuv then calls it where it would have done nothing. */
  loopsan__obj_set_cb(ref, LOOPSAN_SLOT_CLOSE, (void *)cb);
  loopsan__record_op(o.id, LOOPSAN_OP_CLOSE, (void *)cb, 0, 0);
  REAL(uv_close)(h, tr_close);
}

/* uv_tcp_close_reset closes through libuv's own call to uv_close, which
 * passes through: the close is recorded here. */
DECLARE_REAL(uv_tcp_close_reset);
LOOPSAN_INTERPOSE int uv_tcp_close_reset(uv_tcp_t *h, uv_close_cb cb) {
  if (!RESOLVE(uv_tcp_close_reset))
    return UV_ENOSYS;
  struct loopsan_obj o;
  void *ref;
  if (!from_program(CALLER) || !(ref = loopsan__obj_get(h, &o)))
    return REAL(uv_tcp_close_reset)(h, cb);
  int rc = REAL(uv_tcp_close_reset)(h, tr_close);
  if (rc == 0) {
    loopsan__obj_set_cb(ref, LOOPSAN_SLOT_CLOSE, (void *)cb);
    loopsan__record_op(o.id, LOOPSAN_OP_CLOSE, (void *)cb, 0, 0);
  }
  return rc;
}

/* ---- requests ----------------------------------------------------------------- */

#define STREAM_REQUEST(fn, type, params, args_real, req, stream, cb, tramp)       \
  DECLARE_REAL(fn);                                                               \
  LOOPSAN_INTERPOSE int fn params {                                               \
    if (!RESOLVE(fn))                                                             \
      return UV_ENOSYS;                                                           \
    if (!from_program(CALLER) || !cb)                                             \
      return REAL(fn) args_real(cb);                                              \
    handle_used(stream);                                                          \
    void *ref = request_begin(req, type, stream_loop_id(stream), (void *)cb);     \
    if (!ref)                                                                     \
      return REAL(fn) args_real(cb);                                              \
    int rc = REAL(fn) args_real(tramp);                                           \
    request_submitted(ref, req, rc, #fn);                                         \
    return rc;                                                                    \
  }

#define A_WRITE(c) (req, s, bufs, n, c)
#define A_WRITE2(c) (req, s, bufs, n, send, c)
#define A_SHUTDOWN(c) (req, s, c)
#define A_TCP_CONNECT(c) (req, s, addr, c)
#define A_UDP_SEND(c) (req, s, bufs, n, addr, c)
STREAM_REQUEST(uv_write, T_WRITE,
               (uv_write_t * req, uv_stream_t *s, const uv_buf_t bufs[], unsigned int n, uv_write_cb cb),
               A_WRITE, req, s, cb, tr_write)
STREAM_REQUEST(uv_write2, T_WRITE,
               (uv_write_t * req, uv_stream_t *s, const uv_buf_t bufs[], unsigned int n,
                uv_stream_t *send, uv_write_cb cb),
               A_WRITE2, req, s, cb, tr_write)
STREAM_REQUEST(uv_shutdown, T_SHUTDOWN, (uv_shutdown_t * req, uv_stream_t *s, uv_shutdown_cb cb),
               A_SHUTDOWN, req, s, cb, tr_shutdown)
STREAM_REQUEST(uv_tcp_connect, T_CONNECT,
               (uv_connect_t * req, uv_tcp_t *s, const struct sockaddr *addr, uv_connect_cb cb),
               A_TCP_CONNECT, req, s, cb, tr_connect)
STREAM_REQUEST(uv_udp_send, T_UDP_SEND,
               (uv_udp_send_t * req, uv_udp_t *s, const uv_buf_t bufs[], unsigned int n,
                const struct sockaddr *addr, uv_udp_send_cb cb),
               A_UDP_SEND, req, s, cb, tr_udp_send)

/* uv_pipe_connect returns nothing: failures reach the callback. */
DECLARE_REAL(uv_pipe_connect);
LOOPSAN_INTERPOSE void uv_pipe_connect(uv_connect_t *req, uv_pipe_t *s, const char *name,
                                       uv_connect_cb cb) {
  if (!RESOLVE(uv_pipe_connect))
    return;
  if (!from_program(CALLER) || !cb) {
    REAL(uv_pipe_connect)(req, s, name, cb);
    return;
  }
  handle_used(s);
  void *ref = request_begin(req, T_CONNECT, stream_loop_id(s), (void *)cb);
  if (!ref) {
    REAL(uv_pipe_connect)(req, s, name, cb);
    return;
  }
  request_submitted(ref, req, 0, "uv_pipe_connect");
  REAL(uv_pipe_connect)(req, s, name, tr_connect);
}

/* Requests on a loop, whose callback argument may be NULL (synchronous). */
#define LOOP_REQUEST(fn, type, params, args_real, loop, req, cb, tramp)            \
  DECLARE_REAL(fn);                                                               \
  LOOPSAN_INTERPOSE int fn params {                                               \
    if (!RESOLVE(fn))                                                             \
      return UV_ENOSYS;                                                           \
    void *ref;                                                                    \
    if (!cb || !from_program(CALLER) ||                                           \
        !(ref = request_begin(req, type, loop_id(loop), (void *)cb)))             \
      return REAL(fn) args_real(cb);                                              \
    int rc = REAL(fn) args_real(tramp);                                           \
    request_submitted(ref, req, rc, #fn);                                         \
    return rc;                                                                    \
  }

#define A_GAI(c) (loop, req, c, node, service, hints)
#define A_GNI(c) (loop, req, c, addr, flags)
#define A_RANDOM(c) (loop, req, buf, len, flags, c)
LOOP_REQUEST(uv_getaddrinfo, T_GETADDRINFO,
             (uv_loop_t * loop, uv_getaddrinfo_t *req, uv_getaddrinfo_cb cb, const char *node,
              const char *service, const struct addrinfo *hints),
             A_GAI, loop, req, cb, tr_getaddrinfo)
LOOP_REQUEST(uv_getnameinfo, T_GETNAMEINFO,
             (uv_loop_t * loop, uv_getnameinfo_t *req, uv_getnameinfo_cb cb,
              const struct sockaddr *addr, int flags),
             A_GNI, loop, req, cb, tr_getnameinfo)
LOOP_REQUEST(uv_random, T_RANDOM,
             (uv_loop_t * loop, uv_random_t *req, void *buf, size_t len, unsigned flags,
              uv_random_cb cb),
             A_RANDOM, loop, req, cb, tr_random)

/* The after-work callback may be NULL; the trampoline is passed anyway so
 * that completion is seen (libuv then calls it where it would do nothing). */
DECLARE_REAL(uv_queue_work);
LOOPSAN_INTERPOSE int uv_queue_work(uv_loop_t *loop, uv_work_t *req, uv_work_cb work_cb,
                                    uv_after_work_cb after_cb) {
  if (!RESOLVE(uv_queue_work))
    return UV_ENOSYS;
  void *ref;
  if (!from_program(CALLER) || !(ref = request_begin(req, T_WORK, loop_id(loop), (void *)after_cb)))
    return REAL(uv_queue_work)(loop, req, work_cb, after_cb);
  int rc = REAL(uv_queue_work)(loop, req, work_cb, tr_after_work);
  request_submitted(ref, req, rc, "uv_queue_work");
  return rc;
}

/* Every uv_fs_* with a callback: (name, parameters after loop and req,
 * the same as arguments). A NULL callback makes the call synchronous. */
#define UV_FS_FUNCTIONS(X)                                                                       \
  X(uv_fs_close, (uv_file file), (file))                                                         \
  X(uv_fs_open, (const char *path, int flags, int mode), (path, flags, mode))                    \
  X(uv_fs_read, (uv_file file, const uv_buf_t bufs[], unsigned int n, int64_t off),             \
    (file, bufs, n, off))                                                                        \
  X(uv_fs_unlink, (const char *path), (path))                                                    \
  X(uv_fs_write, (uv_file file, const uv_buf_t bufs[], unsigned int n, int64_t off),            \
    (file, bufs, n, off))                                                                        \
  X(uv_fs_copyfile, (const char *path, const char *new_path, int flags), (path, new_path, flags)) \
  X(uv_fs_mkdir, (const char *path, int mode), (path, mode))                                     \
  X(uv_fs_mkdtemp, (const char *tpl), (tpl))                                                     \
  X(uv_fs_mkstemp, (const char *tpl), (tpl))                                                     \
  X(uv_fs_rmdir, (const char *path), (path))                                                     \
  X(uv_fs_scandir, (const char *path, int flags), (path, flags))                                 \
  X(uv_fs_opendir, (const char *path), (path))                                                   \
  X(uv_fs_readdir, (uv_dir_t * dir), (dir))                                                      \
  X(uv_fs_closedir, (uv_dir_t * dir), (dir))                                                     \
  X(uv_fs_stat, (const char *path), (path))                                                      \
  X(uv_fs_fstat, (uv_file file), (file))                                                         \
  X(uv_fs_rename, (const char *path, const char *new_path), (path, new_path))                    \
  X(uv_fs_fsync, (uv_file file), (file))                                                         \
  X(uv_fs_fdatasync, (uv_file file), (file))                                                     \
  X(uv_fs_ftruncate, (uv_file file, int64_t off), (file, off))                                   \
  X(uv_fs_sendfile, (uv_file out, uv_file in, int64_t off, size_t len), (out, in, off, len))     \
  X(uv_fs_access, (const char *path, int mode), (path, mode))                                    \
  X(uv_fs_chmod, (const char *path, int mode), (path, mode))                                     \
  X(uv_fs_utime, (const char *path, double at, double mt), (path, at, mt))                       \
  X(uv_fs_futime, (uv_file file, double at, double mt), (file, at, mt))                          \
  X(uv_fs_lutime, (const char *path, double at, double mt), (path, at, mt))                      \
  X(uv_fs_lstat, (const char *path), (path))                                                     \
  X(uv_fs_link, (const char *path, const char *new_path), (path, new_path))                      \
  X(uv_fs_symlink, (const char *path, const char *new_path, int flags), (path, new_path, flags))  \
  X(uv_fs_readlink, (const char *path), (path))                                                  \
  X(uv_fs_realpath, (const char *path), (path))                                                  \
  X(uv_fs_fchmod, (uv_file file, int mode), (file, mode))                                        \
  X(uv_fs_chown, (const char *path, uv_uid_t u, uv_gid_t g), (path, u, g))                       \
  X(uv_fs_fchown, (uv_file file, uv_uid_t u, uv_gid_t g), (file, u, g))                          \
  X(uv_fs_lchown, (const char *path, uv_uid_t u, uv_gid_t g), (path, u, g))                      \
  X(uv_fs_statfs, (const char *path), (path))

#define UNPAREN(...) __VA_ARGS__
#define FS_WRAPPER(fn, params, args)                                                      \
  DECLARE_REAL(fn);                                                                       \
  LOOPSAN_INTERPOSE int fn(uv_loop_t *loop, uv_fs_t *req, UNPAREN params, uv_fs_cb cb) {  \
    if (!RESOLVE(fn))                                                                     \
      return UV_ENOSYS;                                                                   \
    void *ref;                                                                            \
    if (!cb || !from_program(CALLER) || !(ref = request_begin(req, T_FS, loop_id(loop), (void *)cb))) \
      return REAL(fn)(loop, req, UNPAREN args, cb);                                       \
    int rc = REAL(fn)(loop, req, UNPAREN args, tr_fs);                                    \
    request_submitted(ref, req, rc, #fn);                                                 \
    return rc;                                                                            \
  }
UV_FS_FUNCTIONS(FS_WRAPPER)
