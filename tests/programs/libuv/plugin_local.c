/* Loads libuv the way a Python extension module does: this program does
 * not link libuv; it dlopen()s a plugin (plugin_uv.c) with RTLD_LOCAL, and
 * the plugin links libuv, so libuv is not in the global scope and
 * dlsym(RTLD_NEXT) cannot find it. Expected: slow-callback (callback
 * plugin_slow_tick, created in plugin_start_timer), unclosed-handle (an idle
 * handle created in plugin_open_leak) and unclosed-loop (created in
 * plugin_run), all attributed to libuv. Exit status: 0. With the argument
 * "unload" the plugin is dlclose()d as soon as it returns, well within the
 * second after which the shim would re-read the module map on its own: its
 * frames must still be named. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 64);
  if (n <= 0)
    return 1;
  path[n] = '\0';
  char *slash = strrchr(path, '/');
  strcpy(slash + 1, ".libs/libplugin_uv.so");
  void *plugin = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!plugin) {
    fprintf(stderr, "plugin_local: %s\n", dlerror());
    return 1;
  }
  int (*run)(void) = (int (*)(void))dlsym(plugin, "plugin_run");
  int rc = run ? run() : 1;
  if (argc > 1 && strcmp(argv[1], "unload") == 0 && dlclose(plugin) != 0)
    rc = 1;
  return rc;
}
