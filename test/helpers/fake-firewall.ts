// An in-memory Firewall for daemon logic tests (the kernel backends are tested in firewall-*.test.ts).

import type {
  Firewall,
  FirewallBackend,
  FirewallConfig,
  FirewallGrant,
  FirewallStats,
  RemoveReason,
} from '../../controller/firewall/types.js';
import { FirewallApplyError, MaxGrantsError } from '../../controller/firewall/types.js';

export class FakeFirewall implements Firewall {
  readonly backend: FirewallBackend = 'nftables';
  config: FirewallConfig | undefined;
  readonly entries = new Map<string, FirewallGrant>();
  readonly log: string[] = [];
  refused = 0;
  /** Make the next add() fail with this message. */
  failNextAdd: string | undefined;
  installed = false;

  constructor(private readonly maxGrants = 100) {}

  async install(config?: FirewallConfig): Promise<void> {
    this.config = config;
    this.installed = true;
    this.log.push(`install ${config?.protectedPorts.map((p) => `${p.port}/${p.proto}`).join(',')}`);
  }
  async sync(grants: FirewallGrant[]): Promise<void> {
    this.entries.clear();
    for (const g of grants) this.entries.set(g.name, g);
    this.log.push(`sync ${grants.map((g) => g.name).join(',')}`);
  }
  async add(grant: FirewallGrant): Promise<void> {
    if (this.failNextAdd) {
      const message = this.failNextAdd;
      this.failNextAdd = undefined;
      throw new FirewallApplyError(message);
    }
    if (!this.entries.has(grant.name) && this.entries.size >= this.maxGrants) {
      this.refused++;
      throw new MaxGrantsError(`${this.maxGrants} grants are applied`);
    }
    this.entries.set(grant.name, grant);
    this.log.push(`add ${grant.name}`);
  }
  async remove(grant: Pick<FirewallGrant, 'name'>, reason: RemoveReason): Promise<void> {
    this.entries.delete(grant.name);
    this.log.push(`remove ${grant.name} ${reason}`);
  }
  grants(): FirewallGrant[] {
    return [...this.entries.values()];
  }
  stats(): FirewallStats {
    return {
      grants: this.entries.size,
      maxGrants: this.maxGrants,
      refusedMaxGrants: this.refused,
      applyFailures: 0,
    };
  }
  async cleanup(): Promise<void> {
    this.entries.clear();
    this.installed = false;
    this.log.push('cleanup');
  }
  async close(): Promise<void> {
    this.log.push('close');
  }
}
