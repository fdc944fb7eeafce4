/* Creation stacks: captured with libunwind's unw_backtrace (a cached-CFI
 * fast path, ~10 ns a frame; never an unw_step loop, which costs two
 * sigprocmask calls a step), the shim's own frames removed, deduplicated by
 * a 64-bit hash in a lock-free table. A stack is written to the trace once,
 * by the thread that saw it first, before the record that refers to it. */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload/shim.h"

/* The trampolines' section (adapter.h); weak: a build without adapters
 * (the unit tests) has none. */
extern const char __start_loopsan_tramp[] __attribute__((weak, visibility("hidden")));
extern const char __stop_loopsan_tramp[] __attribute__((weak, visibility("hidden")));

#define STACK_TABLE_BITS 18
#define STACK_TABLE_SIZE (1u << STACK_TABLE_BITS)
#define STACK_MAX_PROBES 64
#define SELF_FRAMES_MAX 8 /* at most this many shim frames sit on top */

struct stack_slot {
  _Atomic uint64_t hash;
  _Atomic uint32_t id;
  uint32_t pad;
};

static struct stack_slot *table;
static _Atomic uint32_t next_id = 1;
static _Atomic uint32_t reuse_gen = 1; /* stack reuse (below): a forked child's ids start over */

static int stacks_init(void) {
  void *mem = mmap(NULL, sizeof(struct stack_slot) * STACK_TABLE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED)
    return -1;
  table = mem;
  return 0;
}

void loopsan__stacks_atfork_child(void) {
  /* The child writes a trace of its own: ids restart and every stack is
   * written again when first used. */
  if (table)
    madvise(table, sizeof(struct stack_slot) * STACK_TABLE_SIZE, MADV_DONTNEED);
  atomic_store(&next_id, 1);
  atomic_fetch_add(&reuse_gen, 1);
}

static uint64_t hash_frames(void *const *frames, int n) {
  uint64_t h = 0xcbf29ce484222325u ^ (uint64_t)n;
  for (int i = 0; i < n; i++) {
    h ^= (uint64_t)(uintptr_t)frames[i];
    h *= 0x100000001b3u;
    h ^= h >> 29;
  }
  return h ? h : 1;
}

/* ---- the function that tail-called the API -------------------------------
 *
 * `static void open_thing(l) { uv_idle_init(l, &h); }` compiles at -O2 to a
 * jump: open_thing leaves no frame, and the creation stack would start in
 * its caller. The caller's return address follows `call open_thing`; when
 * that call's target is not a PLT stub (a direct call of the API), the
 * target is the function that jumped on to the API, and it goes back on
 * the stack (as target+1, so that readers, which look up return address
 * minus one, land on its entry). Answers are cached per return address. */

#define TAIL_CACHE_SIZE 1024u
/* (ra << 1) | has_tail_caller, one word per entry: lock-free. A validated
 * call's target is read again from the instruction itself. */
static _Atomic uint64_t tail_cache[TAIL_CACHE_SIZE];

struct exec_query {
  uintptr_t a, b;
  int both; /* both addresses in one executable segment of one object */
};

static int same_exec_segment(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  struct exec_query *q = data;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
      continue;
    uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
    if (q->a >= s && q->a < e) {
      q->both = q->b >= s && q->b < e;
      return 1;
    }
  }
  return 0;
}

static uintptr_t find_tail_caller(uintptr_t ra) {
#if defined(__x86_64__)
  struct exec_query q = {.a = ra - 5, .b = ra - 1};
  if (!dl_iterate_phdr(same_exec_segment, &q) || !q.both)
    return 0; /* the call instruction must be readable code */
  const unsigned char *p = (const unsigned char *)ra;
  if (p[-5] != 0xe8)
    return 0; /* not a direct call: nothing to learn */
  int32_t rel;
  memcpy(&rel, p - 4, sizeof rel);
  uintptr_t target = ra + (uintptr_t)(intptr_t)rel;
  q = (struct exec_query){.a = ra, .b = target};
  if (!dl_iterate_phdr(same_exec_segment, &q) || !q.both)
    return 0; /* PLT stubs and functions alike live in the caller's code */
  const unsigned char *t = (const unsigned char *)target;
  if (t[0] == 0xf3 && t[1] == 0x0f && t[2] == 0x1e && t[3] == 0xfa)
    t += 4; /* endbr64 */
  if (t[0] == 0xf2)
    t++; /* bnd */
  if (t[0] == 0xff && t[1] == 0x25)
    return 0; /* a PLT stub: the API itself was called */
  return target;
#else
  (void)ra;
  return 0;
#endif
}

static uintptr_t tail_caller(uintptr_t ra) {
  _Atomic uint64_t *e = &tail_cache[(ra >> 2) & (TAIL_CACHE_SIZE - 1)];
  uint64_t v = atomic_load_explicit(e, memory_order_relaxed);
  if (v >> 1 == (uint64_t)ra) {
    if (!(v & 1))
      return 0;
    int32_t rel;
    memcpy(&rel, (const unsigned char *)ra - 4, sizeof rel);
    return ra + (uintptr_t)(intptr_t)rel;
  }
  uintptr_t target = find_tail_caller(ra);
  atomic_store_explicit(e, ((uint64_t)ra << 1) | (target != 0), memory_order_relaxed);
  return target;
}

/* The id of the stack FRAMES[0..N), added to the table (and its STACK
 * record written) the first time it is seen. */
static uint32_t intern(void **frames, int n) {
  uint64_t h = hash_frames(frames, n);
  uint32_t i = (uint32_t)(h >> (64 - STACK_TABLE_BITS));
  for (int probe = 0; probe < STACK_MAX_PROBES; probe++, i = (i + 1) & (STACK_TABLE_SIZE - 1)) {
    struct stack_slot *s = &table[i];
    uint64_t cur = atomic_load_explicit(&s->hash, memory_order_acquire);
    if (cur == 0) {
      /* The id is taken before the slot is claimed and published right
       * after, so a thread that finds the slot waits a few instructions at
       * most; the STACK record may then reach the file after a record
       * that uses the id (readers resolve stacks at the end). */
      uint32_t id = atomic_fetch_add(&next_id, 1);
      uint64_t expected = 0;
      if (!atomic_compare_exchange_strong(&s->hash, &expected, h)) {
        cur = expected; /* lost the race: that id stays unused */
      } else {
        atomic_store_explicit(&s->id, id, memory_order_release);
        struct loopsan_rec_stack r = {.id = id, .nframes = (uint32_t)n};
        loopsan__emit_tail(LOOPSAN_REC_STACK, &r, sizeof r, frames, sizeof(void *) * (size_t)n,
                           NULL, 0);
        return id;
      }
    }
    if (cur == h) {
      uint32_t id;
      for (int spin = 0; (id = atomic_load_explicit(&s->id, memory_order_acquire)) == 0; spin++)
        if (spin > 1000000)
          return 0; /* the claiming thread was descheduled for long: no stack */
      return id;
    }
  }
  loopsan__note_lost(LOOPSAN_LOST_STACK_TABLE_FULL, 1);
  return 0;
}

static inline int in_trampolines(uintptr_t pc) {
  return __start_loopsan_tramp && pc >= (uintptr_t)__start_loopsan_tramp &&
         pc < (uintptr_t)__stop_loopsan_tramp;
}

/* Keep the program's frames of BUF[0..GOT) (at most DEPTH), in place: the
 * shim's are dropped, the capture itself on top and trampolines in the
 * middle. Inside a callback the stack stops at its trampoline: what is
 * below is the loop running it, the same every time, and the callback's
 * own object says where that came from (OBJ_NEW's parent). *TRAMP is the
 * raw index of that trampoline, or -1. */
static inline int program_frames(void **buf, int got, unsigned depth, int *tramp) {
  int n = 0;
  *tramp = -1;
  for (int i = 0; i < got && (unsigned)n < depth; i++) {
    uintptr_t pc = (uintptr_t)buf[i];
    if (n > 0 && in_trampolines(pc)) {
      *tramp = i;
      break;
    }
    if (!loopsan__is_self(pc))
      buf[n++] = buf[i];
  }
  return n;
}

/* ---- a stack whose return addresses are unchanged -------------------------
 *
 * Programs make their objects in loops: the same call site, at the same
 * depth, again and again (a write per read, a timer per request). A stack
 * captured twice at one stack pointer is learnt: where each of its return
 * addresses is stored (unwinding step by step, which yields each frame's
 * stack pointer: the slot is just below it) and what they hold. A capture
 * at that stack pointer whose slots hold the same return addresses unwinds
 * to the same frames (a frame's layout follows from its code address and
 * its stack pointer), so it reuses the id: a few compares for ~1,500
 * instructions of unwinding. The slots are all above the stack pointer of
 * the capture, in the thread's own stack (below), and nothing else is
 * read. */
#define REUSE_WAYS 8u
#define REUSE_SLOTS 40 /* raw frames checked: the default depth, 32, + self frames */
#define REUSE_NEVER UINT32_MAX /* nslots of an entry whose stack could not be learnt */

struct reuse_entry {
  uintptr_t sp, leaf; /* the key: capture's frame, and its leaf */
  uint32_t id, gen;   /* the stack id; the fork generation it belongs to */
  uint32_t nslots;    /* 0: seen once, not learnt */
  uint32_t pad;       /* (of a set's first entry: its entry used last) */
  uintptr_t slot[REUSE_SLOTS], ra[REUSE_SLOTS];
};
struct reuse_cache {
  struct reuse_entry e[REUSE_WAYS];
};
_Static_assert(sizeof(struct reuse_cache) <= LOOPSAN_STACK_REUSE_BYTES, "stack reuse area");

static LOOPSAN_TLS int reuse_busy;   /* a signal handler's capture skips the cache */
LOOPSAN_TLS uint64_t loopsan__stack_reuses; /* captures answered by it (for the tests) */

/* The thread's own stack, [own_lo, own_hi): the only memory the cache
 * reads. A thread's own stack stays mapped while it lives; a fiber's
 * (ucontext, boost.context) may be unmapped and another one mapped at its
 * addresses with a lower top, where a learnt slot above a frame of varying
 * size (alloca) would lie past the end. So captures on any other stack do
 * without the cache. Found once per thread, at its first learning, from
 * /proc/self/maps with raw system calls (no malloc: signal-safe). */
static LOOPSAN_TLS uintptr_t own_lo, own_hi;
extern void *__libc_stack_end; /* ld.so's: the top of the main thread's stack */
static LOOPSAN_TLS int own_known; /* 0: not looked for; 1: found; -1: none */

static int hex_field(const char **p, uintptr_t *out) {
  uintptr_t v = 0;
  int digits = 0;
  for (;; (*p)++, digits++) {
    char c = **p;
    unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                 : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                                        : 16u;
    if (d == 16u)
      break;
    v = v << 4 | d;
  }
  *out = v;
  return digits > 0;
}

/* The maps line [LINE, END) (no newline): is SP in it? Then *LO, *HI and
 * whether it is the thread's own stack: the main thread's "[stack]", or a
 * thread's stack block, which holds its descriptor (pthread_self); the
 * main thread's is the one that holds __libc_stack_end (under valgrind it
 * has no name). */
static int own_stack_line(const char *line, const char *end, uintptr_t sp, uintptr_t *lo,
                          uintptr_t *hi, int *own) {
  const char *p = line;
  if (!hex_field(&p, lo) || *p++ != '-' || !hex_field(&p, hi) || sp < *lo || sp >= *hi)
    return 0;
  uintptr_t self = (uintptr_t)pthread_self(), main_top = (uintptr_t)__libc_stack_end;
  *own = (self >= *lo && self < *hi) || (main_top >= *lo && main_top < *hi) ||
         (end - line >= 7 && memcmp(end - 7, "[stack]", 7) == 0);
  return 1;
}

static void find_own_stack(uintptr_t sp) {
  own_known = -1;
  int saved = errno;
  int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    errno = saved;
    return;
  }
  char buf[4096];
  size_t have = 0;
  for (int done = 0; !done;) {
    long got = syscall(SYS_read, fd, buf + have, sizeof buf - have);
    if (got <= 0)
      break;
    have += (size_t)got;
    char *line = buf, *nl;
    while (!done && (nl = memchr(line, '\n', have - (size_t)(line - buf))) != NULL) {
      uintptr_t lo, hi;
      int own;
      if (own_stack_line(line, nl, sp, &lo, &hi, &own)) {
        if (own) {
          own_lo = lo, own_hi = hi;
          own_known = 1;
        }
        done = 1;
      }
      line = nl + 1;
    }
    have -= (size_t)(line - buf);
    memmove(buf, line, have);
    if (have == sizeof buf)
      have = 0; /* (no line is that long) */
  }
  syscall(SYS_close, fd);
  errno = saved;
}

static inline int on_own_stack(uintptr_t sp) {
  return own_known > 0 && sp >= own_lo && sp < own_hi;
}

/* The two entries SP and LEAF may be in (two: one place is often reached
 * from two callers in turn); the first's pad is the one used last. */
static inline struct reuse_entry *reuse_set(uintptr_t sp, uintptr_t leaf) {
  struct reuse_cache *c = loopsan__stack_reuse_area();
  return c ? &c->e[(((sp >> 4) ^ (leaf >> 2)) & (REUSE_WAYS / 2 - 1)) * 2] : NULL;
}

/* The id E holds for SP and LEAF, if its return addresses are in place. */
static inline uint32_t reuse_lookup(const struct reuse_entry *e, uintptr_t sp, uintptr_t leaf,
                                    uint32_t gen) {
  if (e->sp != sp || e->leaf != leaf || e->gen != gen || !e->nslots || e->nslots > REUSE_SLOTS)
    return 0;
  for (uint32_t i = 0; i < e->nslots; i++)
    if (*(const volatile uintptr_t *)e->slot[i] != e->ra[i])
      return 0;
  return e->id;
}

/* Learn where RAW[0..N) (unw_backtrace's frames, captured in the calling
 * function's frame at SP) are stored, by unwinding again step by step from
 * here. Returns the slots found (0: the two unwinds disagreed). */
static __attribute__((noinline)) uint32_t reuse_learn(struct reuse_entry *e, void *const *raw,
                                                      int n, uintptr_t sp) {
  unw_context_t uc;
  unw_cursor_t c;
  if (n > REUSE_SLOTS || unw_getcontext(&uc) != 0 || unw_init_local(&c, &uc) != 0)
    return 0;
  /* Walk up to the frame that called the capture (its return address is
   * the first of RAW above SP), then along RAW. */
  int j = -1;
  uint32_t got = 0;
  for (int steps = 0; steps < n + SELF_FRAMES_MAX + 4 && unw_step(&c) > 0; steps++) {
    unw_word_t ip, fsp;
    if (unw_get_reg(&c, UNW_REG_IP, &ip) != 0 || unw_get_reg(&c, UNW_REG_SP, &fsp) != 0)
      return 0;
    uintptr_t slot = (uintptr_t)fsp - sizeof(uintptr_t); /* where the call stored ip */
    if (slot + sizeof(uintptr_t) > own_hi)
      return 0; /* off the thread's own stack (a signal frame's other stack) */
    if (slot <= sp || *(const uintptr_t *)slot != (uintptr_t)ip)
      continue; /* a frame of ours below the capture's, or not a call's */
    if (j < 0) {
      for (int k = 0; k < n && k < 3; k++)
        if ((uintptr_t)raw[k] == (uintptr_t)ip) {
          j = k;
          break;
        }
      if (j < 0)
        continue;
    } else if (++j >= n) {
      break;
    } else if ((uintptr_t)raw[j] != (uintptr_t)ip) {
      return 0;
    }
    e->slot[got] = slot;
    e->ra[got] = (uintptr_t)ip;
    got++;
    if (j == n - 1)
      break;
  }
  return j == n - 1 ? got : 0;
}

/* How many raw frames a capture inside a callback needed to reach its
 * trampoline (the most seen on this thread): unwinding on through the
 * loop and main to _start costs 250 instructions a stack with libuv, for
 * frames that are cut anyway. */
static LOOPSAN_TLS int frames_to_trampoline;

/* The unwinding capture, for a thread at SP. SET (if not NULL): SP's reuse
 * entries, to learn the stack into when it is seen there a second time. */
static inline __attribute__((always_inline)) uint32_t capture_unwind(uintptr_t leaf,
                                                                     struct reuse_entry *set,
                                                                     uintptr_t sp, uint32_t gen) {
  void *buf[LOOPSAN_STACK_MAX_FRAMES + SELF_FRAMES_MAX];
  unsigned depth = loopsan__state.opts.stack_depth;
  if (depth > LOOPSAN_STACK_MAX_FRAMES)
    depth = LOOPSAN_STACK_MAX_FRAMES;
  int full = (int)(depth + SELF_FRAMES_MAX), tramp;
  int guess = loopsan__in_callback() ? frames_to_trampoline : 0;
  int limit = guess > 0 && guess < full ? guess + 1 : full;
  /* the raw frames, kept for learning: program_frames edits BUF */
  void *raw[REUSE_SLOTS];
  int nraw = 0;
  int got = unw_backtrace(buf, limit);
  if (set)
    memcpy(raw, buf, sizeof *raw * (size_t)(nraw = got < REUSE_SLOTS ? got : REUSE_SLOTS));
  int n = program_frames(buf, got, depth, &tramp);
  if (tramp < 0 && got == limit && limit < full) { /* deeper than guessed: again, whole */
    got = unw_backtrace(buf, full);
    if (set)
      memcpy(raw, buf, sizeof *raw * (size_t)(nraw = got < REUSE_SLOTS ? got : REUSE_SLOTS));
    n = program_frames(buf, got, depth, &tramp);
  }
  if (tramp > frames_to_trampoline)
    frames_to_trampoline = tramp;
  if (n <= 0)
    return 0;
  uintptr_t tail = tail_caller((uintptr_t)buf[0]);
  if (tail) {
    if ((unsigned)n == depth)
      n--;
    memmove(buf + 1, buf, sizeof *buf * (size_t)n);
    buf[0] = (void *)(tail + 1);
    n++;
  }
  if (leaf) { /* as a return address into it would be: symbolised as it */
    if ((unsigned)n == depth)
      n--;
    memmove(buf + 1, buf, sizeof *buf * (size_t)n);
    buf[0] = (void *)(leaf + 1);
    n++;
  }
  uint32_t id = intern(buf, n);
  if (set && id) {
    int significant = tramp >= 0 ? tramp + 1 : got; /* the frames the id depends on */
    uint32_t w;
    for (w = 0; w < 2; w++) {
      struct reuse_entry *e = &set[w];
      if (e->sp == sp && e->leaf == leaf && e->gen == gen && e->id == id) {
        /* a second sight: learnt; if that fails, never tried again here
         * (REUSE_NEVER: each try is a step-by-step unwind) */
        if (!e->nslots) {
          if (!own_known)
            find_own_stack(sp);
          uint32_t learnt = significant <= nraw && on_own_stack(sp)
                                ? reuse_learn(e, raw, significant, sp)
                                : 0;
          e->nslots = learnt ? learnt : REUSE_NEVER;
        }
        break;
      }
    }
    if (w == 2) { /* a first sight, in the entry used less recently */
      w = !set[0].pad;
      set[w] = (struct reuse_entry){.sp = sp, .leaf = leaf, .id = id, .gen = gen};
    }
    set[0].pad = w;
  }
  return id;
}

/* Inlined into both entry points: no frame of its own to skip. */
static inline __attribute__((always_inline)) uint32_t capture(uintptr_t leaf) {
  if (LOOPSAN_UNLIKELY(!table) && stacks_init() != 0)
    return 0;
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
  uint32_t gen = atomic_load_explicit(&reuse_gen, memory_order_relaxed);
  /* (not found yet: the first learning looks for it) */
  int own = own_known ? on_own_stack(sp) : 1;
  struct reuse_entry *set = reuse_busy++ || !own ? NULL : reuse_set(sp, leaf);
  uint32_t id = 0;
  if (set && own_known) {
    if ((id = reuse_lookup(&set[0], sp, leaf, gen)) != 0)
      set[0].pad = 0;
    else if ((id = reuse_lookup(&set[1], sp, leaf, gen)) != 0)
      set[0].pad = 1;
  }
  if (LOOPSAN_UNLIKELY(!id))
    id = capture_unwind(leaf, set, sp, gen);
  else
    loopsan__stack_reuses++;
  reuse_busy--;
  return id;
}

uint32_t loopsan__stack_capture(void) { return capture(0); }

uint32_t loopsan__stack_capture_in(const void *function) { return capture((uintptr_t)function); }

/* Where a signal came from: unwound from the context the kernel saved (a
 * crash is rare, so the slow unw_step loop is fine here). The innermost
 * frame is the faulting instruction itself, stored +1 as a return address
 * would be, so that readers (which look up address - 1) land on it. */
uint32_t loopsan__stack_capture_signal(void *ucontext) {
  if ((LOOPSAN_UNLIKELY(!table) && stacks_init() != 0) || !ucontext)
    return 0;
  void *buf[LOOPSAN_STACK_MAX_FRAMES];
  unsigned depth = loopsan__state.opts.stack_depth;
  if (depth > LOOPSAN_STACK_MAX_FRAMES)
    depth = LOOPSAN_STACK_MAX_FRAMES;
  unw_cursor_t c;
  if (unw_init_local2(&c, (unw_context_t *)ucontext, UNW_INIT_SIGNAL_FRAME) != 0)
    return 0;
  int n = 0, tramp;
  do {
    unw_word_t ip;
    if (unw_get_reg(&c, UNW_REG_IP, &ip) != 0 || !ip)
      break;
    buf[n] = (void *)(uintptr_t)(n == 0 ? ip + 1 : ip);
    n++;
  } while ((unsigned)n < depth && unw_step(&c) > 0);
  n = program_frames(buf, n, depth, &tramp);
  return n > 0 ? intern(buf, n) : 0;
}

uint32_t loopsan__stack_of_caller(uintptr_t ra) {
  if ((LOOPSAN_UNLIKELY(!table) && stacks_init() != 0) || !ra)
    return 0;
  void *frame = (void *)ra;
  return intern(&frame, 1);
}

uint32_t loopsan__stack_of_call_site(uintptr_t ra) {
  if ((LOOPSAN_UNLIKELY(!table) && stacks_init() != 0) || !ra)
    return 0;
  void *frames[2] = {(void *)ra, NULL};
  uintptr_t tail = tail_caller(ra); /* a function that jumped on to the API */
  if (tail) {
    frames[0] = (void *)(tail + 1);
    frames[1] = (void *)ra;
  }
  return intern(frames, tail ? 2 : 1);
}
