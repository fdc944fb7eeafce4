/* The libuv adapter, requests: one-shot operations whose callback runs
 * once (write, shutdown, connect, udp_send, getaddrinfo, getnameinfo,
 * random, queue_work, every uv_fs_* with a callback). A request leaves the
 * object table when its callback runs; what the callback does with the
 * request's memory (free it, reuse it for the next request) is its own. */
#include "preload/lib_uv_internal.h"

/* COMPLETE's argument holds 24 bits: errors are small negatives, byte
 * counts of fs requests are only "success". */
static inline int32_t clamp_status(ssize_t status) {
  if (status < -0x7fffff)
    status = -0x7fffff;
  if (status > 0x7fffff)
    status = 0x7fffff;
  return (int32_t)status;
}

/* A request callback: the request leaves the table before its callback
 * runs (the callback may free or reuse it); COMPLETE is recorded after it,
 * so that a slow callback's DISPATCH still finds its request alive. */
#define REQUEST_TRAMPOLINE(name, cb_type, req_param, status_expr, params, args) \
  TRAMPOLINE static void name params {                                          \
    struct loopsan_obj o;                                                       \
    if (LOOPSAN_UNLIKELY(loopsan__obj_take(req_param, &o) != 0))                \
      return;                                                                   \
    int32_t complete_status = clamp_status(status_expr);                        \
    if (o.cb[0]) {                                                              \
      LOOPSAN_TIMED_CALL(o.id, o.cb[0], LOOPSAN_SLOT_MAIN, LOOPSAN_LIB_UV,      \
                         ((cb_type)o.cb[0]) args);                              \
    }                                                                           \
    loopsan__record_end(&o, LOOPSAN_OP_COMPLETE, o.cb[0], complete_status, 0);  \
  }

REQUEST_TRAMPOLINE(tr_write, uv_write_cb, r, status, (uv_write_t * r, int status), (r, status))
REQUEST_TRAMPOLINE(tr_shutdown, uv_shutdown_cb, r, status, (uv_shutdown_t * r, int status),
                   (r, status))
REQUEST_TRAMPOLINE(tr_connect, uv_connect_cb, r, status, (uv_connect_t * r, int status),
                   (r, status))
REQUEST_TRAMPOLINE(tr_udp_send, uv_udp_send_cb, r, status, (uv_udp_send_t * r, int status),
                   (r, status))
REQUEST_TRAMPOLINE(tr_after_work, uv_after_work_cb, r, status, (uv_work_t * r, int status),
                   (r, status))
REQUEST_TRAMPOLINE(tr_getaddrinfo, uv_getaddrinfo_cb, r, status,
                   (uv_getaddrinfo_t * r, int status, struct addrinfo *res), (r, status, res))
REQUEST_TRAMPOLINE(tr_getnameinfo, uv_getnameinfo_cb, r, status,
                   (uv_getnameinfo_t * r, int status, const char *host, const char *service),
                   (r, status, host, service))
REQUEST_TRAMPOLINE(tr_fs, uv_fs_cb, r, r->result, (uv_fs_t * r), (r))
REQUEST_TRAMPOLINE(tr_random, uv_random_cb, r, status,
                   (uv_random_t * r, int status, void *buf, size_t len), (r, status, buf, len))

/* ---- requests ----------------------------------------------------------------- */

/* A request made without a callback (uv_write, uv_shutdown, uv_udp_send
 * allow it) still gets the trampoline, which then only records how it
 * ended: a failure nothing could see is an unobserved-error. */
#define STREAM_REQUEST(fn, type, params, args_real, req, stream, cb, tramp)             \
  DECLARE_REAL(fn);                                                                     \
  LOOPSAN_INTERPOSE int fn params {                                                     \
    if (!RESOLVE(fn))                                                                   \
      return UV_ENOSYS;                                                                 \
    if (!from_program(CALLER) || (!cb && (void *)tramp == (void *)tr_connect))          \
      return REAL(fn) args_real(cb);                                                    \
    uint64_t loop_id = loopsan__handle_used_loop(stream);                               \
    void *ref = loopsan__request_begin(req, LOOPSAN_LIB_UV, type, loop_id, (void *)cb); \
    if (!ref)                                                                           \
      return REAL(fn) args_real(cb);                                                    \
    int rc = REAL(fn) args_real(tramp);                                                 \
    loopsan__request_submitted(ref, req, rc, #fn);                                      \
    return rc;                                                                          \
  }

#define A_WRITE(c) (req, s, bufs, n, c)
#define A_WRITE2(c) (req, s, bufs, n, send, c)
#define A_SHUTDOWN(c) (req, s, c)
#define A_TCP_CONNECT(c) (req, s, addr, c)
#define A_UDP_SEND(c) (req, s, bufs, n, addr, c)
STREAM_REQUEST(uv_write, T_WRITE,
               (uv_write_t * req, uv_stream_t *s, const uv_buf_t bufs[], unsigned int n,
                uv_write_cb cb),
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
  void *ref = loopsan__request_begin(req, LOOPSAN_LIB_UV, T_CONNECT, loopsan__handle_used_loop(s),
                                     (void *)cb);
  if (!ref) {
    REAL(uv_pipe_connect)(req, s, name, cb);
    return;
  }
  loopsan__request_submitted(ref, req, 0, "uv_pipe_connect");
  REAL(uv_pipe_connect)(req, s, name, tr_connect);
}

/* Requests on a loop, whose callback argument may be NULL (synchronous). */
#define LOOP_REQUEST(fn, type, params, args_real, loop, req, cb, tramp)                   \
  DECLARE_REAL(fn);                                                                       \
  LOOPSAN_INTERPOSE int fn params {                                                       \
    if (!RESOLVE(fn))                                                                     \
      return UV_ENOSYS;                                                                   \
    void *ref;                                                                            \
    if (!cb || !from_program(CALLER) ||                                                   \
        !(ref = loopsan__request_begin(req, LOOPSAN_LIB_UV, type, loopsan__loop_id(loop), \
                                       (void *)cb)))                                      \
      return REAL(fn) args_real(cb);                                                      \
    int rc = REAL(fn) args_real(tramp);                                                   \
    loopsan__request_submitted(ref, req, rc, #fn);                                        \
    return rc;                                                                            \
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
  if (!from_program(CALLER) ||
      !(ref = loopsan__request_begin(req, LOOPSAN_LIB_UV, T_WORK, loopsan__loop_id(loop),
                                     (void *)after_cb)))
    return REAL(uv_queue_work)(loop, req, work_cb, after_cb);
  int rc = REAL(uv_queue_work)(loop, req, work_cb, tr_after_work);
  loopsan__request_submitted(ref, req, rc, "uv_queue_work");
  return rc;
}

/* Every uv_fs_* with a callback: (name, parameters after loop and req,
 * the same as arguments). A NULL callback makes the call synchronous. */
#define UV_FS_FUNCTIONS(X)                                                                        \
  X(uv_fs_close, (uv_file file), (file))                                                          \
  X(uv_fs_open, (const char *path, int flags, int mode), (path, flags, mode))                     \
  X(uv_fs_read, (uv_file file, const uv_buf_t bufs[], unsigned int n, int64_t off),               \
    (file, bufs, n, off))                                                                         \
  X(uv_fs_unlink, (const char *path), (path))                                                     \
  X(uv_fs_write, (uv_file file, const uv_buf_t bufs[], unsigned int n, int64_t off),              \
    (file, bufs, n, off))                                                                         \
  X(uv_fs_copyfile, (const char *path, const char *new_path, int flags), (path, new_path, flags)) \
  X(uv_fs_mkdir, (const char *path, int mode), (path, mode))                                      \
  X(uv_fs_mkdtemp, (const char *tpl), (tpl))                                                      \
  X(uv_fs_mkstemp, (const char *tpl), (tpl))                                                      \
  X(uv_fs_rmdir, (const char *path), (path))                                                      \
  X(uv_fs_scandir, (const char *path, int flags), (path, flags))                                  \
  X(uv_fs_opendir, (const char *path), (path))                                                    \
  X(uv_fs_readdir, (uv_dir_t * dir), (dir))                                                       \
  X(uv_fs_closedir, (uv_dir_t * dir), (dir))                                                      \
  X(uv_fs_stat, (const char *path), (path))                                                       \
  X(uv_fs_fstat, (uv_file file), (file))                                                          \
  X(uv_fs_rename, (const char *path, const char *new_path), (path, new_path))                     \
  X(uv_fs_fsync, (uv_file file), (file))                                                          \
  X(uv_fs_fdatasync, (uv_file file), (file))                                                      \
  X(uv_fs_ftruncate, (uv_file file, int64_t off), (file, off))                                    \
  X(uv_fs_sendfile, (uv_file out, uv_file in, int64_t off, size_t len), (out, in, off, len))      \
  X(uv_fs_access, (const char *path, int mode), (path, mode))                                     \
  X(uv_fs_chmod, (const char *path, int mode), (path, mode))                                      \
  X(uv_fs_utime, (const char *path, double at, double mt), (path, at, mt))                        \
  X(uv_fs_futime, (uv_file file, double at, double mt), (file, at, mt))                           \
  X(uv_fs_lutime, (const char *path, double at, double mt), (path, at, mt))                       \
  X(uv_fs_lstat, (const char *path), (path))                                                      \
  X(uv_fs_link, (const char *path, const char *new_path), (path, new_path))                       \
  X(uv_fs_symlink, (const char *path, const char *new_path, int flags), (path, new_path, flags))  \
  X(uv_fs_readlink, (const char *path), (path))                                                   \
  X(uv_fs_realpath, (const char *path), (path))                                                   \
  X(uv_fs_fchmod, (uv_file file, int mode), (file, mode))                                         \
  X(uv_fs_chown, (const char *path, uv_uid_t u, uv_gid_t g), (path, u, g))                        \
  X(uv_fs_fchown, (uv_file file, uv_uid_t u, uv_gid_t g), (file, u, g))                           \
  X(uv_fs_lchown, (const char *path, uv_uid_t u, uv_gid_t g), (path, u, g))                       \
  X(uv_fs_statfs, (const char *path), (path))

#define UNPAREN(...) __VA_ARGS__
#define FS_WRAPPER(fn, params, args)                                                      \
  DECLARE_REAL(fn);                                                                       \
  LOOPSAN_INTERPOSE int fn(uv_loop_t *loop, uv_fs_t *req, UNPAREN params, uv_fs_cb cb) {  \
    if (!RESOLVE(fn))                                                                     \
      return UV_ENOSYS;                                                                   \
    void *ref;                                                                            \
    if (!cb || !from_program(CALLER) ||                                                   \
        !(ref = loopsan__request_begin(req, LOOPSAN_LIB_UV, T_FS, loopsan__loop_id(loop), \
                                       (void *)cb)))                                      \
      return REAL(fn)(loop, req, UNPAREN args, cb);                                       \
    int rc = REAL(fn)(loop, req, UNPAREN args, tr_fs);                                    \
    loopsan__request_submitted(ref, req, rc, #fn);                                        \
    return rc;                                                                            \
  }
UV_FS_FUNCTIONS(FS_WRAPPER)
