// A full disk under FileSpool and LogSpool: a tmpfs of 1 MiB is mounted for the test (root only:
// without the right to mount, the test is skipped and says why). Concurrent puts run until the
// disk refuses them with ENOSPC; then a ballast file is deleted and puts are accepted again by the
// same instance; a new instance lists every acknowledged message with its exact bytes, and nothing
// that was refused is half there.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, test } from 'vitest';

import { FileSpool } from '../../lib/store/file_spool.js';
import { LogSpool } from '../../lib/store/log_spool.js';
import type { MessageStore, StoredMessage } from '../../lib/store/message_store.js';

const mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), 'mqc-enospc-'));
const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', mountPoint], {
  encoding: 'utf8',
});
const canMount = mounted.status === 0 && !mounted.error;
const why = canMount
  ? ''
  : ` (skipped: mounting a tmpfs failed: ${(mounted.error?.message ?? mounted.stderr ?? '').trim() || `exit ${mounted.status}`})`;

afterAll(() => {
  // Lazy: a failed test may have left a file open on it.
  if (canMount) spawnSync('umount', ['-l', mountPoint]);
  fs.rmSync(mountPoint, { recursive: true, force: true });
});

function msg(id: number): StoredMessage {
  return { id, domain: 'example.com', envelope: { from: 'a@o.example', to: [`r${id}@example.com`] } };
}
const body = (id: number): Buffer => Buffer.alloc(6000 + (id % 5) * 1000, id % 251);

interface Subject {
  name: string;
  make(dir: string, reports: string[]): MessageStore;
}
const subjects: Subject[] = [
  {
    name: 'FileSpool',
    make: (dir, reports) => new FileSpool(dir, { onCorrupt: (f, e) => reports.push(`${f}: ${e.message}`) }),
  },
  {
    name: 'LogSpool',
    make: (dir, reports) =>
      new LogSpool(dir, { segmentBytes: 128 * 1024, onCorrupt: (f, e) => reports.push(`${f}: ${e.message}`) }),
  },
];

describe.each(subjects)('$name on a full disk', ({ name, make }) => {
  test.skipIf(!canMount)(
    `refused puts, nothing acknowledged lost${why}`,
    async () => {
      const dir = path.join(mountPoint, name);
      const ballast = path.join(mountPoint, `${name}.ballast`);
      fs.writeFileSync(ballast, Buffer.alloc(256 * 1024, 1));
      const reports: string[] = [];
      const store = make(dir, reports);
      const acked = new Set<number>();
      const refusals: string[] = [];
      let next = 0;
      const fill = async (limit: number): Promise<void> => {
        let refused = 0;
        const worker = async (): Promise<void> => {
          while (refused < limit) {
            const id = next++;
            try {
              await store.put(msg(id), body(id));
              acked.add(id);
            } catch (e) {
              refusals.push((e as NodeJS.ErrnoException).code ?? String(e));
              refused++;
            }
          }
        };
        await Promise.all(Array.from({ length: 8 }, worker));
      };
      await fill(20);
      const ackedWhenFull = acked.size;
      expect(ackedWhenFull).toBeGreaterThan(10);
      expect(new Set(refusals)).toEqual(new Set(['ENOSPC']));
      // Space again: the same instance accepts puts.
      fs.rmSync(ballast);
      const before = next;
      await store.put(msg(before), body(before));
      acked.add(before);
      next++;
      await fill(5);
      expect(acked.size).toBeGreaterThan(ackedWhenFull + 10);
      await store.close?.();

      const again = make(dir, reports);
      const listed: number[] = [];
      for await (const m of again.list()) {
        listed.push(m.id);
        expect(m).toEqual(msg(m.id));
        expect((await again.body(m.id)).equals(body(m.id)), `id ${m.id}`).toBe(true);
      }
      for (const id of acked) expect(listed.includes(id), `acknowledged id ${id} is missing`).toBe(true);
      // A refused put is not there (FileSpool deletes its file; LogSpool cuts its records back).
      expect(listed.length).toBe(acked.size);
      expect(reports).toEqual([]);
      await again.close?.();
      fs.rmSync(dir, { recursive: true, force: true });
    },
    60_000,
  );
});
