# Python's stdlib asyncio: the coroutine given to asyncio.run() blocks
# before its first await (time.sleep(0.25) in its first step, which runs
# between the loop's first and second epoll waits).
import asyncio
import time


async def main():
    time.sleep(0.25)


asyncio.run(main())
print("done")
