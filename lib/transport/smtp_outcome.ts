// Checks of the message given to send() (its shape, its envelope) and the mapping of the server's
// replies to an Outcome; the rules are in SmtpSession's comment (smtp_session.ts).

import { isAscii } from 'node:buffer';
import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import { checkId, checkObject, typeName } from '../validate.js';
import type { SmtpError } from './smtp_errors.js';
import type { Outcome, OutboundMessage, RecipientRefusal, StreamedBody } from './transport.js';

// ---- message checks and reply mapping -------------------------------------------------------

export function checkMessage(m: unknown): OutboundMessage {
  const o = checkObject(m, 'message');
  const id = checkId(o.id, 'message.id');
  if (typeof o.domain !== 'string') throw new TypeError(`message.domain must be a string, got ${typeName(o.domain)}`);
  const env = checkObject(o.envelope, 'message.envelope');
  if (typeof env.from !== 'string')
    throw new TypeError(`message.envelope.from must be a string, got ${typeName(env.from)}`);
  if (!Array.isArray(env.to)) throw new TypeError(`message.envelope.to must be an array, got ${typeName(env.to)}`);
  const to = env.to as unknown[];
  for (let i = 0; i < to.length; i++) {
    const r = to[i];
    if (typeof r !== 'string') throw new TypeError(`message.envelope.to[${i}] must be a string, got ${typeName(r)}`);
  }
  const b = o.body as { size?: unknown; eightBit?: unknown; open?: unknown } | undefined;
  let body: Buffer | StreamedBody;
  if (o.body instanceof Uint8Array)
    body = Buffer.isBuffer(o.body) ? o.body : Buffer.from(o.body.buffer, o.body.byteOffset, o.body.byteLength);
  else if (
    typeof b === 'object' &&
    b !== null &&
    typeof b.open === 'function' &&
    Number.isSafeInteger(b.size) &&
    typeof b.eightBit === 'boolean'
  )
    body = b as StreamedBody;
  else throw new TypeError(`message.body must be a Buffer or a StreamedBody, got ${typeName(o.body)}`);
  return { id, domain: o.domain, envelope: { from: env.from, to: env.to as string[] }, body };
}

/** A reason the envelope can never be sent (so a permanent outcome), or undefined. */
export function invalidEnvelope(env: { from: string; to: string[] }): string | undefined {
  // CR/LF would inject commands; angle brackets would break the path syntax.
  const bad = /[\r\n<>\0]/;
  if (bad.test(env.from)) return `invalid sender address ${JSON.stringify(env.from)}`;
  if (env.to.length === 0) return 'the message has no recipients';
  for (const r of env.to) {
    if (r.trim() === '' || bad.test(r)) return `invalid recipient address ${JSON.stringify(r)}`;
  }
  return undefined;
}

export function has8bit(body: Buffer): boolean {
  return !isAscii(body); // native scan, not a JS loop over every byte of every message
}

function refusedList(errors: readonly SMTPConnection.SMTPError[]): string {
  return errors.map((e) => `<${e.recipient ?? '?'}> ${e.response ?? e.message}`).join('; ');
}

/** Each refused recipient with its own verdict (a refusal without a reply code is transient). */
function refusals(errors: readonly SMTPConnection.SMTPError[], rejected: readonly string[]): RecipientRefusal[] {
  const out: RecipientRefusal[] = [];
  for (const e of errors) {
    const code = typeof e.responseCode === 'number' ? e.responseCode : undefined;
    const kind = code === undefined ? 'transient' : kindOf(code);
    out.push({ recipient: e.recipient ?? '', kind, code, response: e.response ?? e.message });
  }
  // Recipients nodemailer lists as rejected without an error of their own.
  for (const r of rejected) {
    if (!out.some((x) => x.recipient === r)) out.push({ recipient: r, kind: 'transient', response: 'refused' });
  }
  return out;
}

export function deliveredOutcome(info: SMTPConnection.SentMessageInfo): Outcome {
  const rejected = info.rejectedErrors ?? [];
  if (info.rejected.length === 0) return { kind: 'delivered', response: info.response };
  const total = info.accepted.length + info.rejected.length;
  const list = rejected.length > 0 ? refusedList(rejected) : info.rejected.map((r) => `<${r}>`).join('; ');
  return {
    kind: 'delivered',
    response: `${info.response} (accepted for ${info.accepted.length} of ${total} recipients; refused: ${list})`,
    refused: refusals(rejected, info.rejected),
  };
}

function kindOf(code: number): 'transient' | 'permanent' {
  return code >= 500 && code <= 599 && code !== 503 ? 'permanent' : 'transient';
}

/** The outcome of an error that carries the server's verdict on the message, or undefined when
 *  the session broke (no reply to judge by). */
export function replyOutcome(err: SmtpError): Outcome | undefined {
  if (err.code !== 'EENVELOPE' && err.code !== 'EMESSAGE') return undefined;
  const rc = err.responseCode;
  if (typeof rc === 'number') {
    const refused = err.rejectedErrors ?? [];
    if (err.command === 'RCPT TO' && refused.length > 0) {
      // Every recipient refused. One 4xx among them makes the message worth retrying.
      const deferred = refused.find(
        (e) => typeof e.responseCode === 'number' && kindOf(e.responseCode) === 'transient',
      );
      const chosen = deferred ?? refused[0];
      const code = chosen.responseCode ?? rc;
      const response =
        refused.length === 1
          ? (chosen.response ?? err.response ?? err.message)
          : `all ${refused.length} recipients refused: ${refusedList(refused)}`;
      return { kind: deferred ? 'transient' : kindOf(code), code, response, refused: refusals(refused, []) };
    }
    return { kind: kindOf(rc), code: rc, response: err.response ?? err.message };
  }
  // No reply, but nothing was sent either: nodemailer refused the message itself. The only
  // such case left after invalidEnvelope() is a message larger than the server's SIZE limit.
  if (err.code === 'EMESSAGE' || err.command === 'API') {
    return { kind: 'permanent', code: err.code === 'EMESSAGE' ? 552 : undefined, response: err.message };
  }
  return undefined;
}
