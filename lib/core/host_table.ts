// The Host scope's names (decision 47): MX hosts by name and their index in the native ledger (a
// record made on demand, with the caps the configuration gives that name), the MX set last taught
// to the ledger for each domain, and the questions a connection's session asks before it connects
// to a host. The ledger counts; this only translates names. Kept by the delivery service, so it
// lives as long as the core, across start() and stop().
import { native } from '../native.js';
import { normalizeHost } from '../transport/mx_resolver.js';
import type { DeliveryTarget } from '../transport/transport.js';
import type { CoreContext } from './core_context.js';

/** What a connection's transport target carries under the Host scope. */
export type HostGate = Required<Pick<DeliveryTarget, 'learnHosts' | 'claimHost'>> & Pick<DeliveryTarget, 'preferHost'>;

export class HostTable {
  readonly #byName = new Map<string, number>();
  readonly #names: string[] = [];
  /** Domain index -> the MX set last given to the ledger, joined. */
  readonly #taught = new Map<number, string>();

  constructor(private readonly ctx: CoreContext) {}

  /** Whether the configuration caps any host: only then are hosts counted. */
  get active(): boolean {
    return this.ctx.config.hosts.active;
  }

  /** Makes the record of every configured host, which turns the ledger's Host scope on: from then
   *  on a domain whose MX set is not known gets one connection at a time. The delivery service
   *  calls it at start(): a core driven by its caller (no delivery layer) keeps no host counts. */
  start(): void {
    for (const name of this.ctx.config.hosts.names()) this.index(name);
  }

  /** The ledger's index of a host, its record made on first use. */
  index(host: string): number {
    const name = normalizeHost(host);
    let h = this.#byName.get(name);
    if (h === undefined) {
      const caps = this.ctx.config.hosts;
      h = native.addHost(this.ctx.live(), caps.max(name), Float64Array.from(caps.bindingMax(name)));
      this.#byName.set(name, h);
      this.#names[h] = name;
    }
    return h;
  }

  /** Teaches the ledger a domain's MX hosts, in preference order. */
  learn(domain: number, hosts: readonly string[]): void {
    const distinct = [...new Set(hosts.map(normalizeHost))].slice(0, native.limits.maxDomainHosts);
    const key = distinct.join(' ');
    if (this.#taught.get(domain) === key) return;
    native.setDomainHosts(
      this.ctx.live(),
      domain,
      Uint32Array.from(distinct, (n) => this.index(n)),
    );
    this.#taught.set(domain, key);
  }

  /** A forgotten domain's slot: what was taught for it is not the next domain's. */
  forget(domain: number): void {
    this.#taught.delete(domain);
  }

  /** The host a connection is charged to, or undefined. */
  charged(connectionId: number): string | undefined {
    const h = native.connectionHost(this.ctx.live(), connectionId);
    return h < 0 ? undefined : this.#names[h];
  }

  /** Connections charged to a host now (0 for a host never seen). */
  count(host: string): number {
    const h = this.#byName.get(normalizeHost(host));
    return h === undefined ? 0 : native.hostCount(this.ctx.live(), h);
  }

  /** The target fields of a connection of `domain`: the host it is charged to, where the session
   *  reports the domain's MX set, and the charge moved (or refused) before each connect. */
  gate(connectionId: number, domain: number): HostGate {
    return {
      preferHost: this.charged(connectionId),
      learnHosts: (hosts) => this.learn(domain, hosts),
      claimHost: (host) => native.claimHost(this.ctx.live(), connectionId, this.index(host)),
    };
  }
}
