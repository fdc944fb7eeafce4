# A gevent program (libev, loaded RTLD_LOCAL by gevent's extension module)
# whose greenlet blocks the hub for 200 ms with an unpatched time.sleep:
# reported as a slow libev timer callback (gevent_callback_timer, the
# callback through which the hub resumed the greenlet).
import time

import gevent


def blocker():
    gevent.sleep(0.05)
    time.sleep(0.2)  # blocks the hub: nothing else can run


def ticker():
    for _ in range(5):
        gevent.sleep(0.02)


gevent.joinall([gevent.spawn(blocker), gevent.spawn(ticker)])
print("done")
