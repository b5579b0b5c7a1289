// `npm run simulate -- --scenario NAME [--seed N] [--minutes M]`: runs a scenario once per policy
// variant on the simulated clock, prints each variant's timeline (a row per simulated minute) and
// a summary, and writes sim/results/<scenario>.svg. `--scenario all` runs every scenario; `--list`
// lists them. docs/simulator.md says what each scenario models.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { runOptions, SCENARIOS, type Scenario } from './scenarios.js';
import { runSimulation, type SimulationResult } from './simulation.js';
import { timelineSvg } from './svg_chart.js';

const RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function count(name: string, fallback: number): number {
  const v = arg(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${name} must be a whole number of at least 1, got ${v}`);
  return n;
}

function table(rows: SimulationResult['rows']): string {
  const head = [
    'min',
    'open',
    'peak',
    'accepted',
    'refused',
    'rate-ltd',
    'greylist',
    'down',
    'replies',
    'queued',
    'window',
  ];
  const lines = [head.map((h) => h.padStart(8)).join(' ')];
  for (const r of rows)
    lines.push(
      [
        r.minute,
        r.open,
        r.peakOpen,
        r.accepted,
        r.refusedConnections,
        r.rateLimited,
        r.greylisted,
        r.downRefusals,
        r.windowReplies,
        r.queued,
        r.window ?? '',
      ]
        .map((v) => String(v).padStart(8))
        .join(' '),
    );
  return lines.join('\n');
}

async function runScenario(s: Scenario, seed: number, minutes: number): Promise<void> {
  console.log(`\n# ${s.name}: ${s.what}`);
  console.log(
    `# ${s.backlog} messages queued at the start, ${s.arrivalsPerMinute} arriving a minute, ${minutes} simulated minutes, seed ${seed}`,
  );
  const results: { name: string; r: SimulationResult }[] = [];
  for (const v of s.variants) {
    const t0 = Date.now();
    const r = await runSimulation({ ...runOptions(s, v, seed), minutes });
    console.log(`\n## ${v.name} (${((Date.now() - t0) / 1000).toFixed(1)} s of real time)\n${table(r.rows)}`);
    results.push({ name: v.name, r });
  }
  console.log('\n## summary');
  for (const { name, r } of results) {
    const t = r.totals;
    console.log(
      `  ${name.padEnd(32)} accepted ${t.accepted}, refused connections ${t.refusedConnections}, rate-limited ${t.rateLimited}, ` +
        `greylisted ${t.greylisted}, refused while down ${t.downRefusals}, replies in the window ${t.windowReplies}, ` +
        `peak open ${t.peakOpen}, still queued ${t.queuedAtEnd} of ${t.submitted}`,
    );
  }
  fs.mkdirSync(RESULTS, { recursive: true });
  const file = path.join(RESULTS, `${s.name}.svg`);
  fs.writeFileSync(
    file,
    timelineSvg(
      s.name,
      `${s.what} (seed ${seed})`,
      results.map(({ name, r }) => ({ name, rows: r.rows })),
      [
        { label: 'connections open at the receiver (peak in the minute)', value: (r) => r.peakOpen },
        { label: 'messages accepted a minute', value: (r) => r.accepted },
        {
          label: 'refusals a minute (connections, rate limit, greylisting, down, replies)',
          value: (r) => r.refusedConnections + r.rateLimited + r.greylisted + r.downRefusals + r.windowReplies,
        },
      ],
    ),
  );
  console.log(`  chart: ${path.relative(process.cwd(), file)}`);
}

const name = arg('scenario');
if (process.argv.includes('--list') || name === undefined) {
  console.log('scenarios (npm run simulate -- --scenario NAME | all):');
  for (const s of SCENARIOS)
    console.log(`  ${s.name.padEnd(14)} ${s.what}; policies: ${s.variants.map((v) => v.name).join(', ')}`);
  process.exit(name === undefined && !process.argv.includes('--list') ? 1 : 0);
}
const chosen = name === 'all' ? SCENARIOS : SCENARIOS.filter((s) => s.name === name);
if (chosen.length === 0) {
  console.error(
    `--scenario: no scenario ${JSON.stringify(name)} (known: ${SCENARIOS.map((s) => s.name).join(', ')}, all)`,
  );
  process.exit(1);
}
const seed = count('seed', 1);
for (const s of chosen) await runScenario(s, seed, count('minutes', s.minutes));
