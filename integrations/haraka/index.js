'use strict';
// haraka-plugin-mail-queue-core: Haraka hands the mail it relays (the queue_outbound hook) to a
// mail-queue-core MailQueueCore, which keeps it in a durable spool (LogSpool or FileSpool) and
// delivers it over SMTP within the configured connection limits. README.md says how to install and
// configure it; docs/decisions.md (decision 39) why it works the way it does.
//
// The life of the core in Haraka's process:
// - register(): reads config/mail_queue_core.ini (a mistake stops Haraka before it listens);
// - init_master / init_child: refuses cluster mode with more than one worker; in the process that
//   handles connections, makes the core and starts recover() then start() in the background:
//   Haraka listens before plugins finish their init, so queue_outbound waits on that ready gate;
// - queue_outbound: answers 250 only once core.submit() has resolved (the message is durable),
//   DENYSOFT (Haraka's 450) with the reason when it fails or takes too long (the client keeps it);
// - SIGHUP (and Haraka's flush request to its workers): every deferred message is due now;
// - shutdown (Haraka's graceful shutdown) and SIGTERM: stop() is awaited, the spool closed.
const os = require('node:os');
const constants = require('haraka-constants');
const { readSettings, workerCount } = require('./settings.js');
const { harakaLogger } = require('./haraka_logger.js');

exports.register = function () {
  this.mqc = { core: null, ready: null, stopping: null, server: null };
  const ini = this.config.get('mail_queue_core.ini', () => {
    this.logwarn('mail_queue_core.ini changed: restart Haraka to apply it');
  });
  this.mqc_settings = readSettings(ini);
};

exports.hook_init_master = function (next, server) {
  const nodes = server.cfg?.main?.nodes;
  const workers = workerCount(nodes, os.cpus().length);
  if (workers > 1) {
    const why =
      `mail-queue-core refuses smtp.ini nodes=${nodes}: Haraka would run ${workers} worker processes, each with ` +
      `its own queue and connection counts, so every connection limit would be multiplied by ${workers}. ` +
      'The limits are not shared across processes yet: set nodes=0 (one process) or nodes=1.';
    this.logcrit(why);
    return next(constants.deny, why);
  }
  if (server.cluster) {
    // nodes=1: the one worker runs the core (init_child); this master only passes a stop on to it.
    this.mqc.server = server;
    onSigterm(() => {
      server.stopListeners?.();
      return this.stop_workers();
    });
    return next();
  }
  this.start_core(server, next);
};

// The message a cluster master sends its worker to stop the core and exit.
const STOP_EVENT = 'mail-queue-core.stop';

/** In a cluster master: asks every worker to stop its core and exit; resolves once they have.
 *  (Haraka 3.1's own graceful shutdown does not reach its workers.) */
exports.stop_workers = function () {
  const cluster = require('node:cluster');
  const workers = Object.values(cluster.workers ?? {}).filter((w) => w.isConnected());
  this.loginfo(`asking ${workers.length} worker(s) to stop mail-queue-core`);
  return Promise.all(
    workers.map(
      (w) =>
        new Promise((resolve) => {
          w.once('exit', resolve);
          w.send({ event: STOP_EVENT });
        }),
    ),
  );
};

exports.hook_init_child = function (next, server) {
  this.start_core(server, next);
};

exports.start_core = function (server, next) {
  const { MailQueueCore, SmtpTransport, LogSpool, FileSpool } = require('mail-queue-core');
  const settings = this.mqc_settings;
  const log = harakaLogger(this);
  let core;
  try {
    const store = settings.store.kind === 'file' ? new FileSpool(settings.store.dir) : new LogSpool(settings.store.dir);
    const transport = new SmtpTransport(settings.transport);
    core = new MailQueueCore({
      ...settings.core,
      transport,
      store,
      // The core's connections and outcomes (debug) and the failures it survives (error) in
      // Haraka's log: `log` is Haraka's logger behind pino's method names (haraka_logger.js).
      logger: log,
    });
    Object.assign(this.mqc, { core, store, transport, server, log });
  } catch (err) {
    log.fatal(err, 'mail-queue-core: cannot start');
    return next(constants.deny, `mail-queue-core: ${err.message}`);
  }
  core.on('error', (err) => log.error(err, 'mail-queue-core'));
  core.on('deferred', (e) => log.info(`deferred ${e.id} to ${e.domain}: ${e.response}`));
  core.on('bounce', (b) => log.warn(`bounce ${b.id} to ${b.domain ?? '?'}: ${b.reason} ${b.response ?? ''}`.trim()));
  if (settings.dsn) {
    // Bounced mail goes back to its sender as a DSN (RFC 3464), submitted to this same core while
    // the bounced message is still stored (the core removes it once this listener's promise
    // settles): a crash in between sends the DSN again, never loses it.
    const reportingMta = settings.dsn.reportingMta ?? (this.config.get('me') || require('node:os').hostname());
    core.on('bounce', (b) => this.send_dsn(b, reportingMta));
  }
  core.on('delivered', (e) => log.debug(`delivered ${e.id} to ${e.domain}`));

  this.mqc.ready = (async () => {
    const recovered = await core.recover();
    core.start();
    log.info(`mail-queue-core ready: ${recovered} message(s) recovered from ${settings.store.dir}`);
  })();
  this.mqc.ready.catch((err) => log.fatal(err, 'mail-queue-core: recovery failed, relayed mail is refused with 450'));

  process.on('SIGHUP', () => this.flush_all('SIGHUP'));
  // In cluster mode Haraka's master turns its SIGHUP into this message to each worker.
  process.on('message', (msg) => {
    if (msg?.event === 'outbound.flush_queue') this.flush_all('flush request');
    if (msg?.event === STOP_EVENT) this.stop_core('stop request').finally(() => process.exit(0));
  });
  onSigterm(() => {
    server.stopListeners?.();
    return this.stop_core('SIGTERM');
  });
  next();
};

/** Submits a DSN of bounce `b` to its sender; none for a bounce of a bounce (null sender) or a
 *  message the store had lost. Failures are logged, never thrown into the core. */
exports.send_dsn = async function (b, reportingMta) {
  const { core, log } = this.mqc;
  const from = b.envelope?.from;
  if (!from || b.reason === 'missing' || core.closed) return;
  try {
    const { buildDsn } = require('mail-queue-core');
    const dsn = await buildDsn(b, { reportingMta });
    const to = dsn.envelope.to[0];
    const domain = to.slice(to.lastIndexOf('@') + 1).toLowerCase();
    await core.submit({ id: core.newId(), domain, envelope: dsn.envelope }, dsn.message);
    log.info(`DSN for ${b.id} submitted to ${to}`);
  } catch (err) {
    log.error(err, `mail-queue-core: the DSN for ${b.id} could not be submitted`);
  }
};

/** Deferred mail of every domain becomes due now. */
exports.flush_all = function (why) {
  const { core, log } = this.mqc;
  if (!core || core.closed) return;
  let moved = 0;
  for (const domain of core.domains()) moved += core.flush(domain);
  log.info(`${why}: ${moved} deferred message(s) due now`);
};

/** Stops the core (the messages in flight finish), then closes it, the transport and the spool.
 *  Past stop_timeout it closes anyway: what was in flight is still in the spool. */
exports.stop_core = function (why) {
  const { core, transport, store, log } = this.mqc;
  if (!core) return Promise.resolve();
  this.mqc.stopping ??= (async () => {
    log.info(`${why}: stopping mail-queue-core, waiting for the messages in flight`);
    await this.mqc.ready.catch(() => undefined);
    const done = await within(
      core.stop().then(() => true),
      this.mqc_settings.stopTimeoutMs,
      false,
    );
    core.close();
    await transport.close();
    await store.close?.();
    log.info(
      done
        ? 'mail-queue-core stopped'
        : `mail-queue-core stop timed out after ${this.mqc_settings.stopTimeoutMs} ms; the mail in flight stays in the spool`,
    );
  })();
  return this.mqc.stopping;
};

// Haraka's graceful shutdown (smtp.ini graceful_shutdown=true) calls this in every process it reaches.
exports.shutdown = function () {
  const stopping = this.mqc.core ? this.stop_core('Haraka shutdown') : this.mqc.server?.cluster && this.stop_workers();
  Promise.resolve(stopping).catch((err) => this.logerror(`mail-queue-core: stop failed: ${err.message}`));
};

/** Haraka itself handles SIGTERM only as pid 1; elsewhere SIGTERM would end the process at once.
 *  Then SIGTERM runs `stop` and exits once it has settled. */
function onSigterm(stop) {
  if (process.listenerCount('SIGTERM') > 0) return;
  process.once('SIGTERM', () => {
    Promise.resolve()
      .then(stop)
      .finally(() => process.exit(0));
  });
}

exports.hook_queue_outbound = function (next, connection) {
  this.submit_transaction(connection.transaction).then(
    (ids) => next(constants.ok, `Queued as ${ids.join(',')}`),
    (err) => {
      this.logerror(`not queued: ${err.message}`, connection);
      next(constants.denysoft, `Not queued, try again later (${err.message})`);
    },
  );
};

/** Submits the transaction as one core message per recipient domain; resolves with their ids once
 *  every one is durable. On a failure or a timeout, those that were (or later get) stored are
 *  cancelled again, so that the client's retry is the only copy. */
exports.submit_transaction = async function (txn) {
  const { core } = this.mqc;
  if (!core) throw new Error('mail-queue-core does not run in this process');
  if (this.mqc.stopping) throw new Error('mail-queue-core is shutting down');
  const deadline = Date.now() + this.mqc_settings.submitTimeoutMs;
  const starting = new Error('mail-queue-core is still starting');
  if (
    (await within(
      this.mqc.ready.then(() => true),
      deadline - Date.now(),
      starting,
    )) !== true
  )
    throw starting;
  const body = await messageBody(txn.message_stream);

  const from = txn.mail_from.isNull() ? '' : txn.mail_from.address();
  const byDomain = new Map();
  for (const rcpt of txn.rcpt_to) {
    const domain = rcpt.host.toLowerCase();
    if (!byDomain.has(domain)) byDomain.set(domain, []);
    byDomain.get(domain).push(rcpt.address());
  }
  const messages = [...byDomain].map(([domain, to]) => ({ id: core.newId(), domain, envelope: { from, to } }));
  const submits = messages.map((m) => core.submit(m, body));
  const late = new Error('the spool did not confirm the message in time');
  try {
    if ((await within(Promise.all(submits), deadline - Date.now(), late)) === late) throw late;
  } catch (err) {
    for (const [i, m] of messages.entries()) {
      submits[i].then(
        () => core.cancel(m.id),
        () => undefined,
      );
    }
    throw err;
  }
  this.loginfo(`${txn.uuid} queued as ${messages.map((m) => `${m.id} (${m.domain})`).join(', ')}`);
  return messages.map((m) => m.id);
};

/** The message as received (headers and body, dot-stuffing undone), in one Buffer. */
function messageBody(stream) {
  return new Promise((resolve) => stream.get_data((buf) => resolve(buf)));
}

/** `promise`'s value, or `fallback` if it has not settled within `ms`. */
function within(promise, ms, fallback) {
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(resolve, Math.max(0, ms), fallback);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
