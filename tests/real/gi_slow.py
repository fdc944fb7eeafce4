# python3-gi (GLib through gobject-introspection): a timeout whose Python
# callback spins for 200 ms. GLib.timeout_add reaches g_timeout_add_full
# through g_module_symbol and libffi, never through the program's PLT.
import time

from gi.repository import GLib

loop = GLib.MainLoop()


def on_spin():
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.2:
        pass
    loop.quit()
    return GLib.SOURCE_REMOVE


GLib.timeout_add(10, on_spin)
loop.run()
print("done")
