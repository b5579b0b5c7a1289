'use strict';
// The plugin's configuration: config/mail_queue_core.ini, as haraka-config parsed it (sections of
// key = value, integers and decimals already numbers), turned into the options of a MailQueueCore,
// its SmtpTransport and its store. Times are Haraka-style duration strings ("30s", "5m", "1h30m",
// "250ms"; a bare number is seconds). Every mistake is a TypeError or RangeError that names the
// file, the section and the key, thrown while Haraka loads the plugin, so a bad file stops Haraka
// before it accepts any mail.

const FILE = 'mail_queue_core.ini';

const UNIT_SECONDS = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/;

/** Seconds in a duration: a non-negative number (seconds) or a string such as "30s", "1h30m". */
function parseDuration(value, name) {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0)
      throw new RangeError(`${name} must be a duration of 0 or more, got ${value}`);
    return value;
  }
  if (typeof value !== 'string') throw new TypeError(`${name} must be a duration such as "30s", got ${typeof value}`);
  const text = value.trim().toLowerCase();
  if (/^\d+(?:\.\d+)?$/.test(text)) return Number(text);
  if (!DURATION.test(text)) {
    throw new RangeError(`${name} must be a duration such as "30s", "5m", "1h30m" or "250ms", got "${value}"`);
  }
  let seconds = 0;
  for (const [, n, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)) seconds += Number(n) * UNIT_SECONDS[unit];
  return seconds;
}

/** Milliseconds in a duration, an integer of at least `min`. */
function durationMs(value, name, min = 0) {
  const ms = Math.round(parseDuration(value, name) * 1000);
  if (ms < min) throw new RangeError(`${name} must be at least ${min} ms, got ${value}`);
  return ms;
}

// The core's options that are times, in seconds (docs/configuration.md): these take durations.
const CORE_SECONDS = new Set([
  'messageExpiration',
  'idleTimeout',
  'retryInterval',
  'maxRetryInterval',
  'hostFailureRetry',
  'delayedQueueScanInterval',
]);

/** A [global] or [domain NAME] section as a config scope of the core. The core checks the names and
 *  the values; here only durations become seconds and INI's true/false become booleans. */
function coreScope(section, where) {
  const scope = {};
  for (const [key, value] of Object.entries(section)) {
    if (CORE_SECONDS.has(key)) scope[key] = parseDuration(value, `${where} ${key}`);
    else if (value === 'true' || value === 'false') scope[key] = value === 'true';
    else scope[key] = value;
  }
  return scope;
}

/** "host:port", "[v6]:port" or "host" (port 25). */
function parseHost(text, name) {
  const s = String(text).trim();
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:\s]+)(?::(\d+))?$/.exec(s);
  const port = m?.[2] === undefined ? 25 : Number(m[2]);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`${name} must be host:port (a host name or address, a port from 1 to 65535), got "${s}"`);
  }
  return { host: m[1], port };
}

/** A route's hosts: one host or a comma-separated list, tried in order. */
function parseHosts(value, name) {
  const hosts = String(value)
    .split(',')
    .filter((h) => h.trim() !== '')
    .map((h, i) => parseHost(h, `${name} (host ${i + 1})`));
  if (hosts.length === 0) throw new RangeError(`${name} must name at least one host:port`);
  return hosts.length === 1 ? hosts[0] : hosts;
}

const MAIN_KEYS = [
  'spool',
  'store',
  'binding',
  'ehlo_name',
  'smart_host',
  'port',
  'delivery_timeout',
  'submit_timeout',
  'stop_timeout',
  'dsn',
  'reporting_mta',
];
const TIMEOUT_KEYS = ['connect', 'greeting', 'command', 'message', 'idle', 'quit', 'dns'];

function checkKeys(section, known, where) {
  for (const key of Object.keys(section)) {
    if (!known.includes(key)) throw new RangeError(`${where}: unknown key "${key}" (known: ${known.join(', ')})`);
  }
}

/** An INI flag: true/false (haraka-config gives strings unless told), yes/no, on/off, 1/0. */
function flag(value, name) {
  if (typeof value === 'boolean') return value;
  const v = String(value).trim().toLowerCase();
  if (['true', 'yes', 'on', '1'].includes(v)) return true;
  if (['false', 'no', 'off', '0'].includes(v)) return false;
  throw new RangeError(`${name} must be true or false, got "${value}"`);
}

function plainString(value, name) {
  if (typeof value !== 'string' || value.trim() === '') throw new TypeError(`${name} must be a non-empty string`);
  return value.trim();
}

/**
 * The plugin's settings from the parsed INI file:
 * - core: the MailQueueCore options (bindings, config, deliveryTimeout), without transport and store;
 * - transport: the SmtpTransport options (routes, timeouts, defaultEhloName, port);
 * - store: { kind: 'log' | 'file', dir };
 * - submitTimeoutMs: how long queue_outbound waits for the core (readiness and the durable submit)
 *   before Haraka answers 450 (DENYSOFT); below Haraka's plugin timeout;
 * - stopTimeoutMs: how long a graceful shutdown waits for stop();
 * - dsn: { reportingMta } when bounces are returned to their senders as DSNs (the default), else
 *   undefined (dsn=false); reportingMta from reporting_mta, else undefined (Haraka's `me`).
 */
function readSettings(ini) {
  if (ini === null || typeof ini !== 'object') throw new TypeError(`${FILE} must parse to sections, got ${typeof ini}`);
  const main = ini.main ?? {};
  checkKeys(main, MAIN_KEYS, `${FILE} [main]`);

  if (main.spool === undefined) throw new RangeError(`${FILE} [main] spool is required: the spool directory`);
  const dir = plainString(main.spool, `${FILE} [main] spool`);
  const kind = main.store ?? 'log';
  if (kind !== 'log' && kind !== 'file')
    throw new RangeError(`${FILE} [main] store must be "log" or "file", got "${kind}"`);
  const binding = main.binding === undefined ? 'default' : plainString(main.binding, `${FILE} [main] binding`);

  const transport = {};
  if (main.ehlo_name !== undefined) transport.defaultEhloName = plainString(main.ehlo_name, `${FILE} [main] ehlo_name`);
  if (main.port !== undefined) {
    if (!Number.isInteger(main.port) || main.port < 1 || main.port > 65535) {
      throw new RangeError(`${FILE} [main] port must be an integer from 1 to 65535, got ${main.port}`);
    }
    transport.port = main.port;
  }
  const routes = {};
  for (const [key, value] of Object.entries(ini.routes ?? {})) {
    // INI keys cannot hold "*": a leading dot stands for the wildcard of the subdomains.
    const domain = key.startsWith('.') ? `*${key}` : key;
    routes[domain] = parseHosts(value, `${FILE} [routes] ${key}`);
  }
  if (main.smart_host !== undefined) routes['*'] = parseHosts(main.smart_host, `${FILE} [main] smart_host`);
  if (Object.keys(routes).length > 0) transport.routes = routes;
  const timeouts = ini.timeouts ?? {};
  checkKeys(timeouts, TIMEOUT_KEYS, `${FILE} [timeouts]`);
  if (Object.keys(timeouts).length > 0) {
    transport.timeouts = {};
    for (const [key, value] of Object.entries(timeouts)) {
      transport.timeouts[key] = durationMs(value, `${FILE} [timeouts] ${key}`, 1);
    }
  }

  const config = { global: coreScope(ini.global ?? {}, `${FILE} [global]`) };
  for (const [name, section] of Object.entries(ini)) {
    const m = /^domain\s+(\S+)$/.exec(name);
    if (m) {
      config.domains ??= {};
      config.domains[m[1].toLowerCase()] = coreScope(section, `${FILE} [${name}]`);
    } else if (!['main', 'routes', 'timeouts', 'global'].includes(name)) {
      throw new RangeError(
        `${FILE}: unknown section [${name}] (known: [main], [routes], [timeouts], [global], [domain NAME])`,
      );
    }
  }

  const core = { bindings: [binding], config };
  if (main.delivery_timeout !== undefined) {
    core.deliveryTimeout = durationMs(main.delivery_timeout, `${FILE} [main] delivery_timeout`, 1);
  }
  const submitTimeoutMs = durationMs(main.submit_timeout ?? '25s', `${FILE} [main] submit_timeout`, 1);
  const stopTimeoutMs = durationMs(main.stop_timeout ?? '60s', `${FILE} [main] stop_timeout`, 1);
  const dsnOn = main.dsn === undefined ? true : flag(main.dsn, `${FILE} [main] dsn`);
  const reportingMta =
    main.reporting_mta === undefined ? undefined : plainString(main.reporting_mta, `${FILE} [main] reporting_mta`);
  const dsn = dsnOn ? { reportingMta } : undefined;
  return { core, transport, store: { kind, dir }, submitTimeoutMs, stopTimeoutMs, dsn };
}

/** How many worker processes Haraka's smtp.ini [main] nodes asks for: 0 when Haraka runs as one
 *  process (nodes = 0), N for nodes = N, the CPU count for nodes = cpus. */
function workerCount(nodes, cpus) {
  if (nodes === undefined || nodes === null || nodes === '') return 1; // Haraka's default is 1 worker
  if (nodes === 'cpus') return cpus;
  const n = Number(nodes);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

module.exports = { readSettings, parseDuration, workerCount };
