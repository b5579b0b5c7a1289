// Reading a DSN in tests (test/delivery/): mailparser checks the structure, but it folds a
// message/delivery-status part into the text, so these split the parts by the boundary and read
// the status fields block by block (RFC 3464 §2.1: the per-message block, then one per recipient).
import { simpleParser } from 'mailparser';

/** The body of the part of a multipart message whose Content-Type is `type` (mailparser folds a
 *  message/delivery-status part into the text, so the parts are split here by the boundary). */
export function partOf(raw: Buffer, boundary: string, type: string): string | undefined {
  for (const part of raw.toString().split(`--${boundary}`)) {
    const end = part.indexOf('\r\n\r\n');
    if (end >= 0 && part.slice(0, end).includes(`Content-Type: ${type}`)) return part.slice(end + 4);
  }
  return undefined;
}

/** The blocks of header fields of a message/delivery-status body, each as an object. */
export function statusBlocks(status: string | undefined): Record<string, string>[] {
  return (status ?? '')
    .trim()
    .split(/\r\n\r\n/)
    .map((b) =>
      Object.fromEntries(b.split('\r\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)])),
    );
}

/** A DSN parsed: mailparser's view, its Content-Type, its status blocks and its header part. */
export async function parseDsn(raw: Buffer) {
  const parsed = await simpleParser(raw);
  const type = parsed.headers.get('content-type') as { value: string; params: Record<string, string> };
  const status = statusBlocks(partOf(raw, type.params.boundary, 'message/delivery-status'));
  const headers = parsed.attachments.find((a) => a.contentType === 'text/rfc822-headers')?.content.toString();
  return { parsed, type, status, headers };
}
