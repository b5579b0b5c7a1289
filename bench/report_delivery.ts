import type { Target } from './target.js';

/** What a run measured: wall and CPU time (bench/suites/delivery.ts, Timed). */
export interface DeliveryTimed {
  wallMs: number;
  cpuMs: number;
}

export interface DeliveryRun {
  impl: string;
  round?: number;
  /** ab-* runs: one process, blocks of `block` messages sent by each side in turn. */
  blocks?: number;
  block?: number;
  ab?: { plain: DeliveryTimed; library: DeliveryTimed }[];
  n: number;
  warm: number;
  conns: number;
  size: number;
  receiver: string;
  result: {
    wallMs: number;
    cpuMs: number;
    rate: number;
    cpuUsPerMessage: number;
    accepted: number;
    involuntarySwitches?: number;
    receiverCpuUsPerMessage?: number;
  };
}

export type DeliveryTarget = Target;

const LABELS: [string, string][] = [
  ['plain', "nodemailer `SMTPConnection` alone, each connection sending from the last message's callback"],
  ['memory', 'this library: `submit()` to a MemoryStore, `start()`'],
  ['plain-log', 'nodemailer `SMTPConnection` over a LogSpool: load, send, remove (the plain loop of a durable queue)'],
  ['log', 'this library: `submit()` to a LogSpool (group commit), `start()`'],
  ['plain-spool', 'nodemailer `SMTPConnection` over a FileSpool: load, send, remove'],
  ['spool', 'this library: `submit()` to a FileSpool, `start()`'],
  ['plain-again', 'nodemailer `SMTPConnection` alone again, a second process in the same round (an A/A control)'],
];

/** The library's runs and the plain loop each is held to (decision 54): the bare client for a
 *  store in memory, the same loop over the same store for a durable one. */
const PAIRS: { impl: string; store: string; base: string; baseName: string }[] = [
  { impl: 'memory', store: 'MemoryStore', base: 'plain', baseName: 'plain client loop' },
  { impl: 'log', store: 'LogSpool', base: 'plain-log', baseName: 'plain client loop over a LogSpool' },
  { impl: 'spool', store: 'FileSpool', base: 'plain-spool', baseName: 'plain client loop over a FileSpool' },
];

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Section 5: issue 20's delivery cost. */
export function deliverySection(all: DeliveryRun[], out: string[], targets: DeliveryTarget[]): void {
  const abRuns = all.filter((r) => r.ab !== undefined);
  const runs = all.filter((r) => r.ab === undefined);
  if (runs.length === 0) return;
  const first = runs[0];
  const rounds = [...new Set(runs.map((r) => r.round ?? 0))].sort((a, b) => a - b);
  out.push(
    '',
    `## 5. Delivery over SMTP (issue 20): ${first.n} messages of ${first.size} bytes over ${first.conns} connections`,
    '',
    `Receiver: ${first.receiver}. Each cell is one child process: a warm-up of ${first.warm} messages, then ${first.n} timed, from the first connect (plain) or \`start()\` (library) to the last delivery;`,
    'CPU is `process.cpuUsage()` of the sending process (all its threads: the file system work of a FileSpool included), per delivered message. The receiver counted every message in every run.',
    `Rounds run the implementations one after the other, ${rounds.length} round(s); the best round of each is shown (highest msg/s, lowest CPU), and the median of the ratios taken within each round.`,
    '',
    "The last columns tell how shared the machine was: involuntary context switches of the sender per message (it wanted a core and another process had it), and the receiver's own CPU per message.",
    '',
    '| implementation | msg/s | CPU us/message | msg/s ÷ plain client | CPU ÷ plain client | every round: msg/s | every round: CPU us/message | every round: involuntary switches/message | every round: receiver CPU us/message |',
    '|---|---:|---:|---:|---:|---|---|---|---|',
  );
  const of = (impl: string) => runs.filter((r) => r.impl === impl);
  const bestRate = (impl: string) => Math.max(...of(impl).map((r) => r.result.rate));
  const bestCpu = (impl: string) => Math.min(...of(impl).map((r) => r.result.cpuUsPerMessage));
  const havePlain = of('plain').length > 0;
  for (const [impl, label] of LABELS) {
    const rs = of(impl);
    if (rs.length === 0) continue;
    const rate = bestRate(impl);
    const cpu = bestCpu(impl);
    const rr = havePlain ? `${(rate / bestRate('plain')).toFixed(2)}x` : 'n/a';
    const cr = havePlain ? `${(cpu / bestCpu('plain')).toFixed(2)}x` : 'n/a';
    out.push(
      `| ${label} | ${rate.toFixed(0)} | ${cpu.toFixed(1)} | ${rr} | ${cr} | ${rs.map((r) => r.result.rate.toFixed(0)).join(', ')} | ${rs.map((r) => r.result.cpuUsPerMessage.toFixed(1)).join(', ')} | ` +
        `${rs.map((r) => (r.result.involuntarySwitches === undefined ? 'n/a' : (r.result.involuntarySwitches / r.n).toFixed(2))).join(', ')} | ${rs.map((r) => r.result.receiverCpuUsPerMessage?.toFixed(1) ?? 'n/a').join(', ')} |`,
    );
  }
  if (!havePlain) return;
  const notes: string[] = [];
  // Within each round: a run against another run of the same round.
  const paired = (impl: string, base: string) =>
    rounds
      .map((round) => {
        const p = runs.find((r) => r.impl === base && (r.round ?? 0) === round);
        const l = runs.find((r) => r.impl === impl && (r.round ?? 0) === round);
        return p && l
          ? { rate: l.result.rate / p.result.rate, cpu: l.result.cpuUsPerMessage / p.result.cpuUsPerMessage }
          : undefined;
      })
      .filter((x): x is { rate: number; cpu: number } => x !== undefined);
  // The A/A control: two processes of the same loop in one round part this far.
  const aa = paired('plain-again', 'plain');
  if (aa.length > 0)
    notes.push(
      `A/A control, plain-again ÷ plain (the same code): within each round msg/s ${aa.map((x) => x.rate.toFixed(2)).join(', ')}, CPU ${aa.map((x) => x.cpu.toFixed(2)).join(', ')}`,
    );
  for (const { impl, store, base, baseName } of PAIRS) {
    if (of(impl).length === 0) continue;
    // Against the bare client, reported for every store; held to the targets only where the base is
    // the bare client (a store in memory) or the base was not run.
    const bases = of(base).length > 0 ? [...new Set(['plain', base])] : ['plain'];
    for (const b of bases) {
      const within = paired(impl, b);
      const rateRatio = bestRate(impl) / bestRate(b);
      const cpuRatio = bestCpu(impl) / bestCpu(b);
      const medRate = median(within.map((x) => x.rate));
      const medCpu = median(within.map((x) => x.cpu));
      const name = b === 'plain' ? 'plain client loop' : baseName;
      notes.push(
        `${impl} ÷ ${b}: within each round msg/s ${within.map((x) => x.rate.toFixed(2)).join(', ')} (median ${medRate.toFixed(2)}), CPU ${within.map((x) => x.cpu.toFixed(2)).join(', ')} (median ${medCpu.toFixed(2)})`,
      );
      if (b !== base) continue;
      const group = 'Delivery over SMTP (vs the same loop without the library)';
      targets.push({
        what: `delivery throughput, ${store} ÷ ${name} (issue 20)`,
        chart: [
          { group, label: `${store}: msg/s`, ratio: rateRatio, goal: 0.9 },
          { group, label: `${store}: CPU a message (inverse)`, ratio: 1 / cpuRatio, goal: 1 / 1.15 },
        ],
        goal: '>= 0.9x',
        got: `${rateRatio.toFixed(2)}x best rounds (median within rounds ${medRate.toFixed(2)}x)`,
        met: rateRatio >= 0.9,
        margin: rateRatio >= 0.9 ? '' : `needs ${(0.9 / rateRatio).toFixed(2)}x more`,
      });
      targets.push({
        what: `delivery CPU per message, ${store} ÷ ${name} (issue 20)`,
        goal: '<= 1.15x',
        got: `${cpuRatio.toFixed(2)}x best rounds (median within rounds ${medCpu.toFixed(2)}x)`,
        met: cpuRatio <= 1.15,
        margin: cpuRatio <= 1.15 ? '' : `needs ${(cpuRatio / 1.15).toFixed(2)}x less`,
      });
    }
  }
  out.push('', ...notes.map((s) => `- ${s}`));
  abSection(abRuns, out);
  const mine = targets.filter((t) => t.what.endsWith('(issue 20)'));
  if (mine.length) {
    out.push('', '### Targets of issue 20', '', '| target | goal | measured | met | miss |', '|---|---|---|---|---|');
    for (const t of mine)
      out.push(
        `| ${t.what.replace(' (issue 20)', '')} | ${t.goal} | ${t.got} | ${t.met ? 'yes' : '**no**'} | ${t.margin} |`,
      );
  }
}

/** The ab-* runs: the library and the plain loop in one process, in alternating blocks. */
function abSection(runs: DeliveryRun[], out: string[]): void {
  if (runs.length === 0) return;
  out.push(
    '',
    `In one process, alternating blocks (${runs[0].blocks} blocks of ${runs[0].block} messages a side; each block connects its ${runs[0].conns} connections afresh, so the code also runs through connection setup and V8 re-optimising what a closed connection's objects held): the library's block ÷ the plain loop's block next to it.`,
    '',
    '| library over | plain loop over | msg/s ÷ plain, median of blocks | every block | CPU ÷ plain, median of blocks | every block |',
    '|---|---|---:|---|---:|---|',
  );
  for (const r of runs) {
    const ab = r.ab ?? [];
    const rate = ab.map((b) => b.plain.wallMs / b.library.wallMs);
    const cpu = ab.map((b) => b.library.cpuMs / b.plain.cpuMs);
    const [lib, base] = r.impl === 'ab-log' ? ['LogSpool', 'a LogSpool'] : ['MemoryStore', 'nothing (the bare client)'];
    out.push(
      `| ${lib} | ${base} | ${median(rate).toFixed(2)}x | ${rate.map((x) => x.toFixed(2)).join(', ')} | ${median(cpu).toFixed(2)}x | ${cpu.map((x) => x.toFixed(2)).join(', ')} |`,
    );
  }
}
