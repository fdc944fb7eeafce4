# A gevent TCP echo server and 20 clients on 127.0.0.1: nothing to report
# (the hub's own watchers live on the default loop, as long as the
# process), and libev observed.
import gevent
from gevent import server, socket


def handle(sock, addr):
    data = sock.recv(64)
    sock.sendall(data)
    sock.close()


srv = server.StreamServer(("127.0.0.1", 0), handle)
srv.start()
port = srv.server_port


def client(i):
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"ping%d" % i)
    assert c.recv(64) == b"ping%d" % i
    c.close()


gevent.joinall([gevent.spawn(client, i) for i in range(20)], raise_error=True)
srv.stop()
print("echoed 20")
