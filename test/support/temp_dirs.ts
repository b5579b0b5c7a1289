// Temporary directories for a test file: made under os.tmpdir() with a recognisable prefix, all
// removed after the file's tests.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll } from 'vitest';

/** A function that makes `<tmp>/<prefix>-<tag>-XXXXXX`; each one is removed after all tests. */
export function tempDirs(prefix: string): (tag: string) => string {
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) fs.rmSync(d, { recursive: true, force: true });
  });
  return (tag) => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-${tag}-`));
    made.push(d);
    return d;
  };
}
