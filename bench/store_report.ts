// The `store` section of bench/results/summary.md (issue 19): FileSpool vs LogSpool, submits/s and
// syncs per submit at 1 and 64 submitters (best round of each), removals, recover() times, the
// disk after compaction, and issue 19's targets.
import type { Target } from './target.js';

export interface StoreSubmitRun {
  /** 'file', 'log', or 'disk' (a bare pwritev + fdatasync loop: recordsPerSec only). */
  store: string;
  conc: number;
  count: number;
  bodyBytes: number;
  putsPerSec: number;
  syncsPerPut: number;
  removesPerSec: number;
  syncsPerRemove: number;
  recordsPerSec?: number;
  diskAfterRemovals?: { bytes: number; segments: number };
  round: number;
}

export interface StoreRecoverRun {
  store: string;
  messages: number;
  seconds: number;
  rssMiB: number;
  heapMiB: number;
  fillPerSec?: number;
  compaction?: { bytesBefore: number; bytesAfter: number; liveBytes: number; segments: number; seconds: number };
}

export interface StoreData {
  submit: StoreSubmitRun[];
  recover: StoreRecoverRun[];
}

export type StoreTarget = Target;

const NAMES: Record<string, string> = { file: 'FileSpool', log: 'LogSpool' };
const k = (x: number): string => (x >= 1e4 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(0));
const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;

const rate = (r: StoreSubmitRun): number => r.recordsPerSec ?? r.putsPerSec;

/** The best round (highest rate) of each store and concurrency. */
function best(runs: StoreSubmitRun[], store: string, conc: number): StoreSubmitRun | undefined {
  let b: StoreSubmitRun | undefined;
  for (const r of runs) if (r.store === store && r.conc === conc && (b === undefined || rate(r) > rate(b))) b = r;
  return b;
}

export function storeSection(d: StoreData): { lines: string[]; targets: StoreTarget[] } {
  const out: string[] = [];
  const targets: StoreTarget[] = [];
  const body = d.submit[0]?.bodyBytes ?? 4096;
  out.push(
    '',
    `## 5. Durable stores of issue 19 (${body}-byte bodies, a directory under the temporary folder)`,
    '',
    'Puts by C concurrent submitters, then removal of the same messages; fsync + fdatasync calls counted in the process (a removal phase also counts the directory fsync of each segment compaction deletes). The disk limit is a bare loop of one pwritev of C records and one fdatasync. Best round of each row; ratios within this run.',
    '',
    '| submitters | store | puts/s | syncs per put | removals/s | syncs per removal | ratio to FileSpool | share of the disk limit |',
    '|---|---|---|---|---|---|---|---|',
  );
  for (const conc of [...new Set(d.submit.map((r) => r.conc))].sort((a, b) => a - b)) {
    const f = best(d.submit, 'file', conc);
    const disk = best(d.submit, 'disk', conc);
    for (const r of [f, best(d.submit, 'log', conc)]) {
      if (r === undefined) continue;
      const ratio = r.store === 'log' && f !== undefined ? `${(r.putsPerSec / f.putsPerSec).toFixed(1)}x` : '';
      const share = disk === undefined ? 'n/a' : `${((r.putsPerSec / rate(disk)) * 100).toFixed(0)}%`;
      out.push(
        `| ${conc} | ${NAMES[r.store]} | ${k(r.putsPerSec)} | ${r.syncsPerPut.toFixed(3)} | ${k(r.removesPerSec)} | ${r.syncsPerRemove.toFixed(5)} | ${ratio} | ${share} |`,
      );
    }
    if (disk)
      out.push(
        `| ${conc} | disk limit: pwritev of ${conc} + fdatasync, no store | ${k(rate(disk))} | ${(1 / conc).toFixed(3)} | | | | 100% |`,
      );
  }
  const rounds = d.submit.filter((r) => r.store === 'log' && r.conc === 64).map((r) => k(r.putsPerSec));
  if (rounds.length > 1) out.push('', `LogSpool at 64 submitters, every round: ${rounds.join(', ')} puts/s.`);
  if (d.recover.length > 0) {
    out.push(
      '',
      '| store | messages | recover() s | per message | RSS after | fill puts/s (256 submitters) | disk: before / after removing 90% and compaction |',
      '|---|---|---|---|---|---|---|',
    );
    for (const r of d.recover) {
      const c = r.compaction;
      out.push(
        `| ${NAMES[r.store]} | ${r.messages} | ${r.seconds.toFixed(2)} | ${((r.seconds / r.messages) * 1e6).toFixed(1)} us | ${r.rssMiB.toFixed(0)} MiB | ${r.fillPerSec === undefined ? 'n/a' : k(r.fillPerSec)} | ${c === undefined ? 'n/a' : `${mib(c.bytesBefore)} / ${mib(c.bytesAfter)} (live ${mib(c.liveBytes)}, ${c.segments} segments)`} |`,
      );
    }
  }
  const log64 = best(d.submit, 'log', 64);
  if (log64) {
    targets.push({
      what: 'LogSpool, 64 submitters',
      goal: '>= 20,000 puts/s',
      got: `${k(log64.putsPerSec)}/s`,
      met: log64.putsPerSec >= 20_000,
      margin: `${((log64.putsPerSec / 20_000 - 1) * 100).toFixed(0)}%`,
    });
  }
  const log1 = best(d.submit, 'log', 1);
  if (log1) {
    targets.push({
      what: 'LogSpool, 1 submitter',
      goal: '<= 1 sync per put',
      got: log1.syncsPerPut.toFixed(3),
      met: log1.syncsPerPut <= 1,
      margin: '',
    });
    const worst = Math.max(log1.syncsPerRemove, log64?.syncsPerRemove ?? 0);
    targets.push({
      what: 'LogSpool, removals',
      goal: 'no sync of their own (< 0.001 a removal: compaction only)',
      got: `${worst.toFixed(5)} per removal`,
      met: worst < 0.001,
      margin: '',
    });
  }
  const rec = d.recover.filter((r) => r.store === 'log').sort((a, b) => b.messages - a.messages)[0];
  if (rec) {
    // A quick run recovers fewer: its time is scaled to 1M, as the other quick targets are read at 100k.
    const at1M = (rec.seconds * 1_000_000) / rec.messages;
    const scaled = rec.messages === 1_000_000 ? '' : ` (${at1M.toFixed(1)} s scaled to 1M)`;
    targets.push({
      what: `LogSpool recover() of ${rec.messages}`,
      goal: '< 10 s at 1M',
      got: `${rec.seconds.toFixed(2)} s${scaled}`,
      met: at1M < 10,
      margin: `${((1 - at1M / 10) * 100).toFixed(0)}% under`,
    });
  }
  return { lines: out, targets };
}
