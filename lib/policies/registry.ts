// The policies attached to each core, for the operator's views (GET /policies on the admin API).
// Kept beside the core, not in it: a core knows nothing of the policies built on its hooks.
import type { MailQueueCore } from '../core.js';

/** What a policy shows an operator: its kind and, on demand, its state. */
export interface PolicyView {
  readonly kind: string;
  state(): unknown;
}

const attached = new WeakMap<MailQueueCore, Set<PolicyView>>();

/** Lists `view` with the core's policies until the returned function is called. */
export function listPolicy(core: MailQueueCore, view: PolicyView): () => void {
  let set = attached.get(core);
  if (set === undefined) attached.set(core, (set = new Set()));
  set.add(view);
  return () => set.delete(view);
}

/** The policies attached to a core, each with its state now, in the order they were attached. */
export function policyStates(core: MailQueueCore): { kind: string; state: unknown }[] {
  return [...(attached.get(core) ?? [])].map((v) => ({ kind: v.kind, state: v.state() }));
}
