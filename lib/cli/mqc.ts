#!/usr/bin/env node
// `mqc`: the operator's command line over a running core's admin HTTP API (lib/admin/http.ts).
// Human tables by default, --json for scripts. The API's address and token come from --url and
// --token, or MQC_ADMIN_URL and MQC_ADMIN_TOKEN.
//
// Exit status: 0 done; 1 the API refused (the error it gave is printed); 2 the API could not be
// reached or answered something that is not the admin API.
import { readFile } from 'node:fs/promises';

import { Command, InvalidArgumentError } from 'commander';

import type { Qshape } from '../core/qshape.js';
import { qshapeText, table } from './text_table.js';

export { table };

interface Globals {
  url: string;
  token?: string;
  json?: boolean;
}

class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

async function request(g: Globals, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  const headers: Record<string, string> = {};
  if (g.token) headers.authorization = `Bearer ${g.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let r: Response;
  try {
    r = await fetch(new URL(path, g.url), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    const why = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    throw new CliError(2, `cannot reach the admin API at ${g.url}: ${why}`);
  }
  const text = await r.text();
  if (path === '/metrics' && r.ok) return text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliError(2, `${g.url} answered ${r.status} with something that is not the admin API's JSON`);
  }
  if (!r.ok) {
    const e = parsed as { error?: string; code?: string };
    throw new CliError(1, `${r.status}${e.code ? ` ${e.code}` : ''}: ${e.error ?? 'refused'}`);
  }
  return parsed;
}

const positiveInt = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number, got ${v}`);
  return n;
};

export function program(out: (s: string) => void): Command {
  const cmd = new Command('mqc')
    .description('operate a running mail-queue-core through its admin HTTP API')
    .option('--url <url>', 'the admin API (env MQC_ADMIN_URL)', process.env.MQC_ADMIN_URL ?? 'http://127.0.0.1:8025')
    .option('--token <token>', 'bearer token (env MQC_ADMIN_TOKEN)', process.env.MQC_ADMIN_TOKEN)
    .option('--json', 'print the API answer as JSON');
  const g = (): Globals => cmd.opts<Globals>();
  const print = (data: unknown, human: () => string) => out(g().json ? JSON.stringify(data, null, 2) : human());

  // An answer with per-binding rows (summary, domain): its own figures, then a row per binding.
  const withBindings = (path: string) => async () => {
    const r = (await request(g(), 'GET', path)) as Record<string, unknown> & {
      bindings: Record<string, Record<string, unknown>>;
    };
    print(r, () => {
      const { bindings, ...rest } = r;
      return `${table([rest])}\n\n${table(Object.entries(bindings).map(([binding, v]) => ({ binding, ...v })))}`;
    });
  };
  cmd.command('summary').description('counts, outcomes and bindings').action(withBindings('/summary'));
  cmd
    .command('domain <name>')
    .description("one domain's queues and connections per binding")
    .action((name: string) => withBindings(`/domains/${encodeURIComponent(name)}`)());
  cmd
    .command('queue <domain>')
    .description("a domain's queued messages")
    .option('--binding <binding>', 'the active queue of this binding')
    .option('--delayed', 'the delayed queue')
    .option('--limit <n>', 'how many', positiveInt('--limit'))
    .option('--offset <n>', 'from where', positiveInt('--offset'))
    .action(async (domain: string, o: { binding?: string; delayed?: boolean; limit?: number; offset?: number }) => {
      const q = new URLSearchParams();
      if (o.binding !== undefined) q.set('binding', o.binding);
      if (o.delayed) q.set('queue', 'delayed');
      if (o.limit !== undefined) q.set('limit', String(o.limit));
      if (o.offset !== undefined) q.set('offset', String(o.offset));
      const r = (await request(g(), 'GET', `/domains/${encodeURIComponent(domain)}/queue?${q}`)) as {
        messages: Record<string, unknown>[];
      };
      print(r, () => table(r.messages));
    });
  cmd
    .command('qshape')
    .description('the queue by domain and age in minutes, busiest domains first (like Postfix qshape)')
    .option('--top <n>', 'domains shown by name (default 20)', positiveInt('--top'))
    .option('--minutes <list>', 'bucket edges in minutes, comma-separated (default 5,10,20,...,1280)')
    .action(async (o: { top?: number; minutes?: string }) => {
      const q = new URLSearchParams();
      if (o.top !== undefined) q.set('top', String(o.top));
      if (o.minutes !== undefined) q.set('minutes', o.minutes);
      const r = (await request(g(), 'GET', `/qshape?${q}`)) as Qshape;
      print(r, () => qshapeText(r));
    });
  cmd
    .command('metrics')
    .description('the Prometheus text')
    .action(async () => {
      out(String(await request(g(), 'GET', '/metrics')).trimEnd());
    });
  const action = (name: string, description: string) => cmd.command(name).description(description);
  action('suspend <domain>', 'stop opening connections to a domain')
    .option('--binding <binding>', 'one binding only')
    .option('--for <seconds>', 'resume after this long', positiveInt('--for'))
    .action(async (domain: string, o: { binding?: string; for?: number }) => {
      const body = {
        domain,
        ...(o.binding ? { binding: o.binding } : {}),
        ...(o.for ? { durationMs: o.for * 1000 } : {}),
      };
      const r = await request(g(), 'POST', '/suspend', body);
      print(r, () => `suspended ${domain}${o.binding ? ` on ${o.binding}` : ''}${o.for ? ` for ${o.for} s` : ''}`);
    });
  action('resume <domain>', 'open connections to a domain again')
    .option('--binding <binding>', 'one binding only')
    .action(async (domain: string, o: { binding?: string }) => {
      const r = await request(g(), 'POST', '/resume', { domain, ...(o.binding ? { binding: o.binding } : {}) });
      print(r, () => `resumed ${domain}${o.binding ? ` on ${o.binding}` : ''}`);
    });
  action('flush <domain>', "make a domain's delayed mail due now").action(async (domain: string) => {
    const r = (await request(g(), 'POST', '/flush', { domain })) as { moved: number };
    print(r, () => `${r.moved} message(s) of ${domain} due now`);
  });
  action('fail <domain>', "bounce a domain's queued mail").action(async (domain: string) => {
    const r = (await request(g(), 'POST', '/fail', { domain })) as { failed: number };
    print(r, () => `${r.failed} message(s) of ${domain} bounced`);
  });
  action('retry <id>', 'make a delayed message due now').action(async (id: string) => {
    const n = Number(id);
    if (!Number.isSafeInteger(n) || n < 0) throw new CliError(1, `id must be a message id (a whole number), got ${id}`);
    const r = (await request(g(), 'POST', '/retry', { id: n })) as { retried: boolean };
    print(r, () => (r.retried ? `${n} is due now` : `${n} is not a delayed message`));
  });
  action('configure <file>', 'apply a configuration (a JSON file) to the running core').action(async (file: string) => {
    let config: unknown;
    try {
      config = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw new CliError(1, `cannot read ${file} as JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
    const r = await request(g(), 'POST', '/config', config);
    print(r, () => `configured from ${file}`);
  });
  return cmd;
}

// Run as a program (not when imported by a test).
if (process.argv[1] && /mqc(\.[cm]?[jt]s)?$/.test(process.argv[1])) {
  program((s) => process.stdout.write(`${s}\n`))
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      process.stderr.write(`mqc: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = err instanceof CliError ? err.exitCode : 2;
    });
}
