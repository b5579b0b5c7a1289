// buildDsn(): a delivery status notification (RFC 3464) for a 'bounce' event, to be sent back to
// the message's sender. The MIME is nodemailer's MailComposer; this file only says what goes in:
//   multipart/report; report-type=delivery-status
//     text/plain                 what happened, for a person
//     message/delivery-status    Reporting-MTA (and Arrival-Date), then per bounced recipient:
//                                Final-Recipient, Action: failed, Status, Diagnostic-Code
//     text/rfc822-headers        the original message's header section
// The result comes with the envelope to send it with: from '<>' (a DSN is never answered with
// another one, RFC 3464 §2 / RFC 5321 §4.5.5), to the original sender.
import MailComposer from 'nodemailer/lib/mail-composer';

import { checkObject, typeName } from '../validate.js';
import type { Envelope } from '../transport/transport.js';
import type { BouncedRecipient, BounceEvent } from './events.js';

export interface DsnOptions {
  /** The name of this MTA, for Reporting-MTA and the default From (required). */
  reportingMta: string;
  /** The From address of the notification (default `MAILER-DAEMON@<reportingMta>`). */
  from?: string;
  /** Subject (default "Undelivered Mail Returned to Sender"). */
  subject?: string;
  /** The original message's headers (default: read through `bounce.body()`). */
  headers?: Buffer | string;
  /** When the message arrived (Arrival-Date), ms since the epoch. */
  arrivalDate?: number;
}

export interface Dsn {
  /** Send it with this envelope: from '' (the null reverse path), to the original sender. */
  envelope: Envelope;
  /** The whole message, headers and body (CRLF line ends). */
  message: Buffer;
}

const OPTION_KEYS = new Set(['reportingMta', 'from', 'subject', 'headers', 'arrivalDate']);
const STATUS_RE = /\b([45])\.(\d{1,3})\.(\d{1,3})\b/;

/** A header field value on one line: no CR, LF or other control characters. */
function oneLine(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
  return s.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}

/** The enhanced status code (RFC 3463) of a bounced recipient: the one its reply gave, else one
 *  from its reply code's class, else from the bounce's reason. */
export function statusOf(r: BouncedRecipient, reason: BounceEvent['reason']): string {
  const m = STATUS_RE.exec(r.diagnostic);
  if (m !== null) return `${m[1]}.${m[2]}.${m[3]}`;
  if (r.code !== undefined && r.code >= 400 && r.code < 500) return '4.0.0';
  if (r.code !== undefined && r.code >= 500 && r.code < 600) return '5.0.0';
  if (reason === 'expired') return '4.4.7'; // delivery time expired
  if (reason === 'retries-exhausted') return '4.0.0';
  return '5.0.0';
}

function recipientFields(r: BouncedRecipient, reason: BounceEvent['reason']): string {
  const lines = [
    `Final-Recipient: rfc822; ${oneLine(r.recipient)}`,
    'Action: failed',
    `Status: ${statusOf(r, reason)}`,
  ];
  const text = oneLine(r.diagnostic);
  if (r.code !== undefined || /^\d{3}\b/.test(text)) {
    lines.push(`Diagnostic-Code: smtp; ${/^\d{3}\b/.test(text) ? text : `${r.code} ${text}`}`);
  }
  return lines.join('\r\n');
}

/** The header section of a message: up to its first empty line. */
function headerSection(body: Buffer): Buffer {
  const crlf = body.indexOf('\r\n\r\n');
  if (crlf >= 0) return body.subarray(0, crlf + 2);
  const lf = body.indexOf('\n\n');
  return lf >= 0 ? body.subarray(0, lf + 1) : body;
}

function checkOptions(options: unknown): DsnOptions {
  const o = checkObject(options, 'options');
  for (const k of Object.keys(o)) if (!OPTION_KEYS.has(k)) throw new RangeError(`options: unknown option "${k}"`);
  if (typeof o.reportingMta !== 'string' || o.reportingMta.trim() === '')
    throw new TypeError(`options.reportingMta must be a non-empty string, got ${typeName(o.reportingMta)}`);
  for (const k of ['from', 'subject'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'string')
      throw new TypeError(`options.${k} must be a string, got ${typeName(o[k])}`);
  }
  if (o.headers !== undefined && typeof o.headers !== 'string' && !Buffer.isBuffer(o.headers))
    throw new TypeError(`options.headers must be a Buffer or a string, got ${typeName(o.headers)}`);
  if (o.arrivalDate !== undefined && (typeof o.arrivalDate !== 'number' || !Number.isFinite(o.arrivalDate)))
    throw new TypeError(`options.arrivalDate must be a finite number (ms), got ${typeName(o.arrivalDate)}`);
  return o as unknown as DsnOptions;
}

function checkBounce(bounce: unknown): { ev: BounceEvent; envelope: Envelope; recipients: BouncedRecipient[] } {
  const ev = checkObject(bounce, 'bounce') as unknown as BounceEvent;
  const env = ev.envelope;
  if (typeof env !== 'object' || env === null || typeof env.from !== 'string' || !Array.isArray(env.to))
    throw new TypeError(`bounce.envelope must be an envelope ({ from, to }), got ${typeName(env)}`);
  if (env.from === '') throw new RangeError('bounce.envelope.from is empty: a bounce is never sent for a bounce');
  if (!Array.isArray(ev.recipients) || ev.recipients.length === 0)
    throw new RangeError('bounce.recipients must list at least one recipient');
  return { ev, envelope: env, recipients: ev.recipients };
}

/**
 * Builds an RFC 3464 delivery status notification for a 'bounce' event (one that carries
 * `envelope` and `recipients`: every bounce of a core with a store, but 'missing'). Call it from
 * the 'bounce' listener (and return its promise): the original headers are read through
 * `bounce.body()`, which works until the listeners have run. A bad argument is a TypeError or a
 * RangeError naming it; a bounce of a message sent from the null reverse path is a RangeError.
 */
export async function buildDsn(bounce: BounceEvent, options: DsnOptions): Promise<Dsn> {
  const { ev, envelope, recipients } = checkBounce(bounce);
  const o = checkOptions(options);
  const mta = oneLine(o.reportingMta);
  let headers: Buffer | undefined;
  if (o.headers !== undefined) headers = Buffer.isBuffer(o.headers) ? o.headers : Buffer.from(o.headers);
  else if (ev.body !== undefined) headers = headerSection(await ev.body());
  const perMessage = [`Reporting-MTA: dns; ${mta}`];
  if (o.arrivalDate !== undefined) perMessage.push(`Arrival-Date: ${new Date(o.arrivalDate).toUTCString()}`);
  const status = [perMessage.join('\r\n'), ...recipients.map((r) => recipientFields(r, ev.reason))].join('\r\n\r\n');
  const text = [
    `This is the mail system at ${mta}.`,
    '',
    'Your message could not be delivered to the following recipients:',
    '',
    ...recipients.map((r) => `<${oneLine(r.recipient)}>: ${oneLine(r.diagnostic)}`),
    '',
  ].join('\r\n');
  const attachments: {
    contentType: string;
    content: string | Buffer;
    filename: false;
    contentTransferEncoding?: string;
  }[] = [{ contentType: 'message/delivery-status', content: `${status}\r\n`, filename: false }];
  if (headers !== undefined) {
    attachments.push({
      contentType: 'text/rfc822-headers',
      content: headers,
      filename: false,
      // Readable as it is for ASCII headers, safe for any others (SMTPUTF8).
      contentTransferEncoding: 'quoted-printable',
    });
  }
  const root = new MailComposer({
    from: o.from ?? `MAILER-DAEMON@${mta}`,
    to: envelope.from,
    subject: o.subject ?? 'Undelivered Mail Returned to Sender',
    headers: { 'Auto-Submitted': 'auto-replied' },
    text,
    attachments,
  }).compile();
  root.setHeader('Content-Type', 'multipart/report; report-type=delivery-status');
  return { envelope: { from: '', to: [envelope.from] }, message: await root.build() };
}
