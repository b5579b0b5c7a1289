import type { Target } from './target.js';

export interface DeliveryRun {
  impl: string;
  round?: number;
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
  ['spool', 'this library: `submit()` to a FileSpool, `start()`'],
  ['log', 'this library: `submit()` to a LogSpool (group commit), `start()`'],
];

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Section 5: issue 20's delivery cost. */
export function deliverySection(runs: DeliveryRun[], out: string[], targets: DeliveryTarget[]): void {
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
    '| implementation | msg/s | CPU us/message | msg/s ÷ plain | CPU ÷ plain | every round: msg/s | every round: CPU us/message | every round: involuntary switches/message | every round: receiver CPU us/message |',
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
  for (const impl of ['memory', 'spool', 'log']) {
    if (of(impl).length === 0) continue;
    // Within each round: the library's run against the plain loop of the same round.
    const paired = rounds
      .map((round) => {
        const p = runs.find((r) => r.impl === 'plain' && (r.round ?? 0) === round);
        const l = runs.find((r) => r.impl === impl && (r.round ?? 0) === round);
        return p && l
          ? { rate: l.result.rate / p.result.rate, cpu: l.result.cpuUsPerMessage / p.result.cpuUsPerMessage }
          : undefined;
      })
      .filter((x): x is { rate: number; cpu: number } => x !== undefined);
    const rateRatio = bestRate(impl) / bestRate('plain');
    const cpuRatio = bestCpu(impl) / bestCpu('plain');
    const medRate = median(paired.map((x) => x.rate));
    const medCpu = median(paired.map((x) => x.cpu));
    notes.push(
      `${impl}: within each round msg/s ÷ plain ${paired.map((x) => x.rate.toFixed(2)).join(', ')} (median ${medRate.toFixed(2)}), CPU ÷ plain ${paired.map((x) => x.cpu.toFixed(2)).join(', ')} (median ${medCpu.toFixed(2)})`,
    );
    const store = impl === 'memory' ? 'MemoryStore' : impl === 'spool' ? 'FileSpool' : 'LogSpool';
    targets.push({
      what: `delivery throughput, ${store} ÷ plain client loop (issue 20)`,
      chart: [
        { group: 'Delivery over SMTP (vs nodemailer alone)', label: `${store}: msg/s`, ratio: rateRatio, goal: 0.9 },
        {
          group: 'Delivery over SMTP (vs nodemailer alone)',
          label: `${store}: CPU a message (inverse)`,
          ratio: 1 / cpuRatio,
          goal: 1 / 1.15,
        },
      ],
      goal: '>= 0.9x',
      got: `${rateRatio.toFixed(2)}x best rounds (median within rounds ${medRate.toFixed(2)}x)`,
      met: rateRatio >= 0.9,
      margin: rateRatio >= 0.9 ? '' : `needs ${(0.9 / rateRatio).toFixed(2)}x more`,
    });
    targets.push({
      what: `delivery CPU per message, ${store} ÷ plain client loop (issue 20)`,
      goal: '<= 1.15x',
      got: `${cpuRatio.toFixed(2)}x best rounds (median within rounds ${medCpu.toFixed(2)}x)`,
      met: cpuRatio <= 1.15,
      margin: cpuRatio <= 1.15 ? '' : `needs ${(cpuRatio / 1.15).toFixed(2)}x less`,
    });
  }
  out.push('', ...notes.map((s) => `- ${s}`));
  const mine = targets.filter((t) => t.what.endsWith('(issue 20)'));
  if (mine.length) {
    out.push('', '### Targets of issue 20', '', '| target | goal | measured | met | miss |', '|---|---|---|---|---|');
    for (const t of mine)
      out.push(
        `| ${t.what.replace(' (issue 20)', '')} | ${t.goal} | ${t.got} | ${t.met ? 'yes' : '**no**'} | ${t.margin} |`,
      );
  }
}
