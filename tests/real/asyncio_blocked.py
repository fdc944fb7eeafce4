# Python's stdlib asyncio (no adapter: the generic layer times its epoll
# loop): a coroutine calls time.sleep(0.2), blocking the loop in
# clock_nanosleep.
import asyncio
import time


async def blocker():
    await asyncio.sleep(0.01)
    time.sleep(0.2)


async def main():
    await asyncio.gather(blocker(), asyncio.sleep(0.05))


asyncio.run(main())
print("done")
