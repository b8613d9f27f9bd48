// A fault proxy between a page and the dev server, run by the test in Node: the page's
// replica gets the proxy's URL, and the test decides what happens to each request
// (pass it, answer it with an error, drop the server's answer after the server acted,
// refuse it as a network failure) and counts what went through. It works the same in
// every engine, where browser-side request interception does not (Firefox's WebDriver
// BiDi interception hangs on `route.fetch()`; WebKit's WebDriver has none at all).
import { createServer, request as httpRequest } from 'node:http';
import { connect } from 'node:net';

/**
 * Start a proxy to `upstream` (the dev server's URL). `rule(req)` is asked for each
 * HTTP request (`{ method, url }`, the URL's path and query) and returns one of:
 * `'pass'`; `'drop-answer'` (the server gets the request, the page never gets the
 * answer); `'refuse'` (the connection is cut before anything is sent on); `'hold'`
 * (taken and never answered: a server that stopped answering);
 * `{ status, body }` (answered here, not sent on). Realtime's WebSocket passes, and
 * is cut with everything else by `cut()`.
 */
export async function startProxy(upstream) {
  const target = new URL(upstream);
  let rule = () => 'pass';
  const seen = [];
  const sockets = new Set();
  const srv = createServer((req, res) => {
    const action = rule({ method: req.method, url: req.url });
    seen.push({ method: req.method, url: req.url, action: typeof action === 'string' ? action : 'answer' });
    if (action === 'refuse') {
      req.socket.destroy();
      return;
    }
    if (action === 'hold') {
      req.resume(); // taken, never sent on, never answered, until the page goes away
      return;
    }
    if (typeof action === 'object') {
      req.resume();
      const origin = req.headers.origin ?? '*';
      res.writeHead(action.status, { 'content-type': 'text/plain', 'access-control-allow-origin': origin, 'access-control-expose-headers': '*' });
      res.end(action.body ?? '');
      return;
    }
    const up = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        if (action === 'drop-answer') {
          answer.resume();
          answer.on('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(answer.statusCode, answer.rawHeaders);
        answer.pipe(res);
      },
    );
    up.on('error', () => req.socket.destroy());
    // The page gave up on the request: so does the proxy (the server would otherwise
    // wait for the rest of a body that never comes).
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  });
  // Node closes an idle kept-alive connection after 5 s by default, and a browser that
  // sends a POST on it at that moment gets a network error it does not retry (Firefox):
  // a fault nobody asked for. Idle connections stay open, as the dev server keeps them.
  srv.keepAliveTimeout = 0;
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  srv.on('upgrade', (req, socket, head) => {
    seen.push({ method: req.method, url: req.url, action: 'upgrade' });
    if (rule({ method: 'UPGRADE', url: req.url }) === 'refuse') {
      socket.destroy();
      return;
    }
    const up = connect(Number(target.port), target.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(lines.join('\r\n') + '\r\n\r\n');
      if (head?.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    sockets.add(up);
    up.on('close', () => { sockets.delete(up); socket.destroy(); });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
    socket.on('close', () => up.destroy());
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    /** Decide each request from now on (see above); `null` passes everything. */
    set(f) {
      rule = f ?? (() => 'pass');
    },
    /** The requests seen so far that `pred` accepts. */
    requests(pred = () => true) {
      return seen.filter(pred);
    },
    /** Cut every open connection (the network went away for a moment). */
    cut() {
      for (const s of sockets) s.destroy();
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => srv.close(r));
    },
  };
}
