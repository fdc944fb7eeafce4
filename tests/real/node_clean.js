// Node.js, clean: timers, a file read, an HTTP request over localhost;
// no iteration of its loop is slow.
const fs = require("fs");
const http = require("http");
let ticks = 0;
const timer = setInterval(() => { if (++ticks === 5) clearInterval(timer); }, 5);
fs.readFile(__filename, (err, data) => {
  if (err || !data.length) process.exitCode = 1;
});
const server = http.createServer((req, res) => res.end("pong"));
server.listen(0, "127.0.0.1", () => {
  http.get({ host: "127.0.0.1", port: server.address().port }, (res) => {
    let body = "";
    res.on("data", (c) => (body += c));
    res.on("end", () => {
      console.log("reply", body);
      if (body !== "pong") process.exitCode = 1;
      server.close();
    });
  });
});
