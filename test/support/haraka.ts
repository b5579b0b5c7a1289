// A real Haraka (the devDependency from npm, node_modules/Haraka) as a child process, for
// test/integrations/haraka.test.ts: a temporary Haraka config dir that loads this repository's
// plugin (integrations/haraka) as the package haraka-plugin-mail-queue-core from its node_modules,
// with the relay plugin letting 127.0.0.1 relay (so mail goes through queue_outbound), listening on
// a loopback port. mail-queue-core itself is the library compiled by compileLib() (with the addon
// MAIL_QUEUE_CORE_BINDING names), linked as node_modules/mail-queue-core; Haraka puts its config
// dir's node_modules on NODE_PATH, which is how the plugin's require('mail-queue-core') finds it.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './harness.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const HARAKA = path.join(root, 'node_modules', 'Haraka');
const HARAKA_BIN = path.join(HARAKA, 'bin', 'haraka');
const PLUGIN_DIR = path.join(root, 'integrations', 'haraka');

export interface HarakaConfig {
  port: number;
  spool: string;
  /** domain -> the port of its receiver on 127.0.0.1 */
  routes: Record<string, number>;
  /** [global] of mail_queue_core.ini */
  global: Record<string, string | number>;
  /** [domain NAME] sections */
  domains?: Record<string, Record<string, string | number>>;
  /** smtp.ini nodes (default 0: one process) */
  nodes?: number;
}

/** A free loopback port (closed again; Haraka binds it next). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Writes a Haraka config dir at `dir` (made if missing); `libDir` is the compiled library. */
export function writeHarakaDir(dir: string, libDir: string, c: HarakaConfig): void {
  const conf = path.join(dir, 'config');
  const mods = path.join(dir, 'node_modules');
  // Haraka's own default configs first, as `haraka -i` installs them; ours replace some below.
  fs.cpSync(path.join(HARAKA, 'config'), conf, { recursive: true });
  fs.mkdirSync(mods, { recursive: true });
  const link = (target: string, name: string) => {
    const at = path.join(mods, name);
    if (!fs.existsSync(at)) fs.symlinkSync(target, at, 'dir');
  };
  link(PLUGIN_DIR, 'haraka-plugin-mail-queue-core');
  link(libDir, 'mail-queue-core');
  const write = (name: string, text: string) => fs.writeFileSync(path.join(conf, name), text);
  write(
    'smtp.ini',
    `[main]\nlisten=127.0.0.1:${c.port}\nnodes=${c.nodes ?? 0}\ngraceful_shutdown=true\nforce_shutdown_timeout=20\n`,
  );
  write('plugins', 'relay\nmail-queue-core\n');
  write('relay.ini', '[relay]\nacl=true\n');
  write('relay_acl_allow', '127.0.0.1/32\n');
  write('me', 'haraka.test\n');
  write('log.ini', '[main]\nlevel=info\ntimestamps=true\n');
  const section = (name: string, kv: Record<string, string | number>) =>
    `[${name}]\n${Object.entries(kv)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`;
  write(
    'mail_queue_core.ini',
    [
      section('main', { spool: c.spool, submit_timeout: '20s', stop_timeout: '30s' }),
      section('routes', Object.fromEntries(Object.entries(c.routes).map(([d, p]) => [d, `127.0.0.1:${p}`]))),
      section('timeouts', { connect: '5s', greeting: '5s', command: '10s', message: '20s', quit: '2s' }),
      section('global', c.global),
      ...Object.entries(c.domains ?? {}).map(([d, kv]) => section(`domain ${d}`, kv)),
    ].join('\n'),
  );
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One run of Haraka on a config dir; `log` is everything it printed (stdout and stderr). */
export class HarakaProcess {
  log = '';
  exit: Exit | undefined;
  readonly exited: Promise<Exit>;
  readonly child: ChildProcess;

  constructor(dir: string, env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [HARAKA_BIN, '-c', dir], { cwd: dir, env });
    for (const s of [this.child.stdout, this.child.stderr]) {
      s?.setEncoding('utf8').on('data', (t: string) => {
        this.log += t;
      });
    }
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  /** Starts Haraka and waits for the plugin's "ready" (recover() and start() done). */
  static async start(dir: string, env: NodeJS.ProcessEnv): Promise<HarakaProcess> {
    const h = new HarakaProcess(dir, env);
    await h.waitForLog(/mail-queue-core ready/, 30_000);
    return h;
  }

  async waitForLog(re: RegExp, timeoutMs = 20_000): Promise<void> {
    await waitFor(
      () => re.test(this.log) || this.exit !== undefined,
      `Haraka to log ${re}`,
      timeoutMs,
      () => this.log.slice(-3000),
    );
    if (!re.test(this.log)) throw new Error(`Haraka exited (${JSON.stringify(this.exit)}) before ${re}:\n${this.log}`);
  }

  /** SIGKILL if still running, and wait for the end. */
  async kill(): Promise<Exit> {
    if (this.exit === undefined) this.child.kill('SIGKILL');
    return this.exited;
  }
}
