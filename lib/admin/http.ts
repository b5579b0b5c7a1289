// The admin HTTP API of one core: JSON views and POST actions an operator (or `curl`) reaches over
// HTTP, and the Prometheus metrics. adminHandler() is a request listener an MTA mounts in its own
// server; serveAdmin() starts one on loopback. Every bad request gets a 4xx with a JSON error and
// changes nothing; nothing a client sends can throw out of the handler.
//
//   GET  /summary                       core.summary()
//   GET  /domains/<name>                core.domainView(name)
//   GET  /domains/<name>/queue?binding=&queue=active|delayed&limit=&offset=   core.listQueue()
//   GET  /qshape?top=&minutes=5,10,...  core.qshape(): the queue by domain and age
//   GET  /metrics                       the Prometheus text format (core.metrics())
//   GET  /policies                      the policies attached (lib/policies) and what they hold
//   POST /suspend  { domain, binding?, durationMs? }   (durationMs: resumed after that long)
//   POST /resume   { domain, binding? }
//   POST /flush    { domain }          -> { moved }
//   POST /fail     { domain }          -> { failed }
//   POST /retry    { id }              -> { retried }
//   POST /config   the configuration   -> { configured: true }   core.configure(): refused whole
import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import type { MailQueueCore } from '../core.js';
import { MailQueueError } from '../errors.js';
import { policyStates } from '../policies/registry.js';
import { checkInt, checkKeys, checkObject, typeName } from '../validate.js';

export interface AdminOptions {
  /** When set, every request must carry `Authorization: Bearer <token>` (401 otherwise). */
  token?: string;
  /** Largest request body, bytes (default 65,536; 413 beyond). */
  maxBodyBytes?: number;
}

export interface ServeAdminOptions extends AdminOptions {
  /** Default 0: any free port. */
  port?: number;
  /** Default 127.0.0.1: loopback only. */
  host?: string;
}

export interface AdminServer {
  /** http://host:port */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const ADMIN_KEYS = new Set(['token', 'maxBodyBytes']);
const SERVE_KEYS = new Set(['token', 'maxBodyBytes', 'port', 'host']);

/** A refusal with its HTTP status. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function checkAdminOptions(o: AdminOptions, keys: ReadonlySet<string>): { token?: Buffer; maxBody: number } {
  checkKeys(checkObject(o, 'options'), keys, 'options', 'option');
  if (o.token !== undefined && (typeof o.token !== 'string' || o.token.length === 0))
    throw new TypeError(`options.token must be a non-empty string, got ${typeName(o.token)}`);
  const maxBody = o.maxBodyBytes === undefined ? 65_536 : checkInt(o.maxBodyBytes, 'options.maxBodyBytes', 0, 2 ** 30);
  return { token: o.token === undefined ? undefined : Buffer.from(o.token), maxBody };
}

function authorized(req: http.IncomingMessage, token: Buffer | undefined): boolean {
  if (token === undefined) return true;
  const h = req.headers.authorization;
  if (typeof h !== 'string' || !h.startsWith('Bearer ')) return false;
  const given = Buffer.from(h.slice(7));
  return given.length === token.length && timingSafeEqual(given, token);
}

/** The JSON body; an empty one reads as {} unless `what` names what it must be (then a 400). */
function readBody(req: http.IncomingMessage, max: number, what?: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const fail = (e: HttpError) => {
      if (done) return;
      done = true;
      reject(e);
    };
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        fail(new HttpError(413, `the request body is over ${max} bytes`));
        req.resume(); // read the rest without keeping it, so the reply can go out
        return;
      }
      if (!done) chunks.push(c);
    });
    req.on('error', () => fail(new HttpError(400, 'the request body could not be read')));
    req.on('end', () => {
      if (done) return;
      done = true;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '')
        return what === undefined ? resolve({}) : reject(new HttpError(400, `the request body must be ${what}`));
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new HttpError(400, 'the request body is not valid JSON'));
      }
    });
  });
}

/** The JSON body of an action: a plain object with only these keys. */
function fields(body: unknown, keys: string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new HttpError(400, 'the request body must be a JSON object');
  checkKeys(body, new Set(keys), 'body');
  return body as Record<string, unknown>;
}

function stringField(o: Record<string, unknown>, key: string): string {
  if (typeof o[key] !== 'string') throw new HttpError(400, `body.${key} must be a string, got ${typeName(o[key])}`);
  return o[key] as string;
}

function optionalInt(v: string | null, name: string, min: number, max: number): number | undefined {
  if (v === null) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max)
    throw new HttpError(400, `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return n;
}

/** The status of an error the core threw for bad input: 404 for what does not exist, else 400. */
function statusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  if (err instanceof MailQueueError)
    return err.code === 'ERR_UNKNOWN_DOMAIN'
      ? 404
      : err.code === 'ERR_CLOSED'
        ? 503
        : err.code === 'ERR_CONFIG'
          ? 400
          : 409;
  if (err instanceof TypeError || err instanceof RangeError) return 400;
  return 500;
}

/**
 * A request listener serving the core's admin API (see the routes above). Mount it in an MTA's own
 * HTTP server, or use serveAdmin().
 */
export function adminHandler(
  core: MailQueueCore,
  options: AdminOptions = {},
): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const { token, maxBody } = checkAdminOptions(options, ADMIN_KEYS);
  const timers = new Set<NodeJS.Timeout>();
  const send = (res: http.ServerResponse, status: number, body: unknown, type = 'application/json'): void => {
    const text = type === 'application/json' ? `${JSON.stringify(body)}\n` : String(body);
    res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!authorized(req, token)) {
      req.resume();
      res.setHeader('www-authenticate', 'Bearer');
      throw new HttpError(401, 'a valid bearer token is required');
    }
    const url = new URL(req.url ?? '/', 'http://admin');
    let parts: string[];
    try {
      parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      req.resume();
      throw new HttpError(400, 'the path is not valid percent-encoding');
    }
    const method = req.method ?? 'GET';
    const get = method === 'GET' || method === 'HEAD';
    if (get && parts.length === 1 && parts[0] === 'summary') return send(res, 200, core.summary());
    if (get && parts.length === 1 && parts[0] === 'metrics')
      return send(res, 200, await core.metrics().metrics(), core.metrics().contentType.split(';')[0]);
    if (get && parts[0] === 'domains' && parts.length === 2) return send(res, 200, core.domainView(parts[1]));
    if (get && parts.length === 1 && parts[0] === 'qshape') {
      const top = optionalInt(url.searchParams.get('top'), 'top', 0, 100_000);
      const m = url.searchParams.get('minutes');
      const minutes = m === null ? undefined : m.split(',').map((x) => (x.trim() === '' ? Number.NaN : Number(x)));
      return send(
        res,
        200,
        core.qshape({ ...(top === undefined ? {} : { top }), ...(minutes === undefined ? {} : { minutes }) }),
      );
    }
    if (get && parts.length === 1 && parts[0] === 'policies') return send(res, 200, { policies: policyStates(core) });
    if (get && parts[0] === 'domains' && parts.length === 3 && parts[2] === 'queue') {
      const q = url.searchParams;
      const queue = q.get('queue') ?? undefined;
      if (queue !== undefined && queue !== 'active' && queue !== 'delayed')
        throw new HttpError(400, `queue must be active or delayed, got ${JSON.stringify(queue)}`);
      const binding = q.get('binding') ?? undefined;
      const limit = optionalInt(q.get('limit'), 'limit', 1, 10_000);
      const offset = optionalInt(q.get('offset'), 'offset', 0, Number.MAX_SAFE_INTEGER);
      const listing = core.listQueue(parts[1], {
        ...(binding === undefined ? {} : { binding }),
        ...(queue === undefined ? {} : { queue }),
        ...(limit === undefined ? {} : { limit }),
        ...(offset === undefined ? {} : { offset }),
      });
      return send(res, 200, { messages: listing });
    }
    const actions = ['suspend', 'resume', 'flush', 'fail', 'retry', 'config'];
    if (parts.length === 1 && actions.includes(parts[0])) {
      if (method !== 'POST') {
        req.resume();
        res.setHeader('allow', 'POST');
        throw new HttpError(405, `${parts[0]} takes POST`);
      }
      // An empty body is no configuration (configure({}) would put every default back).
      const body = await readBody(req, maxBody, parts[0] === 'config' ? 'the configuration, a JSON object' : undefined);
      switch (parts[0]) {
        case 'config':
          core.configure(body as Parameters<MailQueueCore['configure']>[0]);
          return send(res, 200, { configured: true });
        case 'suspend': {
          const o = fields(body, ['domain', 'binding', 'durationMs']);
          const domain = stringField(o, 'domain');
          const binding = o.binding === undefined ? undefined : stringField(o, 'binding');
          const ms = o.durationMs === undefined ? undefined : checkInt(o.durationMs, 'body.durationMs', 1, 2 ** 31 - 1);
          core.suspend(domain, binding);
          if (ms !== undefined) {
            const t = setTimeout(() => {
              timers.delete(t);
              if (!core.closed) core.resume(domain, binding);
            }, ms);
            t.unref();
            timers.add(t);
          }
          return send(res, 200, { suspended: { domain, binding: binding ?? null, durationMs: ms ?? null } });
        }
        case 'resume': {
          const o = fields(body, ['domain', 'binding']);
          const domain = stringField(o, 'domain');
          const binding = o.binding === undefined ? undefined : stringField(o, 'binding');
          core.resume(domain, binding);
          return send(res, 200, { resumed: { domain, binding: binding ?? null } });
        }
        case 'flush':
          return send(res, 200, { moved: core.flush(stringField(fields(body, ['domain']), 'domain')) });
        case 'fail':
          return send(res, 200, { failed: core.fail(stringField(fields(body, ['domain']), 'domain')) });
        default: {
          const o = fields(body, ['id']);
          return send(res, 200, { retried: core.retry(o.id as number) });
        }
      }
    }
    req.resume();
    throw new HttpError(404, `no route ${method} ${url.pathname}`);
  }

  return (req, res) => {
    route(req, res).catch((err: unknown) => {
      const status = statusOf(err);
      const message = status === 500 ? 'internal error' : err instanceof Error ? err.message : String(err);
      const code = err instanceof MailQueueError ? err.code : undefined;
      if (!res.headersSent) send(res, status, { error: message, ...(code === undefined ? {} : { code }) });
      else res.destroy();
    });
  };
}

/** Starts the admin API on its own HTTP server (loopback by default). */
export async function serveAdmin(core: MailQueueCore, options: ServeAdminOptions = {}): Promise<AdminServer> {
  checkAdminOptions(options, SERVE_KEYS);
  const port = options.port === undefined ? 0 : checkInt(options.port, 'options.port', 0, 65535);
  const host = options.host ?? '127.0.0.1';
  if (typeof host !== 'string') throw new TypeError(`options.host must be a string, got ${typeName(host)}`);
  const { port: _p, host: _h, ...rest } = options;
  const server = http.createServer(adminHandler(core, rest));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shown}:${addr.port}`,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
