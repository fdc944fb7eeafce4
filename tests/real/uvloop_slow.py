# asyncio on python3-uvloop (libuv loaded RTLD_LOCAL by an extension module):
# a 250 ms call_later callback must show as a slow libuv timer callback.
import asyncio, time, uvloop

def busy():
    t = time.monotonic()
    while time.monotonic() - t < 0.25:
        pass

async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, busy)
    await asyncio.sleep(0.4)

uvloop.install()
asyncio.run(main())
print("uvloop done")
