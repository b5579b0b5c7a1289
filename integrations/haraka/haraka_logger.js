'use strict';
// A pino-compatible logger over a Haraka plugin's log methods (loginfo, logwarn, ...), so that the
// plugin's messages and, once the core takes a `logger` option, the core's own go to Haraka's log
// with the plugin's name. pino's call forms are accepted: (msg), (obj, msg) and (err, msg).
// isLevelEnabled() asks Haraka's logger whether it writes a level (the core asks once per
// connection whether to make its debug lines, so nothing is formatted for a log that drops it).

function line(args) {
  const [first, second] = args;
  if (first instanceof Error) return second === undefined ? first.message : `${second}: ${first.message}`;
  if (first !== null && typeof first === 'object') {
    const fields = JSON.stringify(first);
    return second === undefined ? fields : `${second} ${fields}`;
  }
  return args.map(String).join(' ');
}

const HARAKA_LEVEL = { trace: 'LOGPROTOCOL', debug: 'LOGDEBUG', info: 'LOGINFO', warn: 'LOGWARN', error: 'LOGERROR' };

/** Haraka's logger module, through the plugin (undefined outside Haraka: every level is then on). */
function harakaLogModule(plugin) {
  try {
    return typeof plugin.haraka_require === 'function' ? plugin.haraka_require('logger') : undefined;
  } catch {
    return undefined;
  }
}

function harakaLogger(plugin) {
  const at =
    (method) =>
    (...args) =>
      plugin[method](line(args));
  const hl = harakaLogModule(plugin);
  const log = {
    isLevelEnabled: (level) => {
      const n = hl?.[HARAKA_LEVEL[level]];
      return typeof n === 'number' && typeof hl.would_log === 'function' ? hl.would_log(n) : true;
    },
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
