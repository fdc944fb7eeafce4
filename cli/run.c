/* `loopsan run` and `loopsan report`: start the program with the shim
 * preloaded, wait for it while passing on the signals meant to stop it,
 * then analyse every trace it and its children wrote. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "analyzer/analyze.h"
#include "analyzer/suppress.h"
#include "cli/cli.h"
#include "cli/stalls.h"
#include "config.h"
#include "reports/report.h"

#ifndef LOOPSAN_PKGLIBDIR
#define LOOPSAN_PKGLIBDIR "/usr/local/lib/loopsan"
#endif

/* The shim: $LOOPSAN_SHIM, else next to this binary in a build tree, else
 * where `make install` put it, else ../lib/loopsan relative to the binary. */
static int find_shim(char *out, size_t n) {
  char exe[PATH_MAX], cand[PATH_MAX + 64];
  const char *env = getenv("LOOPSAN_SHIM");
  if (env && *env)
    return realpath(env, out) && n >= PATH_MAX ? 0 : -1;
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0)
    return -1;
  exe[len] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash)
    *slash = '\0';
  const char *fmts[] = {"%s/.libs/libloopsan.so", NULL, "%s/../lib/loopsan/libloopsan.so"};
  for (size_t i = 0; i < 3; i++) {
    if (fmts[i])
      snprintf(cand, sizeof cand, fmts[i], exe);
    else
      snprintf(cand, sizeof cand, "%s/libloopsan.so", LOOPSAN_PKGLIBDIR);
    if (access(cand, R_OK) == 0 && realpath(cand, out))
      return 0;
  }
  (void)n;
  return -1;
}

/* Names of the trace files already in DIR, so that a run analyses only
 * what it wrote itself (a --trace-dir may hold earlier runs). */
struct name_set {
  char **v;
  size_t n;
};

static void list_traces(const char *dir, struct name_set *set) {
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    if (!loopsan_is_trace_name(e->d_name))
      continue;
    char **t = realloc(set->v, (set->n + 1) * sizeof *t);
    if (!t)
      break;
    set->v = t;
    if ((set->v[set->n] = strdup(e->d_name)) != NULL)
      set->n++;
  }
  if (d)
    closedir(d);
}

static int in_set(const struct name_set *set, const char *name) {
  for (size_t i = 0; i < set->n; i++)
    if (strcmp(set->v[i], name) == 0)
      return 1;
  return 0;
}

static void free_set(struct name_set *set) {
  for (size_t i = 0; i < set->n; i++)
    free(set->v[i]);
  free(set->v);
  set->v = NULL;
  set->n = 0;
}

static int make_trace_dir(struct loopsan_cli *cli, char *err, size_t err_len) {
  if (cli->trace_dir_set) {
    if (mkdir(cli->shim.trace_dir, 0700) != 0 && errno != EEXIST) {
      snprintf(err, err_len, "--trace-dir %.900s: %s", cli->shim.trace_dir, strerror(errno));
      return -1;
    }
    return 0;
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(cli->shim.trace_dir, sizeof cli->shim.trace_dir, "%s/loopsan.XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(cli->shim.trace_dir)) {
    snprintf(err, err_len, "cannot create a trace directory in %s: %s", tmp && *tmp ? tmp : "/tmp",
             strerror(errno));
    return -1;
  }
  if (strchr(cli->shim.trace_dir, ':')) {
    snprintf(err, err_len, "TMPDIR may not contain ':' (%.900s)", cli->shim.trace_dir);
    return -1;
  }
  return 0;
}

static int set_environment(const struct loopsan_cli *cli, const char *shim, char *err,
                           size_t err_len) {
  char opts[LOOPSAN_PATH_MAX + 256];
  if (loopsan_options_format(&cli->shim, opts, sizeof opts) != 0) {
    snprintf(err, err_len, "options do not fit in LOOPSAN_OPTIONS");
    return -1;
  }
  const char *old = getenv("LD_PRELOAD");
  char *preload = NULL;
  if (asprintf(&preload, "%s%s%s", shim, old && *old ? " " : "", old && *old ? old : "") < 0)
    return -1;
  int rc = setenv("LD_PRELOAD", preload, 1) | setenv("LOOPSAN_OPTIONS", opts, 1);
  free(preload);
  return rc ? -1 : 0;
}

/* The report's destination, opened before the program runs so that a bad
 * -o is said at once, not after a long run. */
static FILE *open_output(const struct loopsan_cli *cli, FILE *default_out) {
  if (!cli->output)
    return default_out;
  FILE *out = fopen(cli->output, "we"); /* close-on-exec: never the program's fd */
  if (!out)
    fprintf(stderr, "loopsan: -o %s: %s\n", cli->output, strerror(errno));
  return out;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The --suppressions files, read (and a --baseline checked) before the
 * program runs, so that a bad one is said at once, not after a long run. */
static struct loopsan_suppressions suppressions;
static struct loopsan_baseline baseline;

static int load_filters(const struct loopsan_cli *cli) {
  char err[1024];
  for (int i = 0; i < cli->n_suppressions; i++)
    if (loopsan_suppressions_load(&suppressions, cli->suppressions[i], err, sizeof err) != 0) {
      fprintf(stderr, "loopsan: %s\n", err);
      return -1;
    }
  if (cli->baseline && loopsan_baseline_load(&baseline, cli->baseline, err, sizeof err) != 0) {
    fprintf(stderr, "loopsan: %s\n", err);
    return -1;
  }
  return 0;
}

/* Render R into OUT and work out the exit status: STATUS, or
 * --error-exitcode when a finding fails the --fail-on rules (suppressed
 * and baseline findings never do). */
/* Does the report's format draw a timeline (every callback's run)? */
static int wants_timeline(const struct loopsan_cli *cli) {
  return cli->format == LOOPSAN_FORMAT_CHROME || cli->format == LOOPSAN_FORMAT_HTML;
}

static int render(struct loopsan_cli *cli, struct loopsan_report *r, FILE *out, FILE *default_out,
                  int status) {
  loopsan_suppressions_apply(&suppressions, r);
  loopsan_baseline_mark(&baseline, r);
  const char *term = getenv("TERM");
  int tty = isatty(fileno(out)) && !getenv("NO_COLOR") && !(term && strcmp(term, "dumb") == 0);
  struct loopsan_render_options ro = {.tool_version = PACKAGE_VERSION,
                                      .color = cli->color == 1 || (cli->color == 0 && tty)};
  if (loopsan_render(r, (enum loopsan_format)cli->format, &ro, out) != 0)
    fprintf(stderr, "loopsan: could not write the report%s%s\n", cli->output ? " to " : "",
            cli->output ? cli->output : "");
  if (out != default_out)
    fclose(out);
  if (cli->gen_suppressions) /* never into the report: JSON, SARIF, ... would not parse */
    loopsan_suppressions_generate(r, stderr);
  loopsan_suppressions_free(&suppressions);
  loopsan_baseline_free(&baseline);
  if (cli->error_exitcode > 0)
    for (size_t i = 0; i < r->n_findings; i++)
      if (loopsan_finding_fails(&r->findings[i], cli->fail_on))
        return cli->error_exitcode;
  return status;
}

/* A trace directory loopsan made itself is removed when there was nothing
 * to report: valgrind leaves nothing behind either. */
static void remove_trace_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[PATH_MAX + 256];
  while (d && (e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "loopsan.", 8) != 0)
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  if (d)
    closedir(d);
  rmdir(dir);
}

/* Signals passed on to the program. */
static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Is SIG already pending for PID (a user's kill of the whole foreground
 * group)? Then a second copy would be one too many. */
static int pending_in(pid_t pid, int sig) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "re");
  int pending = 0;
  while (f && fgets(line, sizeof line, f)) {
    unsigned long long mask;
    if ((sscanf(line, "SigPnd: %llx", &mask) == 1 || sscanf(line, "ShdPnd: %llx", &mask) == 1) &&
        (mask & (1ull << (sig - 1))))
      pending = 1;
  }
  if (f)
    fclose(f);
  return pending;
}

/* Every process this front end reaped, for the analysis. */
struct reaped {
  struct loopsan_process_end *v;
  size_t n;
};

/* Reap whatever has ended; CHILD's status goes to *wstatus. Returns 0
 * while children remain, -1 when none is left. */
static int reap(struct reaped *r, pid_t child, int *wstatus, int *child_done) {
  pid_t w;
  int st;
  while (loopsan_stalls_take_reaped(&w, &st) || (w = waitpid(-1, &st, WNOHANG)) > 0) {
    if (w == child) {
      *wstatus = st;
      *child_done = 1;
    }
    struct loopsan_process_end *t = realloc(r->v, (r->n + 1) * sizeof *t);
    if (!t)
      continue;
    r->v = t;
    r->v[r->n++] = (struct loopsan_process_end){.pid = w,
                                                .signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0,
                                                .mono_ns = mono_ns(),
                                                .status = WIFEXITED(st) ? WEXITSTATUS(st) : -1};
  }
  return w < 0 && errno == ECHILD ? -1 : 0;
}

/* Keep the ends next to the traces, for a later `loopsan report`. */
static void save_ends(const char *dir, const struct reaped *r) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", dir, LOOPSAN_ENDS_FILE);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return;
  FILE *f = fdopen(fd, "a");
  if (!f) {
    close(fd);
    return;
  }
  for (size_t i = 0; i < r->n; i++)
    fprintf(f, "%d %d %llu %d\n", r->v[i].pid, r->v[i].signal, (unsigned long long)r->v[i].mono_ns,
            r->v[i].status);
  fclose(f);
}

/* Wait for CHILD, passing on each stop signal exactly once. At a terminal
 * the program shares our foreground group, so the terminal's ^C reaches
 * it directly (SI_KERNEL: not passed on). Elsewhere (CI, timeout(1), a
 * script) it has a group of its own, so that a group kill such as
 * timeout's reaches only us and is passed on once, to the program's whole
 * group as the kill would have reached it. Orphans that end meanwhile are
 * reaped as they go (we are their subreaper). */
static void wait_for_program(pid_t child, int own_group, const sigset_t *set, struct reaped *r,
                             int *wstatus, int *stopped) {
  int done = 0, last_signo = 0;
  pid_t last_sender = 0;
  uint64_t last_at = 0;
  for (;;) {
    if (reap(r, child, wstatus, &done) < 0 || done)
      return;
    siginfo_t si;
    /* Every 20 ms, a look at what the traced threads are running. */
    struct timespec tick = {0, 20000000};
    if (sigtimedwait(set, &si, &tick) < 0) {
      loopsan_stalls_tick();
      continue;
    }
    if (si.si_signo == SIGCHLD)
      continue;
    *stopped = 1;
    /* timeout(1) signals us and then its whole group, us again: one kill
     * meant once. The same signal from the same sender within 50 ms is
     * passed on once, as the kernel merges the two when both are pending
     * (as they are for a program timeout signals directly). */
    uint64_t now = mono_ns();
    int repeat = si.si_signo == last_signo && si.si_pid == last_sender && now - last_at < 50000000u;
    last_signo = si.si_signo;
    last_sender = si.si_pid;
    last_at = now;
    if (repeat)
      continue;
    if (own_group)
      kill(-child, si.si_signo);
    else if (si.si_code != SI_KERNEL && !pending_in(child, si.si_signo))
      kill(child, si.si_signo);
  }
}

/* The program is gone; descendants it left (orphans now, ours as
 * subreaper) may still be writing their traces: give them half a second to
 * end, two after a stop signal (they were signalled too). A daemon that
 * outlives that is reported as far as it got. */
static void reap_descendants(const sigset_t *set, struct reaped *r, int stopped) {
  uint64_t deadline = mono_ns() + (stopped ? 2000000000u : 500000000u);
  int ignored_status, ignored_done;
  while (reap(r, 0, &ignored_status, &ignored_done) == 0 && mono_ns() < deadline) {
    struct timespec tick = {0, 20000000};
    sigtimedwait(set, NULL, &tick);
  }
}

int loopsan_cmd_run(struct loopsan_cli *cli) {
  char err[1024], shim[PATH_MAX];
  if (find_shim(shim, sizeof shim) != 0) {
    fprintf(stderr,
            "loopsan: cannot find libloopsan.so (looked next to this program, in %s; "
            "set LOOPSAN_SHIM to its path)\n",
            LOOPSAN_PKGLIBDIR);
    return 2;
  }
  if (load_filters(cli) != 0)
    return 2;
  FILE *out = open_output(cli, stderr);
  if (!out)
    return 2;
  if (make_trace_dir(cli, err, sizeof err) != 0) {
    fprintf(stderr, "loopsan: %s\n", err);
    return 2;
  }
  struct name_set before = {0};
  if (cli->trace_dir_set)
    list_traces(cli->shim.trace_dir, &before);
  /* The signals that stop a run (timeout's SIGTERM, a CI job's cancel, the
   * terminal's ^C) are taken synchronously: blocked here, waited for below
   * with SIGCHLD, and unblocked in the child before exec. */
  sigset_t stop_set, old_mask;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGCHLD);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
    sigaddset(&stop_set, forwarded[i]);
  sigprocmask(SIG_BLOCK, &stop_set, &old_mask);
  /* Orphaned descendants (double-forked helpers) come back to us, so that
   * a stopped run can wait for them to write out their traces. */
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  int own_group = !(isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp());
  pid_t parent = getpid();
  fflush(NULL);
  pid_t child = fork();
  if (child < 0) {
    fprintf(stderr, "loopsan: fork: %s\n", strerror(errno));
    return 2;
  }
  if (child == 0) {
    if (own_group) {
      /* Away from group kills meant for the run (we pass them on); and
       * should loopsan itself be SIGKILLed, the program goes with it, as
       * it would have in the same group. */
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      if (getppid() != parent)
        _exit(128 + SIGKILL);
    }
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    if (set_environment(cli, shim, err, sizeof err) != 0) {
      fprintf(stderr, "loopsan: %s\n", err);
      _exit(127);
    }
    execvp(cli->args[0], cli->args);
    fprintf(stderr, "loopsan: cannot run '%s': %s\n", cli->args[0], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }
  if (own_group)
    setpgid(child, child); /* also here: no window where a kill of it misses */
  int wstatus = 0, stopped = 0;
  struct reaped reaped = {0};
  loopsan_stalls_init(cli->shim.trace_dir, cli->shim.slow_ms);
  wait_for_program(child, own_group, &stop_set, &reaped, &wstatus, &stopped);
  loopsan_stalls_done();
  reap_descendants(&stop_set, &reaped, stopped);
  save_ends(cli->shim.trace_dir, &reaped);
  int status = WIFSIGNALED(wstatus) ? 128 + WTERMSIG(wstatus) : WEXITSTATUS(wstatus);

  struct loopsan_report report = {0};
  struct loopsan_analyze_options ao = {.slow_ns = (uint64_t)cli->shim.slow_ms * 1000000u,
                                       .ends = reaped.v,
                                       .n_ends = reaped.n,
                                       .timeline = wants_timeline(cli)};
  struct name_set after = {0};
  list_traces(cli->shim.trace_dir, &after);
  char **paths = calloc(after.n + 1, sizeof *paths);
  size_t n_paths = 0;
  for (size_t i = 0; paths && i < after.n; i++)
    if (!in_set(&before, after.v[i]) &&
        asprintf(&paths[n_paths], "%s/%s", cli->shim.trace_dir, after.v[i]) >= 0)
      n_paths++;
  free_set(&before);
  free_set(&after);
  qsort(paths, n_paths, sizeof *paths, by_name); /* as `loopsan report` orders a directory */
  report.trace_dir = strdup(cli->shim.trace_dir);
  int analysed = n_paths > 0 && loopsan_analyze(paths, n_paths, &ao, &report, err, sizeof err) == 0;
  for (size_t i = 0; i < n_paths; i++)
    free(paths[i]);
  free(paths);
  free(reaped.v);
  if (!analysed) { /* a report all the same, that says why it is empty */
    char why[PATH_MAX + 256];
    if (status == 126 || status == 127)
      snprintf(why, sizeof why, "'%s' could not be run (said above)", cli->args[0]);
    else
      loopsan_cli_why_unobserved(cli->args[0], cli->shim.trace_dir, why, sizeof why);
    if (out != stderr || cli->format != LOOPSAN_FORMAT_TEXT)
      fprintf(stderr, "loopsan: %s\n", why);
    loopsan_report_add_note(&report.notes, &report.n_notes, "%s", why);
    if (!cli->trace_dir_set) {
      free(report.trace_dir);
      report.trace_dir = NULL;
    }
    int rc = render(cli, &report, out, stderr, status);
    if (!cli->trace_dir_set)
      remove_trace_dir(cli->shim.trace_dir);
    loopsan_report_free(&report);
    return rc;
  }
  for (size_t i = 0; i < report.n_processes; i++) {
    struct loopsan_process *p = &report.processes[i];
    if (p->pid != child || p->replaced_by_exec)
      continue;
    p->has_exit = 1;
    p->exit_signal = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
    p->exit_status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 0;
  }
  int keep = cli->trace_dir_set || report.n_findings > 0 || report.n_notes > 0;
  for (size_t i = 0; i < report.n_processes; i++)
    keep |= !report.processes[i].ended; /* killed or crashed: worth a look */
  if (!keep) {                          /* not named: it is about to go */
    free(report.trace_dir);
    report.trace_dir = NULL;
    for (size_t i = 0; i < report.n_processes; i++) {
      free(report.processes[i].trace);
      report.processes[i].trace = NULL;
    }
  }
  int rc = render(cli, &report, out, stderr, status);
  if (!keep)
    remove_trace_dir(cli->shim.trace_dir);
  loopsan_report_free(&report);
  return rc;
}

int loopsan_cmd_report(struct loopsan_cli *cli) {
  char err[1024];
  struct loopsan_report report = {0};
  struct loopsan_analyze_options ao = {
      .slow_ns = cli->slow_ms_set ? (uint64_t)cli->shim.slow_ms * 1000000u : 0,
      .timeline = wants_timeline(cli)};
  if (load_filters(cli) != 0)
    return 2;
  if (cli->n_args == 1)
    report.trace_dir = strdup(cli->args[0]);
  if (loopsan_analyze(cli->args, (size_t)cli->n_args, &ao, &report, err, sizeof err) != 0) {
    for (size_t i = 0; i < report.n_notes; i++)
      fprintf(stderr, "loopsan: %s\n", report.notes[i]);
    fprintf(stderr, "loopsan: %s\n", err);
    loopsan_report_free(&report);
    return 2;
  }
  FILE *out = open_output(cli, stdout);
  int rc = out ? render(cli, &report, out, stdout, 0) : 2;
  loopsan_report_free(&report);
  return rc;
}
