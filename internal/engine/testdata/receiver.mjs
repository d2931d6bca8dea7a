// A webhook receiver on Node's http module with its default settings
// (keepAliveTimeout 5 s, as Express's app.listen uses): /ok answers 200,
// /redirect 302, /throttle 429, /error 500, /slow after 20 s. A second
// server reports how many connections the first has open. Prints both
// ports as one JSON line. With KEEP_ALIVE_MS set, the receiver closes
// idle connections after that long instead (gunicorn's default is 2 s).
import http from 'node:http';

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    switch (new URL(req.url, 'http://x').pathname) {
      case '/slow':
        setTimeout(() => { if (!res.destroyed) { res.writeHead(200); res.end('late'); } }, 20000).unref();
        return;
      case '/redirect':
        res.writeHead(302, { Location: '/ok' });
        res.end('Found. Redirecting to /ok');
        return;
      case '/throttle':
        res.writeHead(429, { 'Retry-After': '1' });
        res.end('slow down');
        return;
      case '/error':
        res.writeHead(500);
        res.end('oops');
        return;
      default:
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"ok":true}');
    }
  });
});
if (process.env.KEEP_ALIVE_MS) server.keepAliveTimeout = Number(process.env.KEEP_ALIVE_MS);
let open = 0;
server.on('connection', (s) => { open++; s.on('close', () => { open--; }); });
const admin = http.createServer((req, res) => res.end(String(open)));
server.listen(0, '127.0.0.1', () => {
  admin.listen(0, '127.0.0.1', () => {
    console.log(JSON.stringify({ port: server.address().port, admin: admin.address().port }));
  });
});
