// Shared helpers for the compat scripts. Plain Node ESM, no build step.
//
// Conventions every long-running script follows (so a Rust harness can drive them):
//   * binds 127.0.0.1 only, port from env PORT (default 0 = ephemeral);
//   * prints exactly ONE line of JSON on stdout once it is listening: {"ready":true,"port":N,"url":"http://127.0.0.1:N",...};
//   * all logs go to stderr;
//   * exits cleanly on SIGTERM/SIGINT or when stdin is closed (so a dying parent never leaks it).
import { serializeError } from '@backstage/errors';

export const HOST = '127.0.0.1';

export function log(...args) {
  process.stderr.write(`[${new Date().toISOString()}] ${args.join(' ')}\n`);
}

/**
 * Listen on 127.0.0.1:$PORT (0 = ephemeral) and print the ready line.
 * `extra` may be an object or a (possibly async) function of the base URL returning more fields.
 */
export async function listenAndAnnounce(server, extra = {}) {
  const port = Number(process.env.PORT ?? 0);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, resolve);
  });
  const actual = server.address().port;
  const url = `http://${HOST}:${actual}`;
  const more = typeof extra === 'function' ? await extra(url) : extra;
  const info = { ready: true, port: actual, url, ...more };
  process.stdout.write(`${JSON.stringify(info)}\n`);
  installShutdown(server);
  return info;
}

function installShutdown(server) {
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
    setTimeout(() => process.exit(0), 500).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Parent closed our stdin (e.g. the Rust test dropped the Child with a piped stdin): stop.
  if (process.env.EXIT_ON_STDIN_EOF !== '0' && !process.stdin.isTTY) {
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume();
  }
}

/** HTTP status mapping of backend-defaults MiddlewareFactory.getStatusCode. */
export function statusCodeOf(error) {
  for (const field of ['statusCode', 'status']) {
    const s = error?.[field];
    if (typeof s === 'number' && (s | 0) === s && s >= 100 && s <= 599) return s;
  }
  switch (error?.name) {
    case 'NotModifiedError': return 304;
    case 'InputError': return 400;
    case 'AuthenticationError': return 401;
    case 'NotAllowedError': return 403;
    case 'NotFoundError': return 404;
    case 'ConflictError': return 409;
    case 'NotImplementedError': return 501;
    case 'ServiceUnavailableError': return 503;
    default: return 500;
  }
}

/** Body of backend-defaults MiddlewareFactory.error() (stack omitted, as outside NODE_ENV=development). */
export function errorEnvelope(error, method, url) {
  const statusCode = statusCodeOf(error);
  return {
    statusCode,
    body: {
      error: serializeError(error, { includeStack: false }),
      request: { method, url },
      response: { statusCode },
    },
  };
}

/** Express error middleware equivalent to MiddlewareFactory.error(). */
export function expressErrorHandler() {
  // eslint-disable-next-line no-unused-vars
  return (err, req, res, next) => {
    const { statusCode, body } = errorEnvelope(err, req.method, req.url);
    if (statusCode >= 500) log(`Request failed with status ${statusCode}:`, err?.stack ?? String(err));
    if (res.headersSent) return next(err);
    res.status(statusCode).json(body);
  };
}

/** Read a whole request body as a string. */
export function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', c => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
