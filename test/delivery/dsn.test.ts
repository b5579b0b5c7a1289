// buildDsn() on its own: what each bounced recipient's Status and Diagnostic-Code are made of,
// which header section goes in, the envelope to send it with, and bad input (a TypeError or a
// RangeError naming the argument). The DSN is read back with mailparser (test/support/dsn_parts.ts).
import { describe, expect, test } from 'vitest';

import { type Bounce, buildDsn } from '../../lib/index.js';
import { parseDsn } from '../support/dsn_parts.js';

const ENV = { from: 'sender@origin.test', to: ['a@x.test', 'b@x.test', 'c@x.test'] };
const BODY = Buffer.from('From: sender@origin.test\r\nSubject: hello\r\n\r\nThe body, which stays out.\r\n');

function bounce(extra: Partial<Bounce> = {}): Bounce {
  return {
    id: 1,
    domain: 'x.test',
    reason: 'permanent',
    envelope: ENV,
    recipients: [{ recipient: 'a@x.test', code: 550, diagnostic: '550 5.1.1 no such user' }],
    body: async () => BODY,
    ...extra,
  };
}

describe('buildDsn', () => {
  test('Status from the reply, else from the code class, else from the reason; Diagnostic-Code only with a reply code', async () => {
    const dsn = await buildDsn(
      bounce({
        reason: 'retries-exhausted',
        recipients: [
          { recipient: 'a@x.test', code: 550, diagnostic: '550 5.1.1 no such user' },
          { recipient: 'b@x.test', code: 452, diagnostic: 'mailbox full' },
          { recipient: 'c@x.test', diagnostic: 'the retries allowed for the message ran out' },
        ],
      }),
      { reportingMta: 'mta.test' },
    );
    expect(dsn.envelope).toEqual({ from: '', to: ['sender@origin.test'] });
    const { status, headers, parsed } = await parseDsn(dsn.message);
    expect(status).toEqual([
      { 'Reporting-MTA': 'dns; mta.test' },
      {
        'Final-Recipient': 'rfc822; a@x.test',
        Action: 'failed',
        Status: '5.1.1',
        'Diagnostic-Code': 'smtp; 550 5.1.1 no such user',
      },
      {
        'Final-Recipient': 'rfc822; b@x.test',
        Action: 'failed',
        Status: '4.0.0',
        'Diagnostic-Code': 'smtp; 452 mailbox full',
      },
      { 'Final-Recipient': 'rfc822; c@x.test', Action: 'failed', Status: '4.0.0' },
    ]);
    expect(headers).toBe('From: sender@origin.test\r\nSubject: hello\r\n');
    expect(parsed.from).toMatchObject({ value: [{ address: 'MAILER-DAEMON@mta.test' }] });
    expect(parsed.subject).toBe('Undelivered Mail Returned to Sender');
  });

  test('a diagnostic with CR or LF cannot add header fields', async () => {
    const dsn = await buildDsn(
      bounce({ recipients: [{ recipient: 'a@x.test', code: 550, diagnostic: '550 no\r\nX-Injected: yes' }] }),
      { reportingMta: 'mta.test', from: 'postmaster@mta.test', subject: 'Returned' },
    );
    const { status, parsed } = await parseDsn(dsn.message);
    expect(status[1]['Diagnostic-Code']).toBe('smtp; 550 no X-Injected: yes');
    expect(status[1]['X-Injected']).toBeUndefined();
    expect(parsed.subject).toBe('Returned');
  });

  test('bad input: TypeErrors and RangeErrors naming the argument', async () => {
    const opts = { reportingMta: 'mta.test' };
    await expect(buildDsn(null as unknown as Bounce, opts)).rejects.toThrow(TypeError);
    await expect(buildDsn(bounce({ envelope: undefined }), opts)).rejects.toThrow(/^bounce\.envelope must be/);
    await expect(buildDsn(bounce({ envelope: { from: '', to: ['a@x.test'] } }), opts)).rejects.toThrow(
      new RangeError('bounce.envelope.from is empty: a bounce is never sent for a bounce'),
    );
    await expect(buildDsn(bounce({ recipients: [] }), opts)).rejects.toThrow(/^bounce\.recipients must list/);
    await expect(buildDsn(bounce(), {} as never)).rejects.toThrow(
      new TypeError('options.reportingMta must be a non-empty string, got undefined'),
    );
    await expect(buildDsn(bounce(), { ...opts, subject: 3 } as never)).rejects.toThrow(
      /^options\.subject must be a string/,
    );
    await expect(buildDsn(bounce(), { ...opts, colour: 1 } as never)).rejects.toThrow(
      new RangeError('options: unknown option "colour"'),
    );
  });
});
