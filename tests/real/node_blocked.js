// Node.js (libuv built in, invisible to an interposer: the generic layer
// times its epoll loop): a setTimeout callback spins for 200 ms.
setTimeout(() => {
  const t0 = Date.now();
  while (Date.now() - t0 < 200) {}
}, 10);
setTimeout(() => console.log("done"), 50);
