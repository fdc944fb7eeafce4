"""The asyncio counterparts of bench_idle, bench_timers and bench_pingpong,
for the ratio asyncio's own debug mode (PYTHONASYNCIODEBUG=1) costs a
Python program, printed beside the ratio loopsan costs a C one.

Usage: python3 asyncio_bench.py idle|timers|pingpong [N]
Prints one line: ns_per_op=<float>
"""
import asyncio
import sys
import time


async def idle(n):
    # call_soon callbacks, each scheduling the next: one handle per iteration
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    count = 0

    def tick():
        nonlocal count
        count += 1
        if count == n:
            done.set_result(None)
        else:
            loop.call_soon(tick)

    loop.call_soon(tick)
    await done


async def timers(n):
    # a timer made, scheduled and cancelled, n times (as bench_timers does
    # init + start + close)
    loop = asyncio.get_running_loop()
    for _ in range(n):
        loop.call_later(3600, lambda: None).cancel()
    await asyncio.sleep(0)


async def pingpong(n):
    async def echo(reader, writer):
        while data := await reader.read(4096):
            writer.write(data)
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = b"x" * 64
    for _ in range(n):
        writer.write(payload)
        got = 0
        while got < len(payload):
            got += len(await reader.read(4096))
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


def main():
    work = {"idle": (idle, 300000), "timers": (timers, 300000), "pingpong": (pingpong, 20000)}
    fn, n = work[sys.argv[1]]
    if len(sys.argv) > 2:
        n = int(sys.argv[2])
    t0 = time.monotonic_ns()
    asyncio.run(fn(n))
    t1 = time.monotonic_ns()
    print("ns_per_op=%.3f" % ((t1 - t0) / n))


main()
