// A C++ program whose libuv callback throws (on_throw): the exception
// unwinds through libuv's C frames and loopsan's to a catch around
// uv_run; the program then closes the timer and runs the loop again, with
// one slow callback (on_slow, 150 ms). loopsan must end the dispatch the
// exception cut short (not report a callback that "never returned" at
// exit), leave the loop run it unwound (later waits are libuv's again),
// and name the C++ functions demangled.
#include <cstdio>
#include <stdexcept>
#include <time.h>
#include <uv.h>

namespace app {
struct Timers {
  static void on_throw(uv_timer_t *) { throw std::runtime_error("boom"); }
  static void on_slow(uv_timer_t *t) {
    timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
      clock_gettime(CLOCK_MONOTONIC, &now);
    while ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 < 150);
    uv_close(reinterpret_cast<uv_handle_t *>(t), nullptr);
  }
};
} // namespace app

int main() {
  uv_loop_t *loop = uv_default_loop();
  static uv_timer_t thrower, slow;
  uv_timer_init(loop, &thrower);
  uv_timer_start(&thrower, app::Timers::on_throw, 1, 0);
  try {
    uv_run(loop, UV_RUN_DEFAULT);
  } catch (const std::exception &e) {
    std::printf("caught: %s\n", e.what());
  }
  uv_close(reinterpret_cast<uv_handle_t *>(&thrower), nullptr);
  uv_timer_init(loop, &slow);
  uv_timer_start(&slow, app::Timers::on_slow, 5, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_loop_close(loop) == 0 ? 0 : 1;
}
