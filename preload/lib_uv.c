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
 * uv_async_init for its threadpool): those calls pass straight through
 * (from_program() in lib_uv_internal.h tells them apart by return address:
 * a direct call from libuv's code, or libuv tail-calling itself from a
 * call the shim made; a program callback that tail-called the API from a
 * trampoline or a uv_walk callback is the program's). That is what keeps
 * libuv's internal handles out of every report, and what lets
 * uv_timer_again restart a timer with the trampoline already in place. */
#include "common/evidence.h"
#include "preload/lib_uv_internal.h"

LOOPSAN_DEFINE_ADAPTER(loopsan__uv_adapter, LOOPSAN_LIB_UV, UV_OBJECT_TYPES);

struct loopsan_library_ref loopsan__uv_lib = {.soname_prefix = "libuv.so"};

/* ---- trampolines --------------------------------------------------------- */

/* A handle callback: look up, mark the first firing since start, time. */
DECLARE_REAL(uv_is_closing);

/* Every uv_* call but uv_async_send is for the loop's own thread: one on
 * a handle of a loop another thread is running is a wrong-thread. */
#define CHECK_THREAD(h, fn) \
  loopsan__check_thread(((const uv_handle_t *)(h))->loop, (h), LOOPSAN_LIB_UV, (fn))

#define HANDLE_TRAMPOLINE(name, slot, cb_type, handle_param, params, args)                   \
  TRAMPOLINE static void name params {                                                       \
    struct loopsan_obj_cb o;                                                                 \
    void *ref = loopsan__obj_dispatch(handle_param, slot, &o);                               \
    if (LOOPSAN_UNLIKELY(!ref || !o.cb))                                                     \
      return;                                                                                \
    if ((slot) == LOOPSAN_SLOT_MAIN && LOOPSAN_UNLIKELY(!(o.state & LOOPSAN_STATE_FIRED))) { \
      loopsan__obj_state_set(ref, LOOPSAN_STATE_FIRED);                                      \
      loopsan__record_op(o.id, LOOPSAN_OP_FIRED, o.cb, 0, 0);                                \
    }                                                                                        \
    LOOPSAN_TIMED_CALL_FOUND(o, slot, LOOPSAN_LIB_UV, ((cb_type)o.cb) args);                 \
  }

HANDLE_TRAMPOLINE(tr_timer, LOOPSAN_SLOT_MAIN, uv_timer_cb, h, (uv_timer_t * h), (h))
HANDLE_TRAMPOLINE(tr_idle, LOOPSAN_SLOT_MAIN, uv_idle_cb, h, (uv_idle_t * h), (h))
HANDLE_TRAMPOLINE(tr_prepare, LOOPSAN_SLOT_MAIN, uv_prepare_cb, h, (uv_prepare_t * h), (h))
HANDLE_TRAMPOLINE(tr_check, LOOPSAN_SLOT_MAIN, uv_check_cb, h, (uv_check_t * h), (h))
HANDLE_TRAMPOLINE(tr_async, LOOPSAN_SLOT_MAIN, uv_async_cb, h, (uv_async_t * h), (h))
HANDLE_TRAMPOLINE(tr_connection, LOOPSAN_SLOT_MAIN, uv_connection_cb, s,
                  (uv_stream_t * s, int status), (s, status))
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
HANDLE_TRAMPOLINE(tr_poll, LOOPSAN_SLOT_MAIN, uv_poll_cb, h,
                  (uv_poll_t * h, int status, int events), (h, status, events))
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

/* ---- misuse: handles closed, and handles initialised twice ---------------
 *
 * The last handles closed, by address (direct-mapped: a newer one takes an
 * older one's slot): a later call on one that finds no handle there in the
 * object table is a use after close, reported with the close's call site.
 * Read only when a call finds no handle (never on the common path); a race
 * between two threads closing and using handles at once can only lose a
 * report. */
static struct loopsan_gone closed_ring[512];

/* The program calls FN on H, which is no handle in the table: one whose
 * close completed is a use after close. Returns whether it was. */
static int check_closed(const void *h, const char *fn) {
  struct loopsan_gone *g = loopsan__gone_find(LOOPSAN_GONE_SLOT(closed_ring, h), h);
  if (LOOPSAN_LIKELY(!g))
    return 0;
  loopsan__gone_misuse(g, h, LOOPSAN_LIB_UV, LOOPSAN_MISUSE_USE_AFTER_CLOSE, fn);
  return 1;
}

/* The program initialised H (of TYPE, on LOOP): a new handle. One still
 * open there before (initialised, never closed) was in libuv's list of
 * handles already, and libuv has just inserted it again: a misuse, found
 * by the table's own lookup (no second one on every init). */
static void handle_inited(const void *h, uint8_t type, const void *loop, const char *fn) {
  struct loopsan_obj old;
  loopsan__record_new_replacing(h, LOOPSAN_LIB_UV, type, loopsan__loop_id(loop), 0, NULL, &old);
  if (LOOPSAN_LIKELY(!old.id) || old.library != LOOPSAN_LIB_UV || old.type < T_TIMER ||
      old.type > T_FS_POLL)
    return;
  struct loopsan_misuse_detail d = {.type = old.type, .address = h};
  loopsan__record_misuse_ex(old.id, LOOPSAN_LIB_UV, LOOPSAN_MISUSE_REINIT_OPEN, fn, &d);
}

/* The close callback: the handle is gone before the program's callback
 * runs (it usually frees the memory, which a new handle may then reuse). */
TRAMPOLINE static void tr_close(uv_handle_t *h) {
  struct loopsan_obj o;
  if (LOOPSAN_UNLIKELY(loopsan__obj_take(h, &o) != 0))
    return;
  struct loopsan_gone *g = LOOPSAN_GONE_SLOT(closed_ring, h);
  if (atomic_load(&g->addr) == (uintptr_t)h) /* closing: now closed */
    atomic_store(&g->done, 1);
  uv_close_cb cb = (uv_close_cb)o.cb[LOOPSAN_SLOT_CLOSE];
  if (cb) {
    LOOPSAN_TIMED_CALL(o.id, (void *)cb, LOOPSAN_SLOT_CLOSE, LOOPSAN_LIB_UV, cb(h));
  }
  loopsan__record_end(&o, LOOPSAN_OP_CLOSED, (void *)cb, 0, 0);
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
    loopsan__loop_new(loop, LOOPSAN_LIB_UV, T_LOOP, 0);
  return rc;
}

LOOPSAN_INTERPOSE uv_loop_t *uv_loop_new(void) {
  if (!RESOLVE(uv_loop_new))
    return NULL;
  uv_loop_t *loop = REAL(uv_loop_new)();
  if (loop && from_program(CALLER))
    loopsan__loop_new(loop, LOOPSAN_LIB_UV, T_LOOP, 0);
  return loop;
}

LOOPSAN_INTERPOSE uv_loop_t *uv_default_loop(void) {
  if (!RESOLVE(uv_default_loop))
    return NULL;
  uv_loop_t *loop = REAL(uv_default_loop)();
  struct loopsan_obj o;
  if (loop && from_program(CALLER) && !loopsan__obj_get(loop, &o))
    loopsan__loop_new(loop, LOOPSAN_LIB_UV, T_LOOP, LOOPSAN_OBJF_DEFAULT_LOOP);
  return loop;
}

LOOPSAN_INTERPOSE int uv_run(uv_loop_t *loop, uv_run_mode mode) {
  if (!RESOLVE(uv_run))
    return 0;
  if (from_program(CALLER))
    loopsan__loop_run(loop, (int)mode);
  LOOPSAN_LOOP_RUN(run, loop);
  int rc = REAL(uv_run)(loop, mode);
  LOOPSAN_LOOP_DONE(run);
  return rc;
}

LOOPSAN_INTERPOSE int uv_loop_close(uv_loop_t *loop) {
  if (!RESOLVE(uv_loop_close))
    return UV_ENOSYS;
  int rc = REAL(uv_loop_close)(loop);
  struct loopsan_obj o;
  if (from_program(CALLER) && loopsan__obj_get(loop, &o)) {
    if (rc == 0) {
      loopsan__loop_closed(loop, 1);
    } else {
      loopsan__record_api_error(o.id, LOOPSAN_LIB_UV, "uv_loop_close", rc,
                                LOOPSAN_APIERR_LOOP_CLOSE);
    }
  }
  return rc;
}

LOOPSAN_INTERPOSE void uv_loop_delete(uv_loop_t *loop) {
  if (!RESOLVE(uv_loop_delete))
    return;
  loopsan__loop_closed(loop, from_program(CALLER));
  REAL(uv_loop_delete)(loop);
}

/* ---- handle initialisation ----------------------------------------------- */

#define HANDLE_INIT(fn, type, params, args, loop_arg, handle_arg) \
  DECLARE_REAL(fn);                                               \
  LOOPSAN_INTERPOSE int fn params {                               \
    if (!RESOLVE(fn))                                             \
      return UV_ENOSYS;                                           \
    int rc = REAL(fn) args;                                       \
    if (rc == 0 && from_program(CALLER))                          \
      handle_inited(handle_arg, (uint8_t)(type), loop_arg, #fn);  \
    return rc;                                                    \
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
HANDLE_INIT(uv_poll_init_socket, T_POLL, (uv_loop_t * l, uv_poll_t *h, uv_os_sock_t s), (l, h, s),
            l, h)
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
  handle_inited(h, (uint8_t)(T_ASYNC), l, "uv_async_init");
  void *ref = loopsan__handle_arm(h, LOOPSAN_SLOT_MAIN, (void *)cb, (void *)tr_async);
  int rc = REAL(uv_async_init)(l, h, ref && cb ? tr_async : cb);
  loopsan__handle_started(ref, h, rc, "uv_async_init", 0);
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
  handle_inited(h, (uint8_t)(T_PROCESS), l, "uv_spawn");
  uv_process_options_t copy = *options;
  void *ref = NULL;
  if (copy.exit_cb &&
      (ref = loopsan__handle_arm(h, LOOPSAN_SLOT_MAIN, (void *)copy.exit_cb, (void *)tr_exit)))
    copy.exit_cb = tr_exit;
  int rc = REAL(uv_spawn)(l, h, &copy);
  if (!ref) {
    struct loopsan_obj o;
    ref = loopsan__obj_get(h, &o);
  }
  loopsan__handle_started(ref, h, rc, "uv_spawn", LOOPSAN_START_ONESHOT);
  return rc;
}

/* ---- start / stop ------------------------------------------------------------ */

/* Start functions: CB is the callback parameter, TRAMP its trampoline. */
#define HANDLE_START(fn, params, args_real, h, cb, tramp, flags)                                  \
  DECLARE_REAL(fn);                                                                               \
  LOOPSAN_INTERPOSE int fn params {                                                               \
    if (!RESOLVE(fn))                                                                             \
      return UV_ENOSYS;                                                                           \
    void *ref;                                                                                    \
    int prog = from_program(CALLER);                                                              \
    if (prog)                                                                                     \
      CHECK_THREAD(h, #fn);                                                                       \
    if (!prog || !(ref = loopsan__handle_arm(h, LOOPSAN_SLOT_MAIN, (void *)cb, (void *)tramp))) { \
      if (prog)                                                                                   \
        check_closed(h, #fn);                                                                     \
      return REAL(fn) args_real(cb);                                                              \
    }                                                                                             \
    /* A NULL callback is legal (uv_poll_start, uv_listen): still a start. */                     \
    int rc = cb ? REAL(fn) args_real(tramp) : REAL(fn) args_real(cb);                             \
    loopsan__handle_started(ref, h, rc, #fn, flags);                                              \
    return rc;                                                                                    \
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
HANDLE_START(uv_fs_poll_start,
             (uv_fs_poll_t * h, uv_fs_poll_cb cb, const char *path, unsigned int x), A_PATH, h, cb,
             tr_fs_poll, 0)
HANDLE_START(uv_listen, (uv_stream_t * s, int backlog, uv_connection_cb cb), A_LISTEN, s, cb,
             tr_connection, 0)

/* Reading arms two callbacks: allocation and the read itself. */
#define HANDLE_READ_START(fn, type, read_type, tr_recv)                                         \
  DECLARE_REAL(fn);                                                                             \
  LOOPSAN_INTERPOSE int fn(type *h, uv_alloc_cb alloc_cb, read_type read_cb) {                  \
    if (!RESOLVE(fn))                                                                           \
      return UV_ENOSYS;                                                                         \
    void *ref;                                                                                  \
    int prog = from_program(CALLER);                                                            \
    if (prog)                                                                                   \
      CHECK_THREAD(h, #fn);                                                                     \
    if (!prog || !alloc_cb || !read_cb ||                                                       \
        !(ref = loopsan__handle_arm(h, LOOPSAN_SLOT_MAIN, (void *)read_cb, (void *)tr_recv))) { \
      if (prog)                                                                                 \
        check_closed(h, #fn);                                                                   \
      return REAL(fn)(h, alloc_cb, read_cb);                                                    \
    }                                                                                           \
    if ((void *)alloc_cb != (void *)tr_alloc)                                                   \
      loopsan__obj_set_cb(ref, LOOPSAN_SLOT_ALLOC, (void *)alloc_cb);                           \
    int rc = REAL(fn)(h, tr_alloc, tr_recv);                                                    \
    loopsan__handle_started(ref, h, rc, #fn, 0);                                                \
    return rc;                                                                                  \
  }
HANDLE_READ_START(uv_read_start, uv_stream_t, uv_read_cb, tr_read)
HANDLE_READ_START(uv_udp_recv_start, uv_udp_t, uv_udp_recv_cb, tr_udp_recv)

#define HANDLE_STOP(fn, type)                                \
  DECLARE_REAL(fn);                                          \
  LOOPSAN_INTERPOSE int fn(type *h) {                        \
    if (!RESOLVE(fn))                                        \
      return UV_ENOSYS;                                      \
    int prog = from_program(CALLER);                         \
    if (prog)                                                \
      CHECK_THREAD(h, #fn);                                  \
    struct loopsan_obj o;                                    \
    int known = prog && loopsan__obj_get(h, &o);             \
    if (prog && !known)                                      \
      check_closed(h, #fn);                                  \
    int rc = REAL(fn)(h);                                    \
    if (known)                                               \
      loopsan__record_op(o.id, LOOPSAN_OP_STOP, NULL, 0, 0); \
    return rc;                                               \
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
  int prog = from_program(CALLER);
  if (prog)
    CHECK_THREAD(h, "uv_timer_again");
  int rc = REAL(uv_timer_again)(h);
  struct loopsan_obj o;
  void *ref;
  if (rc == 0 && prog && h->repeat && (ref = loopsan__obj_get(h, &o))) {
    loopsan__obj_state_clear(ref, LOOPSAN_STATE_FIRED);
    loopsan__record_op(o.id, LOOPSAN_OP_START, o.cb[LOOPSAN_SLOT_MAIN], LOOPSAN_START_SCHEDULED, 0);
  }
  return rc;
}

/* The program's call FN on H returned RC: H was put to work (a refused
 * call too: it was tried); an error is an API_ERROR (the analyzer keeps
 * those that say the call was wrong: UV_EINVAL, UV_EBADF, ...; not
 * UV_EAGAIN nor UV_EADDRINUSE). A handle gone is a use after close. */
static void handle_call(const void *h, int rc, const char *fn) {
  struct loopsan_obj o;
  void *ref = loopsan__obj_get(h, &o);
  if (!ref) {
    check_closed(h, fn);
    return;
  }
  if (!loopsan__obj_state_set(ref, LOOPSAN_STATE_USED))
    loopsan__record_op(o.id, LOOPSAN_OP_USE, NULL, 0, 0);
  if (rc < 0 && loopsan_uv_misuse_error(rc))
    loopsan__record_api_error(o.id, LOOPSAN_LIB_UV, fn, rc, 0);
}

/* Other uses that count as putting a handle to work. */
#define HANDLE_USE(fn, params, args, h) \
  DECLARE_REAL(fn);                     \
  LOOPSAN_INTERPOSE int fn params {     \
    if (!RESOLVE(fn))                   \
      return UV_ENOSYS;                 \
    int rc = REAL(fn) args;             \
    if (from_program(CALLER))           \
      handle_call(h, rc, #fn);          \
    return rc;                          \
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
  if (from_program(CALLER)) /* even refused (UV_EBUSY): the client was put to use */
    handle_call(client, rc, "uv_accept");
  return rc;
}

/* ---- close ----------------------------------------------------------------- */

DECLARE_REAL(uv_close);
LOOPSAN_INTERPOSE void uv_close(uv_handle_t *h, uv_close_cb cb) {
  if (!RESOLVE(uv_close))
    return;
  struct loopsan_obj o;
  void *ref;
  int prog = from_program(CALLER);
  if (prog)
    CHECK_THREAD(h, "uv_close");
  /* A second uv_close: libuv aborts on an assertion. Said, and the trace
   * written out, first. */
  if (prog && RESOLVE(uv_is_closing) && REAL(uv_is_closing)(h)) {
    void *known = loopsan__obj_get(h, &o);
    if (known || !check_closed(h, "uv_close")) { /* closing, or closed long ago */
      struct loopsan_gone *g = LOOPSAN_GONE_SLOT(closed_ring, h);
      struct loopsan_misuse_detail d = {.type = LOOPSAN_TYPE_UNKNOWN, .address = h};
      if (atomic_load(&g->addr) == (uintptr_t)h) /* where the first close was called */
        d.cause = loopsan__stack_of_call_site(g->site);
      loopsan__record_misuse_ex(known ? o.id : 0, LOOPSAN_LIB_UV, LOOPSAN_MISUSE_CLOSE_CLOSING,
                                "uv_close", &d);
    }
    REAL(uv_close)(h, cb);
    return;
  }
  if (!prog || !(ref = loopsan__obj_get(h, &o))) {
    REAL(uv_close)(h, cb);
    return;
  }
  /* Our trampoline even without a program callback: it tells us when the
   * close completes. libuv then calls it where it would have done nothing.
   * The close's stack is kept: a second close is reported with it. */
  loopsan__obj_set_cb(ref, LOOPSAN_SLOT_CLOSE, (void *)cb);
  uint32_t site = loopsan__stack_of_caller(CALLER);
  loopsan__record_op(o.id, LOOPSAN_OP_CLOSE, (void *)cb, 0, site > 1 ? (int)site : 0);
  loopsan__gone_put(LOOPSAN_GONE_SLOT(closed_ring, h), h, &o, CALLER, 0); /* closing */
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
