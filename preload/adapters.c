/* The registry of library adapters: one row per library. A new library is
 * its adapter file(s) and a row here. */
#include "preload/adapter.h"

extern const struct loopsan_adapter loopsan__uv_adapter;
extern const struct loopsan_adapter loopsan__ev_adapter;
extern const struct loopsan_adapter loopsan__event_adapter;
extern const struct loopsan_adapter loopsan__glib_adapter;
extern const struct loopsan_adapter loopsan__sdevent_adapter;

const struct loopsan_adapter *const loopsan__adapters[] = {
    &loopsan__uv_adapter,
    &loopsan__ev_adapter,
    &loopsan__event_adapter,
    &loopsan__glib_adapter,
    &loopsan__sdevent_adapter,
};
const size_t loopsan__n_adapters = sizeof loopsan__adapters / sizeof loopsan__adapters[0];

void loopsan__adapters_register(void) {
  for (size_t i = 0; i < loopsan__n_adapters; i++)
    loopsan__register_types((uint8_t)loopsan__adapters[i]->library, loopsan__adapters[i]->types,
                            loopsan__adapters[i]->n_types);
}
