// pm2-http.js: the PM2 peer of cow-http for bench/rolling.py, run in PM2 cluster mode:
//
//   PORT=8000 pm2 start bench/pm2-http.js -i 8 --name web
//
// Every request (any method, any path) gets `200 OK`, `Connection: close` and the same body as
// cow-http, `pid <pid> worker <NODE_APP_INSTANCE> pm2\n`, so bench_httpload counts the pids that
// answered. In cluster mode PM2's God daemon is the cluster primary: it owns the listening
// socket and hands each accepted connection to a worker.
//
// Stopping, as PM2's graceful-shutdown guide recommends: on SIGINT (what `pm2 reload` and
// `pm2 stop` send) stop accepting (server.close), let the requests in flight finish, then exit 0.
// Every response closes its connection, so close() completes once those are done.
"use strict";
const http = require("http");

const port = Number(process.env.PORT || 8000);
const worker = process.env.NODE_APP_INSTANCE || process.env.pm_id || "0";
const body = `pid ${process.pid} worker ${worker} pm2\n`;

const server = http.createServer((req, res) => {
  res.writeHead(200, {
    "Content-Type": "text/plain",
    "Content-Length": Buffer.byteLength(body),
    Connection: "close",
  });
  res.end(body);
});
server.keepAliveTimeout = 0;

server.listen(port, "127.0.0.1");

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  server.close(() => process.exit(0));
  // Never outlive PM2's kill_timeout by much; PM2 SIGKILLs after it anyway.
  setTimeout(() => process.exit(0), 4000).unref();
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
