# python3-gi, clean: idle, timeout, fd watch and child watch sources from
# Python, each finished or removed; the program checks what ran.
import os
import subprocess
import sys

from gi.repository import GLib

loop = GLib.MainLoop()
ran = {"idle": 0, "tick": 0, "fd": 0, "child": 0}
r, w = os.pipe()


def on_idle():
    ran["idle"] += 1
    return ran["idle"] < 3


def on_tick():
    ran["tick"] += 1
    if ran["tick"] == 1:
        os.write(w, b"x")
    return ran["tick"] < 4


def on_fd(fd, cond):
    os.read(fd, 1)
    ran["fd"] += 1
    return GLib.SOURCE_REMOVE


def on_child(pid, status):
    ran["child"] += 1


def quit_later():
    loop.quit()
    return GLib.SOURCE_REMOVE


GLib.idle_add(on_idle)
GLib.timeout_add(5, on_tick)
GLib.unix_fd_add_full(GLib.PRIORITY_DEFAULT, r, GLib.IOCondition.IN, on_fd)
never = GLib.timeout_add_seconds(3600, on_tick)
pid, _, _, _ = GLib.spawn_async(["/bin/true"], flags=GLib.SpawnFlags.DO_NOT_REAP_CHILD)
GLib.child_watch_add(GLib.PRIORITY_DEFAULT, pid, on_child)
GLib.timeout_add(150, quit_later)
loop.run()
GLib.source_remove(never)
print(ran)
sys.exit(0 if ran == {"idle": 3, "tick": 4, "fd": 1, "child": 1} else 1)
