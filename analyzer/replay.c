#include "analyzer/replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/rules.h"

void loopsan_replay_init(struct loopsan_replay *r, uint64_t threshold_ns) {
  memset(r, 0, sizeof *r);
  r->threshold_ns = threshold_ns;
  r->ticks_per_sec = 1000000000u;
  r->end_status = -1;
}

void loopsan_replay_free(struct loopsan_replay *r) {
  free(r->exe);
  free(r->argv);
  free(r->types);
  for (size_t i = 0; i < r->n_modules; i++)
    free(r->modules[i].path);
  free(r->modules);
  for (size_t i = 0; i < r->cap_stacks; i++)
    free(r->stacks[i].frames);
  free(r->stacks);
  for (size_t i = 0; i < r->cap_objects; i++)
    free(r->objects[i]);
  free(r->objects);
  free(r->findings);
  free(r->orphans);
  free(r->orphan_ids);
  free(r->counts);
  free(r->ended_loops);
  free(r->stalls);
  free(r->sites);
  for (size_t i = 0; i < r->n_fine; i++)
    free(r->fine[i].buckets);
  free(r->fine);
  free(r->timeline);
  free(r->origins);
  free(r->pairs);
  for (size_t i = 0; i < REPLAY_ENDED_RING; i++)
    free(r->ended_objects[i]);
  memset(r, 0, sizeof *r);
}

double loopsan_replay_ms(const struct loopsan_replay *r, uint64_t ticks) {
  return (double)ticks * 1000.0 / (double)(r->ticks_per_sec ? r->ticks_per_sec : 1000000000u);
}

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdu;
  x ^= x >> 33;
  return x;
}

/* ---- stacks (open addressing by id, grown at 50% load) ---- */

static int stacks_grow(struct loopsan_replay *r) {
  size_t cap = r->cap_stacks ? r->cap_stacks * 2 : 256;
  struct replay_stack *t = calloc(cap, sizeof *t);
  if (!t)
    return -1;
  for (size_t i = 0; i < r->cap_stacks; i++) {
    if (!r->stacks[i].id)
      continue;
    size_t j = mix(r->stacks[i].id) & (cap - 1);
    while (t[j].id)
      j = (j + 1) & (cap - 1);
    t[j] = r->stacks[i];
  }
  free(r->stacks);
  r->stacks = t;
  r->cap_stacks = cap;
  return 0;
}

const struct replay_stack *loopsan_replay_stack(const struct loopsan_replay *r, uint32_t id) {
  if (!id || !r->cap_stacks)
    return NULL;
  for (size_t j = mix(id) & (r->cap_stacks - 1);; j = (j + 1) & (r->cap_stacks - 1)) {
    if (r->stacks[j].id == id)
      return &r->stacks[j];
    if (!r->stacks[j].id)
      return NULL;
  }
}

static void add_stack(struct loopsan_replay *r, const struct loopsan_rec_stack *s) {
  if (!s->id || loopsan_replay_stack(r, s->id))
    return;
  if ((r->n_stacks + 1) * 2 > r->cap_stacks && stacks_grow(r) != 0) {
    r->failed = 1;
    return;
  }
  uint64_t *frames = malloc(sizeof *frames * (s->nframes ? s->nframes : 1));
  if (!frames) {
    r->failed = 1;
    return;
  }
  memcpy(frames, s + 1, sizeof *frames * s->nframes);
  size_t j = mix(s->id) & (r->cap_stacks - 1);
  while (r->stacks[j].id)
    j = (j + 1) & (r->cap_stacks - 1);
  r->stacks[j] = (struct replay_stack){.id = s->id, .n = s->nframes, .frames = frames};
  r->n_stacks++;
}

/* A stall sample `loopsan run` took of TID while its dispatch begun at TS
 * ran past the threshold: a stack of its own (ids from 0x80000000, clear of
 * the trace's), found by (tid, ts) when the dispatch is judged. */
void loopsan_replay_add_stall(struct loopsan_replay *r, uint32_t tid, uint64_t ts,
                              const uint64_t *pcs, uint32_t n) {
  if (!n || n > LOOPSAN_STACK_MAX_FRAMES)
    return;
  struct replay_stall *grown = realloc(r->stalls, (r->n_stalls + 1) * sizeof *grown);
  struct loopsan_rec_stack *rec = malloc(sizeof *rec + n * sizeof *pcs);
  if (!grown || !rec) {
    if (grown)
      r->stalls = grown;
    free(rec);
    r->failed = 1;
    return;
  }
  r->stalls = grown;
  *rec = (struct loopsan_rec_stack){.id = 0x80000000u + (uint32_t)r->n_stalls, .nframes = n};
  memcpy(rec + 1, pcs, n * sizeof *pcs);
  add_stack(r, rec);
  /* Where it was is what called what: the return addresses. The innermost
   * pc moves with every sample of a loop that spins. */
  uint64_t place = 0xcbf29ce484222325u ^ n;
  for (uint32_t i = 1; i < n; i++)
    place = (place ^ pcs[i]) * 0x100000001b3u;
  r->stalls[r->n_stalls++] =
      (struct replay_stall){.tid = tid, .ts = ts, .stack = rec->id, .place = place};
  free(rec);
}

/* A slow dispatch has a few samples (loopsan run takes them further apart
 * the longer it lasts, at most LOOPSAN_STALL_SAMPLES_MAX): quadratic is
 * fine. */
uint32_t loopsan_replay_stall_stack(const struct loopsan_replay *r, uint32_t tid, uint64_t ts,
                                    uint32_t *taken, uint32_t *here) {
  uint32_t best = 0, best_n = 0, n = 0;
  for (size_t i = 0; i < r->n_stalls; i++) {
    const struct replay_stall *s = &r->stalls[i];
    if (s->tid != tid || s->ts != ts)
      continue;
    n++;
    uint32_t same = 0;
    for (size_t k = i; k < r->n_stalls; k++)
      same += r->stalls[k].tid == tid && r->stalls[k].ts == ts && r->stalls[k].place == s->place;
    if (same > best_n) { /* ties: the earlier sample */
      best_n = same;
      best = s->stack;
    }
  }
  *taken = n;
  *here = best_n;
  return best;
}

/* ---- objects (open addressing by id, backward-shift deletion) ---- */

static int objects_grow(struct loopsan_replay *r) {
  size_t cap = r->cap_objects ? r->cap_objects * 2 : 1024;
  struct replay_object **t = calloc(cap, sizeof *t);
  if (!t)
    return -1;
  for (size_t i = 0; i < r->cap_objects; i++) {
    if (!r->objects[i])
      continue;
    size_t j = mix(r->objects[i]->id) & (cap - 1);
    while (t[j])
      j = (j + 1) & (cap - 1);
    t[j] = r->objects[i];
  }
  free(r->objects);
  r->objects = t;
  r->cap_objects = cap;
  return 0;
}

static size_t object_slot(const struct loopsan_replay *r, uint64_t id) {
  for (size_t j = mix(id) & (r->cap_objects - 1);; j = (j + 1) & (r->cap_objects - 1))
    if (!r->objects[j] || r->objects[j]->id == id)
      return j;
}

struct replay_object *loopsan_replay_object(struct loopsan_replay *r, uint64_t id) {
  if (!id || !r->cap_objects)
    return NULL;
  return r->objects[object_slot(r, id)];
}

int loopsan_replay_loop_ended(const struct loopsan_replay *r, uint64_t id) {
  for (size_t i = 0; i < r->n_ended_loops; i++)
    if (r->ended_loops[i] == id)
      return 1;
  return 0;
}

/* ---- the timeline ---- */

/* OBJ's creation as the start of its flow (1 + its index; 0: none). */
static uint32_t timeline_origin(struct loopsan_replay *r, struct replay_object *obj) {
  if (!obj || !obj->created_ts)
    return 0;
  if (obj->origin)
    return obj->origin;
  if (r->n_origins == REPLAY_ORIGINS_MAX)
    return 0;
  if (r->n_origins == r->cap_origins) {
    size_t cap = r->cap_origins ? r->cap_origins * 2 : 256;
    struct replay_origin *grown = realloc(r->origins, cap * sizeof *grown);
    if (!grown)
      return 0;
    r->origins = grown;
    r->cap_origins = cap;
  }
  r->origins[r->n_origins++] = (struct replay_origin){
      .ts = obj->created_ts, .tid = obj->tid, .stack = obj->stack, .library = obj->library,
      .type = obj->type};
  return obj->origin = (uint32_t)r->n_origins;
}

static inline uint32_t fine_bucket(uint64_t v) {
  if (v < REPLAY_FINE_SUB)
    return (uint32_t)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 6 */
  return REPLAY_FINE_SUB + (e - 6u) * REPLAY_FINE_SUB + (uint32_t)((v >> (e - 6u)) & 63u);
}

/* The index of CB's fine buckets, or n_fine. */
static size_t fine_index(const struct loopsan_replay *r, uint64_t cb) {
  size_t i = 0;
  while (i < r->n_fine && r->fine[i].cb != cb) /* (a program's few sites) */
    i++;
  return i;
}

void loopsan_replay_fine_add(struct loopsan_replay *r, uint64_t cb, uint64_t duration) {
  /* by address first: a loop runs a few callbacks in turn */
  uint32_t *recent = &r->fine_recent[(cb >> 4) * 0x9E3779B97F4A7C15ull >> 58];
  size_t i = *recent && r->fine[*recent - 1].cb == cb ? *recent - 1 : fine_index(r, cb);
  if (i == r->n_fine) { /* a new site */
    if (r->n_fine == r->cap_fine) {
      size_t cap = r->cap_fine ? r->cap_fine * 2 : 16;
      struct replay_fine *grown = realloc(r->fine, cap * sizeof *grown);
      if (!grown)
        return;
      r->fine = grown;
      r->cap_fine = cap;
    }
    uint64_t *b = calloc(REPLAY_FINE_BUCKETS, sizeof *b);
    if (!b)
      return;
    r->fine[r->n_fine++] = (struct replay_fine){.cb = cb, .buckets = b};
  }
  *recent = (uint32_t)i + 1;
  r->fine[i].count++;
  r->fine[i].buckets[fine_bucket(duration)]++;
}

const struct replay_fine *loopsan_replay_fine(const struct loopsan_replay *r, uint64_t cb) {
  size_t i = fine_index(r, cb);
  return i < r->n_fine ? &r->fine[i] : NULL;
}

uint64_t loopsan_replay_fine_rank(const struct replay_fine *f, uint64_t k) {
  uint64_t seen = 0;
  for (uint32_t b = 0; b < REPLAY_FINE_BUCKETS; b++) {
    seen += f->buckets[b];
    if (seen <= k)
      continue;
    if (b < REPLAY_FINE_SUB)
      return b; /* one value a bucket: exact */
    uint32_t e = (b - REPLAY_FINE_SUB) / REPLAY_FINE_SUB + 6u, sub = (b - REPLAY_FINE_SUB) % REPLAY_FINE_SUB;
    uint64_t lo = (uint64_t)(REPLAY_FINE_SUB + sub) << (e - 6u), width = 1ull << (e - 6u);
    return lo + width / 2; /* its middle */
  }
  return 0;
}

void loopsan_replay_timeline_add(struct loopsan_replay *r, const struct loopsan_rec_dispatch *d,
                                 uint32_t tid, uint16_t library, struct replay_object *obj) {
  if (!LOOPSAN_IS_ITERATION(d->h.aux))
    loopsan_replay_fine_add(r, d->cb, d->duration);
  if (!r->keep_timeline)
    return;
  if (r->n_timeline == REPLAY_TIMELINE_MAX) {
    r->timeline_dropped++;
    return;
  }
  if (r->n_timeline == r->cap_timeline) {
    size_t cap = r->cap_timeline ? r->cap_timeline * 2 : 4096;
    struct replay_slice *grown = realloc(r->timeline, cap * sizeof *grown);
    if (!grown) {
      r->timeline_dropped++;
      return;
    }
    r->timeline = grown;
    r->cap_timeline = cap;
  }
  r->timeline[r->n_timeline++] = (struct replay_slice){
      .ts = d->ts, .duration = d->duration, .cb = d->cb, .tid = tid, .library = library,
      .slot = (uint16_t)d->h.aux, .origin = timeline_origin(r, obj)};
}

double loopsan_replay_mono_us(const struct loopsan_replay *r, uint64_t ts) {
  double per_ns = (double)(r->ticks_per_sec ? r->ticks_per_sec : 1000000000u) / 1e9;
  if (!r->clock_mono_ns)
    return (double)ts / per_ns / 1000.0;
  return ((double)r->clock_mono_ns + ((double)ts - (double)r->clock_ts) / per_ns) / 1000.0;
}

/* ---- callback sites ---- */

struct replay_site *loopsan_replay_site(struct loopsan_replay *r, uint64_t cb, uint16_t library) {
  for (size_t i = 0; i < r->n_sites; i++) /* a program has tens of callback sites */
    if (r->sites[i].cb == cb && r->sites[i].library == library)
      return &r->sites[i];
  if (r->n_sites == r->cap_sites) {
    size_t cap = r->cap_sites ? r->cap_sites * 2 : 64;
    struct replay_site *grown = realloc(r->sites, cap * sizeof *grown);
    if (!grown) {
      r->failed = 1;
      return NULL;
    }
    r->sites = grown;
    r->cap_sites = cap;
  }
  struct replay_site *s = &r->sites[r->n_sites++];
  memset(s, 0, sizeof *s);
  s->cb = cb;
  s->library = library;
  return s;
}

static void on_histogram(struct loopsan_replay *r, const struct loopsan_record_header *rec) {
  struct loopsan_rec_histogram h;
  memcpy(&h, rec, sizeof h);
  struct replay_site *s = loopsan_replay_site(r, h.cb, h.library);
  if (!s)
    return;
  s->slot = (uint16_t)h.h.aux;
  s->count += h.count;
  s->total += h.total;
  if (h.max > s->max)
    s->max = h.max;
  for (unsigned i = 0; i < LOOPSAN_HIST_BUCKETS; i++)
    s->buckets[i] += h.buckets[i];
}

/* An object's callback: its site learns where such objects are made. */
static void site_made(struct loopsan_replay *r, const struct replay_object *o, uint64_t cb) {
  if (!cb || !o->stack)
    return;
  struct replay_site *s = loopsan_replay_site(r, cb, o->library);
  if (s && !s->stack)
    s->stack = o->stack;
}

/* The last objects that ended, kept for a misuse that comes after the
 * end (a call on a closed handle, a freed event): its type, callback and
 * creation stack. Bounded. */
static void keep_ended(struct loopsan_replay *r, struct replay_object *o) {
  size_t at = r->ended_next++ % REPLAY_ENDED_RING;
  free(r->ended_objects[at]);
  r->ended_objects[at] = o;
}

const struct replay_object *loopsan_replay_ended_object(const struct loopsan_replay *r,
                                                        uint64_t id) {
  for (size_t i = 0; i < REPLAY_ENDED_RING; i++)
    if (r->ended_objects[i] && r->ended_objects[i]->id == id)
      return r->ended_objects[i];
  return NULL;
}

static void forget_object(struct loopsan_replay *r, uint64_t id) {
  if (!r->cap_objects)
    return;
  size_t mask = r->cap_objects - 1, i = object_slot(r, id);
  if (!r->objects[i])
    return;
  keep_ended(r, r->objects[i]);
  r->objects[i] = NULL;
  r->n_objects--;
  /* Backward-shift: move later members of the cluster into the hole. */
  for (size_t j = (i + 1) & mask; r->objects[j]; j = (j + 1) & mask) {
    size_t home = mix(r->objects[j]->id) & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) {
      r->objects[i] = r->objects[j];
      r->objects[j] = NULL;
      i = j;
    }
  }
}

static struct replay_count *count_of(struct loopsan_replay *r, uint16_t library, uint16_t type) {
  for (size_t i = 0; i < r->n_counts; i++)
    if (r->counts[i].library == library && r->counts[i].type == type)
      return &r->counts[i];
  struct replay_count *t = realloc(r->counts, (r->n_counts + 1) * sizeof *t);
  if (!t) {
    r->failed = 1;
    return NULL;
  }
  r->counts = t;
  r->counts[r->n_counts] = (struct replay_count){.library = library, .type = type};
  return &r->counts[r->n_counts++];
}

static void new_object(struct loopsan_replay *r, const struct loopsan_rec_obj_new *rec,
                       uint32_t tid) {
  /* The 48-byte form (formats 1 and 2) has no parent: it reads as 0. */
  struct loopsan_rec_obj_new full;
  memset(&full, 0, sizeof full);
  memcpy(&full, rec, rec->h.size < sizeof full ? rec->h.size : sizeof full);
  const struct loopsan_rec_obj_new *n = &full;
  struct replay_object *o = loopsan_replay_object(r, n->obj);
  if (!o) {
    if ((r->n_objects + 1) * 2 > r->cap_objects && objects_grow(r) != 0) {
      r->failed = 1;
      return;
    }
    o = calloc(1, sizeof *o);
    if (!o) {
      r->failed = 1;
      return;
    }
    r->objects[object_slot(r, n->obj)] = o;
    r->n_objects++;
  }
  o->id = n->obj;
  o->loop = n->loop;
  o->address = n->address;
  o->created_ts = n->ts;
  o->stack = n->stack;
  o->tid = tid;
  o->library = n->library;
  o->type = n->type;
  o->flags = n->h.aux;
  /* Made in a callback: its chain is that callback's object, then that
   * object's own chain. */
  o->n_chain = 0;
  const struct replay_object *p = n->parent ? loopsan_replay_object(r, n->parent) : NULL;
  if (p && p != o) {
    o->chain[0] = (struct replay_link){p->main_cb, p->address, p->stack, p->library, p->type};
    o->n_chain = 1;
    for (unsigned i = 0; i < p->n_chain && o->n_chain < REPLAY_CHAIN; i++)
      o->chain[o->n_chain++] = p->chain[i];
  }
  r->objects_seen++;
  if (n->library < 32)
    r->libraries_seen |= 1u << n->library;
  struct replay_count *c = count_of(r, n->library, n->type);
  if (c)
    c->seen_created++;
}

const struct replay_type *loopsan_replay_type(const struct loopsan_replay *r, uint16_t library,
                                              uint16_t type) {
  for (size_t i = 0; i < r->n_types; i++)
    if (r->types[i].library == library && r->types[i].type == type)
      return &r->types[i];
  return NULL;
}

/* ---- raw findings, merged by (kind, type, callback, creation stack) ---- */

static uint64_t finding_key(const struct raw_finding *f) {
  return mix((uint64_t)f->kind * 0x9E3779B97F4A7C15u ^ mix(f->cb) ^
             ((uint64_t)f->created_stack << 20) ^ mix((uint64_t)f->library << 16 | f->detail) ^
             (uint64_t)strlen(f->type_name));
}

static int same_finding(const struct raw_finding *a, const struct raw_finding *b) {
  return a->kind == b->kind && a->cb == b->cb && a->created_stack == b->created_stack &&
         a->library == b->library && a->detail == b->detail && a->also == b->also &&
         a->result == b->result && strcmp(a->type_name, b->type_name) == 0 &&
         strcmp(a->call, b->call) == 0;
}

void loopsan_replay_report(struct loopsan_replay *r, const struct raw_finding *f) {
  if ((r->n_findings + 1) * 2 > r->cap_findings) {
    size_t cap = r->cap_findings ? r->cap_findings * 2 : 64;
    struct raw_finding *t = calloc(cap, sizeof *t);
    if (!t) {
      r->failed = 1;
      return;
    }
    for (size_t i = 0; i < r->cap_findings; i++) {
      if (!r->findings[i].count)
        continue;
      size_t j = finding_key(&r->findings[i]) & (cap - 1);
      while (t[j].count)
        j = (j + 1) & (cap - 1);
      t[j] = r->findings[i];
    }
    free(r->findings);
    r->findings = t;
    r->cap_findings = cap;
  }
  size_t j = finding_key(f) & (r->cap_findings - 1);
  for (; r->findings[j].count; j = (j + 1) & (r->cap_findings - 1)) {
    struct raw_finding *e = &r->findings[j];
    if (same_finding(e, f)) {
      e->count += f->count ? f->count : 1;
      if (f->max_duration > e->max_duration) {
        e->max_duration = f->max_duration;
        e->stack = f->stack;
        e->tid = f->tid;
        e->address = f->address;
      }
      return;
    }
  }
  r->findings[j] = *f;
  if (!r->findings[j].count)
    r->findings[j].count = 1;
  r->n_findings++;
}

/* ---- records ---- */

static char *dup_bytes(const void *p, size_t n) {
  char *s = malloc(n + 1);
  if (s) {
    memcpy(s, p, n);
    s[n] = '\0';
  }
  return s;
}

static void on_process(struct loopsan_replay *r, const struct loopsan_rec_process *p) {
  const char *tail = (const char *)(p + 1);
  free(r->exe);
  free(r->argv);
  r->exe = dup_bytes(tail, p->exe_len);
  r->argv = dup_bytes(tail + p->exe_len, p->argv_len);
  r->argv_len = p->argv_len;
  r->argc = p->argc;
  r->pid = p->pid;
  r->ppid = p->ppid;
  r->slow_ns = p->slow_ns;
  r->blocking_ns = p->blocking_ns;
  if (!r->threshold_ns)
    r->threshold_ns = p->slow_ns;
  r->have_process = 1;
}

static void on_module(struct loopsan_replay *r, const struct loopsan_rec_module *m) {
  const char *tail = (const char *)(m + 1);
  for (size_t i = 0; i < r->n_modules; i++)
    if (r->modules[i].bias == m->bias && r->modules[i].start == m->start)
      return; /* re-emitted map: already known */
  if (r->n_modules == r->cap_modules) {
    size_t cap = r->cap_modules ? r->cap_modules * 2 : 32;
    struct replay_module *t = realloc(r->modules, cap * sizeof *t);
    if (!t) {
      r->failed = 1;
      return;
    }
    r->modules = t;
    r->cap_modules = cap;
  }
  struct replay_module *mod = &r->modules[r->n_modules];
  memset(mod, 0, sizeof *mod);
  mod->bias = m->bias;
  mod->start = m->start;
  mod->end = m->end;
  mod->build_id_len = m->build_id_len < sizeof mod->build_id ? m->build_id_len : 0;
  memcpy(mod->build_id, tail, mod->build_id_len);
  mod->path = dup_bytes(tail + m->build_id_len, m->path_len);
  if (!mod->path) {
    r->failed = 1;
    return;
  }
  r->n_modules++;
}

static void on_type(struct loopsan_replay *r, const struct loopsan_rec_type *t) {
  if (loopsan_replay_type(r, t->library, t->type))
    return;
  struct replay_type *grown = realloc(r->types, (r->n_types + 1) * sizeof *grown);
  if (!grown) {
    r->failed = 1;
    return;
  }
  r->types = grown;
  struct replay_type *e = &r->types[r->n_types++];
  e->library = t->library;
  e->type = t->type;
  e->kind = t->kind;
  size_t n = t->name_len < sizeof e->name - 1 ? t->name_len : sizeof e->name - 1;
  memcpy(e->name, t + 1, n);
  e->name[n] = '\0';
}

/* The set of object ids with orphans: most OBJ_NEW records have none, and
 * must not pay for a scan. Linear probing, backward-shift deletion. */
static int orphan_id_add(struct loopsan_replay *r, uint64_t id) {
  if (!r->cap_orphan_ids) {
    r->cap_orphan_ids = 2 * REPLAY_ORPHANS_MAX;
    r->orphan_ids = calloc(r->cap_orphan_ids, sizeof *r->orphan_ids);
    if (!r->orphan_ids) {
      r->cap_orphan_ids = 0;
      return -1;
    }
  }
  size_t mask = r->cap_orphan_ids - 1;
  for (size_t j = mix(id) & mask;; j = (j + 1) & mask) {
    if (r->orphan_ids[j] == id)
      return 0;
    if (!r->orphan_ids[j]) {
      r->orphan_ids[j] = id;
      return 0;
    }
  }
}

static int orphan_id_take(struct loopsan_replay *r, uint64_t id) {
  if (!r->cap_orphan_ids)
    return 0;
  size_t mask = r->cap_orphan_ids - 1, i = mix(id) & mask;
  while (r->orphan_ids[i] != id) {
    if (!r->orphan_ids[i])
      return 0;
    i = (i + 1) & mask;
  }
  r->orphan_ids[i] = 0;
  for (size_t j = (i + 1) & mask; r->orphan_ids[j]; j = (j + 1) & mask) {
    size_t home = mix(r->orphan_ids[j]) & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) {
      r->orphan_ids[i] = r->orphan_ids[j];
      r->orphan_ids[j] = 0;
      i = j;
    }
  }
  return 1;
}

/* Keep REC (about object OBJ, not yet known) for when its OBJ_NEW comes. */
static void keep_orphan(struct loopsan_replay *r, uint64_t obj,
                        const struct loopsan_record_header *rec, uint32_t tid) {
  if (r->replaying_orphans || rec->size > REPLAY_ORPHAN_MAX_SIZE ||
      r->n_orphans >= REPLAY_ORPHANS_MAX || orphan_id_add(r, obj) != 0) {
    r->orphans_dropped++;
    return;
  }
  if (r->n_orphans == r->cap_orphans) {
    size_t cap = r->cap_orphans ? r->cap_orphans * 2 : 64;
    struct replay_orphan *t = realloc(r->orphans, cap * sizeof *t);
    if (!t) {
      r->orphans_dropped++;
      return;
    }
    r->orphans = t;
    r->cap_orphans = cap;
  }
  struct replay_orphan *o = &r->orphans[r->n_orphans++];
  o->obj = obj;
  o->tid = tid;
  memcpy(o->rec, rec, rec->size);
}

/* OBJ now exists: replay what was kept about it, in file order. */
static void adopt_orphans(struct loopsan_replay *r, uint64_t obj) {
  if (!orphan_id_take(r, obj))
    return;
  size_t kept = 0;
  r->replaying_orphans = 1;
  for (size_t i = 0; i < r->n_orphans; i++) {
    if (r->orphans[i].obj == obj)
      loopsan_replay_record(r, (const void *)r->orphans[i].rec, r->orphans[i].tid);
    else
      r->orphans[kept++] = r->orphans[i];
  }
  r->n_orphans = kept;
  r->replaying_orphans = 0;
}

static void on_op(struct loopsan_replay *r, const struct loopsan_record_header *rec, uint32_t tid) {
  /* Short forms omit the trailing fields: they read as 0. */
  struct loopsan_rec_obj_op full;
  memset(&full, 0, sizeof full);
  memcpy(&full, rec, rec->size < sizeof full ? rec->size : sizeof full);
  const struct loopsan_rec_obj_op *op = &full;
  uint32_t code = LOOPSAN_OP_OF(op->h.aux);
  uint32_t arg = (uint32_t)LOOPSAN_ARG_OF(op->h.aux);
  struct replay_object *o = loopsan_replay_object(r, op->obj);
  if (!o) {
    /* Made on a thread whose chunk comes later, or before this trace
     * began (in a parent process): kept until the end, then dropped. */
    keep_orphan(r, op->obj, rec, tid);
    return;
  }
  switch (code) {
  case LOOPSAN_OP_START:
    o->used = 1;
    o->starts++;
    o->last_start_ts = op->ts;
    o->start_flags = arg;
    if (op->cb) {
      o->main_cb = op->cb;
      site_made(r, o, op->cb);
    }
    break;
  case LOOPSAN_OP_STOP: o->last_stop_ts = op->ts; break;
  case LOOPSAN_OP_USE:
  case LOOPSAN_OP_RUN: o->used = 1; break;
  case LOOPSAN_OP_CALLBACK:
    o->main_cb = op->cb;
    site_made(r, o, op->cb);
    break;
  case LOOPSAN_OP_SITE: site_made(r, o, op->cb); break;
  case LOOPSAN_OP_UNOBSERVED: loopsan_rules_unobserved_error(r, o, (int32_t)arg); break;
  case LOOPSAN_OP_ATTACH:
    o->loop = op->cb;
    o->used = 1;
    break;
  case LOOPSAN_OP_CLOSE:
    o->closing = 1;
    o->close_ts = op->ts;
    o->close_cb = op->cb;
    o->close_stack = op->stack; /* where it was closed (its call site), if recorded */
    break;
  case LOOPSAN_OP_FIRED:
    /* Its callback ran, so it was started, whatever the order in which
     * the threads' records arrive (started on one, run and ended on
     * another before the first wrote its records out). */
    o->last_fire_ts = op->ts;
    o->used = 1;
    break;
  case LOOPSAN_OP_CLOSED:
  case LOOPSAN_OP_COMPLETE:
    if (code == LOOPSAN_OP_COMPLETE) {
      o->last_fire_ts = op->ts;
      /* Failed, and it had no callback: nothing could see the error. One
       * cancelled (libuv: the program closed its stream first) was the
       * program's own doing. */
      if ((int32_t)arg < 0 && !o->main_cb &&
          !(o->library == LOOPSAN_LIB_UV && (int32_t)arg == -ECANCELED))
        loopsan_rules_unobserved_error(r, o, (int32_t)arg);
    }
    struct replay_count *c = count_of(r, o->library, o->type);
    if (c)
      c->seen_ended++;
    const struct replay_type *t = loopsan_replay_type(r, o->library, o->type);
    if (t && t->kind == LOOPSAN_OBJ_LOOP) {
      uint64_t *grown = realloc(r->ended_loops, (r->n_ended_loops + 1) * sizeof *grown);
      if (grown) {
        r->ended_loops = grown;
        r->ended_loops[r->n_ended_loops++] = o->id;
      }
    }
    if (code == LOOPSAN_OP_CLOSED && (arg & LOOPSAN_CLOSED_WITH_LOOP)) {
      /* Its loop ended around it: judged as if the process had ended. */
      o->ended_with_loop = 1;
      loopsan_rules_at_exit(r, o);
    } else {
      loopsan_rules_object_ended(r, o);
    }
    forget_object(r, o->id);
    break;
  default: break;
  }
}

static void on_api_error(struct loopsan_replay *r, const struct loopsan_rec_api_error *e,
                         uint32_t tid) {
  struct replay_object *o = loopsan_replay_object(r, e->obj);
  /* Format 1 traces have no flag: there the function's name tells. */
  const char *name = (const char *)(e + 1);
  int loop_close = (e->h.aux & LOOPSAN_APIERR_LOOP_CLOSE) ||
                   (e->name_len == 13 && memcmp(name, "uv_loop_close", 13) == 0);
  if (!loop_close) /* a loop that would not close: its handles' findings say why */
    loopsan_rules_api_error(r, o, e, tid);
  if (!o)
    return;
  /* A start that failed is not a start forgotten (uv_spawn of a missing
   * program): never-started is for objects nobody tried to use. */
  o->start_failed = 1;
  if (loop_close) {
    o->loop_close_failed = 1;
    o->loop_close_result = e->result;
    o->loop_close_stack = e->stack;
  }
}

static void add_count(struct loopsan_replay *r, uint16_t library, uint16_t type, uint64_t created,
                      uint64_t ended) {
  struct replay_count *c = count_of(r, library, type);
  if (!c)
    return;
  c->created = created > c->created ? created : c->created;
  c->ended = ended > c->ended ? ended : c->ended;
}

static void on_counts(struct loopsan_replay *r, const struct loopsan_rec_counts *c) {
  const unsigned char *tail = (const unsigned char *)(c + 1);
  for (unsigned l = 0; l < c->n_libraries; l++) {
    uint64_t n;
    memcpy(&n, tail + 8u * l, sizeof n);
    if (l < LOOPSAN_LIBRARY_SLOTS && n > r->dispatches[l])
      r->dispatches[l] = n;
  }
  tail += 8u * c->n_libraries;
  for (unsigned i = 0; i < c->n_types; i++) {
    struct loopsan_count e;
    memcpy(&e, tail + i * sizeof e, sizeof e);
    add_count(r, e.library, e.type, e.created, e.ended);
    if (e.created && e.library < 32)
      r->libraries_seen |= 1u << e.library;
  }
}

/* A callback that never returned: it did run (a request is no longer
 * pending, a timer did fire), and it may be a slow one. */
static void on_unfinished(struct loopsan_replay *r, const struct loopsan_rec_unfinished *u) {
  struct replay_object *o = loopsan_replay_object(r, u->obj);
  if (!o && u->obj && !r->replaying_orphans && r->n_orphans < REPLAY_ORPHANS_MAX) {
    keep_orphan(r, u->obj, &u->h, u->tid); /* judged when its object appears, or at the end */
    return;
  }
  if (!o) {
    loopsan_rules_unfinished(r, NULL, u, 0);
    return;
  }
  if (u->h.aux == 0 /* the main callback */) {
    o->completed = 1;
    if (u->ts > o->last_fire_ts)
      o->last_fire_ts = u->ts;
  }
  /* Judged with the object at the end: whatever else is wrong with it (a
   * handle never closed because its callback called exit()) is part of the
   * same finding. */
  if (!o->has_unfinished || u->end_ts - u->ts > o->unfinished.end_ts - o->unfinished.ts) {
    o->unfinished = *u;
    o->has_unfinished = 1;
  }
}

/* The timestamp a record carries, if any: the latest one tells how long a
 * killed process was seen alive. */
static uint64_t record_ts(const struct loopsan_record_header *rec) {
  /* Each of these has its ts at offset 8 (a dispatch or a blocking call:
   * start, then duration);
   * copied out, since a record found after a damaged region may sit at an
   * odd offset. */
  uint64_t ts = 0, duration = 0;
  switch (rec->type) {
  case LOOPSAN_REC_DISPATCH:
  case LOOPSAN_REC_BLOCKING: /* a call: start, then duration, as a dispatch */
    memcpy(&duration, (const char *)rec + 16, sizeof duration); /* fall through */
  case LOOPSAN_REC_CLOCK:
  case LOOPSAN_REC_OBJ_NEW:
  case LOOPSAN_REC_OBJ_OP:
  case LOOPSAN_REC_API_ERROR:
  case LOOPSAN_REC_WRONG_THREAD:
  case LOOPSAN_REC_CRASH:
  case LOOPSAN_REC_END: memcpy(&ts, (const char *)rec + 8, sizeof ts); return ts + duration;
  default: return 0;
  }
}

static struct replay_pairs *pairs_of(struct loopsan_replay *r, uint32_t tid) {
  for (size_t i = 0; i < r->n_pairs; i++)
    if (r->pairs[i].tid == tid)
      return &r->pairs[i];
  if (!r->pairs && !(r->pairs = calloc(REPLAY_PAIR_THREADS, sizeof *r->pairs)))
    return NULL;
  if (r->n_pairs == REPLAY_PAIR_THREADS) /* (reuse the oldest thread's) */
    r->n_pairs = 0;
  struct replay_pairs *p = &r->pairs[r->n_pairs++];
  memset(p, 0, sizeof *p);
  p->tid = tid;
  return p;
}

/* A DISPATCH record sets its thread's entry; a short one is read back
 * into FULL. -1: a short record naming nothing known (a chunk before it
 * was lost): skipped. */
static int dispatch_pairs(struct loopsan_replay *r, const struct loopsan_record_header *rec,
                          uint32_t tid, struct loopsan_rec_dispatch *full) {
  struct replay_pairs *p = pairs_of(r, tid);
  if (rec->type == LOOPSAN_REC_DISPATCH) {
    struct loopsan_rec_dispatch d;
    memcpy(&d, rec, sizeof d);
    if (p) {
      uint32_t i = loopsan_dispatch_pair_index(d.obj, d.cb, d.h.aux);
      p->e[i].obj = d.obj;
      p->e[i].cb = d.cb;
      p->e[i].slot = d.h.aux;
      p->e[i].set = 1;
      p->ts = d.ts;
      p->has_ts = 1;
    }
    return 0;
  }
  struct loopsan_rec_dispatch_short sd;
  memcpy(&sd, rec, sizeof sd);
  uint32_t i = (sd.h.aux >> 8) & (LOOPSAN_DISPATCH_PAIRS - 1u);
  if (!p || !p->has_ts || !p->e[i].set || p->e[i].slot != (sd.h.aux & 0xffu)) {
    r->bad_short++;
    return -1;
  }
  p->ts += sd.ts_delta;
  *full = (struct loopsan_rec_dispatch){
      .h = {.type = LOOPSAN_REC_DISPATCH, .size = sizeof *full, .aux = p->e[i].slot},
      .ts = p->ts,
      .duration = sd.duration,
      .obj = p->e[i].obj,
      .cb = p->e[i].cb};
  return 0;
}

int loopsan_replay_record(void *ctx, const struct loopsan_record_header *rec, uint32_t tid) {
  struct loopsan_replay *r = ctx;
  struct loopsan_rec_dispatch full;
  if (rec->type == LOOPSAN_REC_DISPATCH || rec->type == LOOPSAN_REC_DISPATCH_SHORT) {
    if (dispatch_pairs(r, rec, tid, &full) != 0)
      return 0;
    if (rec->type == LOOPSAN_REC_DISPATCH_SHORT)
      rec = &full.h; /* from here on, a DISPATCH like any */
  }
  uint64_t ts = record_ts(rec);
  if (ts > r->last_ts)
    r->last_ts = ts;
  switch (rec->type) {
  case LOOPSAN_REC_PROCESS: on_process(r, (const void *)rec); break;
  case LOOPSAN_REC_CLOCK: {
    const struct loopsan_rec_clock *c = (const void *)rec;
    if (c->ticks_per_sec)
      r->ticks_per_sec = c->ticks_per_sec;
    if (c->ts >= r->clock_ts) {
      r->clock_ts = c->ts;
      r->clock_mono_ns = c->mono_ns;
    }
    break;
  }
  case LOOPSAN_REC_MODULE: on_module(r, (const void *)rec); break;
  case LOOPSAN_REC_STACK: add_stack(r, (const void *)rec); break;
  case LOOPSAN_REC_TYPE: on_type(r, (const void *)rec); break;
  case LOOPSAN_REC_OBJ_NEW: {
    const struct loopsan_rec_obj_new *n = (const void *)rec;
    new_object(r, n, tid);
    if (r->n_orphans && !r->replaying_orphans)
      adopt_orphans(r, n->obj);
    break;
  }
  case LOOPSAN_REC_OBJ_OP: on_op(r, rec, tid); break;
  case LOOPSAN_REC_DISPATCH: {
    const struct loopsan_rec_dispatch *d = (const void *)rec;
    struct replay_object *o = loopsan_replay_object(r, d->obj);
    if (!o && d->obj && !r->replaying_orphans && r->n_orphans < REPLAY_ORPHANS_MAX)
      keep_orphan(r, d->obj, rec, tid); /* judged when its object appears, or at the end */
    else
      loopsan_rules_dispatch(r, o, d, tid);
    break;
  }
  case LOOPSAN_REC_API_ERROR: on_api_error(r, (const void *)rec, tid); break;
  case LOOPSAN_REC_COUNTS: on_counts(r, (const void *)rec); break;
  case LOOPSAN_REC_UNFINISHED: on_unfinished(r, (const void *)rec); break;
  case LOOPSAN_REC_BLOCKING: loopsan_rules_blocking(r, (const void *)rec, tid); break;
  case LOOPSAN_REC_HISTOGRAM: on_histogram(r, rec); break;
  case LOOPSAN_REC_CRASH:
    if (!r->has_crash) { /* the first is what the process died of */
      memcpy(&r->crash, rec, sizeof r->crash);
      r->has_crash = 1;
    }
    break;
  case LOOPSAN_REC_MISUSE: {
    const struct loopsan_rec_misuse *m = (const void *)rec;
    const struct replay_object *o = loopsan_replay_object(r, m->obj);
    loopsan_rules_misuse(r, o ? o : loopsan_replay_ended_object(r, m->obj), m, tid);
    break;
  }
  case LOOPSAN_REC_WRONG_THREAD: {
    const struct loopsan_rec_wrong_thread *w = (const void *)rec;
    uint64_t about = w->obj ? w->obj : w->loop;
    if (about && !loopsan_replay_object(r, about) && !r->replaying_orphans &&
        r->n_orphans < REPLAY_ORPHANS_MAX && rec->size <= REPLAY_ORPHAN_MAX_SIZE)
      keep_orphan(r, about, rec, tid); /* made on the loop's thread, written later */
    else
      loopsan_rules_wrong_thread(r, w, tid);
    break;
  }
  case LOOPSAN_REC_LOST: {
    const struct loopsan_rec_lost *l = (const void *)rec;
    r->lost[l->h.aux < 8 ? l->h.aux : 0] += l->records;
    break;
  }
  case LOOPSAN_REC_END: {
    const struct loopsan_rec_end *e = (const void *)rec;
    r->ended = 1;
    r->end_how = e->how;
    if (e->status >= 0)
      r->end_status = e->status;
    break;
  }
  default: break;
  }
  return 0;
}

uint64_t loopsan_replay_ts_of_mono(const struct loopsan_replay *r, uint64_t mono_ns) {
  if (!r->clock_mono_ns || mono_ns < r->clock_mono_ns)
    return r->last_ts;
  double ticks = (double)(mono_ns - r->clock_mono_ns) * (double)r->ticks_per_sec / 1e9;
  uint64_t ts = r->clock_ts + (uint64_t)ticks;
  return ts > r->last_ts ? ts : r->last_ts;
}

void loopsan_replay_spill_header(struct loopsan_replay *r, const struct loopsan_spill_header *h,
                                 uint64_t end_ts) {
  for (uint32_t i = 0; i < h->depth && i < LOOPSAN_INFLIGHT_MAX; i++) {
    const struct loopsan_inflight *f = &h->inflight[i];
    if (!f->obj)
      continue;
    struct loopsan_rec_unfinished u = {
        .h = {.type = LOOPSAN_REC_UNFINISHED, .size = sizeof u, .aux = f->slot},
        .ts = f->t0,
        .end_ts = end_ts ? end_ts : r->last_ts,
        .obj = f->obj,
        .cb = f->cb,
        .tid = h->tid,
        .library = (uint16_t)f->library,
        .how = end_ts ? LOOPSAN_END_KILLED : REPLAY_END_KILLED_UNTIMED,
    };
    if (u.end_ts < u.ts)
      u.end_ts = u.ts;
    r->last_cb = u.cb;
    r->last_cb_ticks = u.end_ts - u.ts;
    r->last_cb_timed = end_ts != 0;
    on_unfinished(r, &u);
  }
}

void loopsan_replay_spill_counts(struct loopsan_replay *r, const uint64_t *dispatches) {
  for (unsigned l = 0; l < LOOPSAN_LIBRARY_SLOTS; l++)
    if (dispatches[l] > r->dispatches[l])
      r->dispatches[l] = dispatches[l];
}

void loopsan_replay_finish(struct loopsan_replay *r) {
  loopsan_rules_crash(r);
  /* Slow dispatches of objects never seen are still slow; other orphans
   * (uses of objects from before this trace) tell nothing. */
  r->replaying_orphans = 1;
  for (size_t i = 0; i < r->n_orphans; i++) {
    const struct loopsan_record_header *h = (const void *)r->orphans[i].rec;
    if (h->type == LOOPSAN_REC_DISPATCH)
      loopsan_rules_dispatch(r, NULL, (const void *)h, r->orphans[i].tid);
    else if (h->type == LOOPSAN_REC_UNFINISHED)
      loopsan_rules_unfinished(r, NULL, (const void *)h, 0);
    else if (h->type == LOOPSAN_REC_WRONG_THREAD)
      loopsan_rules_wrong_thread(r, (const void *)h, r->orphans[i].tid);
  }
  r->n_orphans = 0;
  if (r->orphan_ids)
    memset(r->orphan_ids, 0, r->cap_orphan_ids * sizeof *r->orphan_ids);
  for (size_t i = 0; i < r->cap_objects; i++) {
    const struct replay_object *o = r->objects[i];
    if (!o)
      continue;
    /* (records lost to a full disk may have closed it: no judging then) */
    if (r->ended && !r->lost[LOOPSAN_LOST_WRITE_FAILED]) {
      loopsan_rules_at_exit(r, o);
    } else {
      /* Killed (or crashed): it never got to clean up, so what it had
       * open is no leak. It is counted for the report's notes; a callback
       * it was stuck in is still reported. */
      if (o->has_unfinished)
        loopsan_rules_unfinished(r, o, &o->unfinished, 0);
      const struct replay_type *t = loopsan_replay_type(r, o->library, o->type);
      r->open_at_end[t && t->kind < 5 ? t->kind : 0]++;
    }
  }
  /* Blocking calls of dispatches that were not slow (or are not known to
   * have been): findings of their own. */
  loopsan_rules_blocking_flush(r);
}
