# Python's stdlib asyncio, clean: tasks that sleep and a TCP echo over
# localhost; the loop is timed by the generic layer and no iteration is
# slow. (No subprocess: its child watcher joins a thread on the loop's
# thread, a real if short blocking call.)
import asyncio
import sys


async def echo(reader, writer):
    data = await reader.read(100)
    writer.write(data)
    await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    replies = []
    for i in range(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping%d" % i)
        replies.append(await reader.read(100))
        writer.close()
        await asyncio.sleep(0.005)
    server.close()
    await server.wait_closed()
    return replies


replies = asyncio.run(main())
print(replies)
sys.exit(0 if replies == [b"ping%d" % i for i in range(5)] else 1)
