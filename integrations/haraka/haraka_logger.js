'use strict';
// A pino-compatible logger over a Haraka plugin's log methods (loginfo, logwarn, ...), so that the
// plugin's messages and, once the core takes a `logger` option, the core's own go to Haraka's log
// with the plugin's name. pino's call forms are accepted: (msg), (obj, msg) and (err, msg).

function line(args) {
  const [first, second] = args;
  if (first instanceof Error) return second === undefined ? first.message : `${second}: ${first.message}`;
  if (first !== null && typeof first === 'object') {
    const fields = JSON.stringify(first);
    return second === undefined ? fields : `${second} ${fields}`;
  }
  return args.map(String).join(' ');
}

function harakaLogger(plugin) {
  const at =
    (method) =>
    (...args) =>
      plugin[method](line(args));
  const log = {
    trace: at('logprotocol'),
    debug: at('logdebug'),
    info: at('loginfo'),
    warn: at('logwarn'),
    error: at('logerror'),
    fatal: at('logcrit'),
    child: () => log,
  };
  return log;
}

module.exports = { harakaLogger };
