/* Why a program under `loopsan run` left no trace: said in the report, as
 * valgrind says why it cannot run a program, instead of an empty report. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cli/cli.h"

/* PROGRAM as execvp finds it (PATH when it has no '/'), into PATH_OUT. */
static int find_program(const char *program, char *path_out, size_t len) {
  if (strchr(program, '/')) {
    snprintf(path_out, len, "%s", program);
    return access(path_out, X_OK);
  }
  const char *search = getenv("PATH");
  if (!search)
    search = "/usr/local/bin:/usr/bin:/bin";
  while (*search) {
    const char *colon = strchr(search, ':');
    size_t n = colon ? (size_t)(colon - search) : strlen(search);
    snprintf(path_out, len, "%.*s/%s", (int)n, n ? search : ".", program);
    if (access(path_out, X_OK) == 0)
      return 0;
    search += n + (colon != NULL);
  }
  return -1;
}

/* 1: an ELF executable without a program interpreter (statically linked);
 * 0: dynamically linked, or not ELF (a script: its interpreter runs). */
static int is_static_elf(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  Elf64_Ehdr eh;
  int is_static = 0;
  if (read(fd, &eh, sizeof eh) == (ssize_t)sizeof eh && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
      eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_phentsize == sizeof(Elf64_Phdr) &&
      eh.e_phnum < 4096) {
    is_static = 1;
    for (unsigned i = 0; i < eh.e_phnum && is_static; i++) {
      Elf64_Phdr ph;
      if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + i * sizeof ph)) != (ssize_t)sizeof ph)
        is_static = 0;
      else if (ph.p_type == PT_INTERP)
        is_static = 0;
    }
  }
  close(fd);
  return is_static;
}

void loopsan_cli_why_unobserved(const char *program, const char *trace_dir, char *why, size_t len) {
  char path[PATH_MAX];
  struct stat st;
  struct statvfs vfs;
  if (find_program(program, path, sizeof path) == 0 && stat(path, &st) == 0) {
    /* (the loader's secure mode: its effective ids will differ from ours) */
    if ((st.st_mode & S_ISUID && st.st_uid != getuid()) ||
        (st.st_mode & S_ISGID && st.st_gid != getgid())) {
      snprintf(why, len,
               "nothing was observed: %s is set-user-ID or set-group-ID, and the dynamic loader "
               "ignores LD_PRELOAD in such programs (a security rule): loopsan cannot observe it",
               path);
      return;
    }
    if (is_static_elf(path)) {
      snprintf(why, len,
               "nothing was observed: %s is statically linked: with no dynamic loader, LD_PRELOAD "
               "cannot load loopsan into it (and no loop library can be interposed)",
               path);
      return;
    }
  }
  if (access(trace_dir, W_OK) != 0) {
    snprintf(why, len, "nothing was recorded: the trace directory %s is not writable (%s)",
             trace_dir, strerror(errno));
    return;
  }
  if (statvfs(trace_dir, &vfs) == 0 && vfs.f_bavail == 0) {
    snprintf(why, len, "nothing was recorded: the trace directory %s is on a full file system",
             trace_dir);
    return;
  }
  snprintf(why, len,
           "nothing was observed: '%s' wrote no trace; it may have cleared LD_PRELOAD from its "
           "environment before loading a loop library, or exec'ed a static or setuid program",
           program);
}
