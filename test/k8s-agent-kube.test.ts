// The node agent against the Kubernetes API emulator, as its own least-privileged service account
// (agentRules: get/list/watch on grants and policies, patch on accessgrants/status, its own Node), with an in-memory firewall:
// grants applied and reported, hand-written grants that exceed their policy Failed with the reason,
// a deleted policy's grants closed, and under the emulator's faults (dropped watches, compaction,
// 429s, 500s, the API stopped) nothing closed wrongly and expiry still on time.

import { afterEach, describe, expect, it } from 'vitest';
import type { AccessGrant, KnockPolicy } from '../api/types.js';
import { agentConfig, NODE, startAgentRig, type AgentRig } from './helpers/agent-kube-rig.js';
import { waitFor } from './helpers/wait.js';

const CONFIG = agentConfig(['22/tcp', '3389/tcp']);

let current: AgentRig | undefined;
afterEach(async () => {
  await current?.stop();
  current = undefined;
});

type Rig = AgentRig;

async function rig(): Promise<Rig> {
  current = await startAgentRig({ agentUser: 'system:serviceaccount:knockgate:agent', config: CONFIG });
  return current;
}

function policy(name: string, ports = ['22/tcp'], durationSeconds = 600): KnockPolicy {
  return {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'KnockPolicy',
    metadata: { name },
    spec: {
      knock: { sequence: ['7000/tcp', '7001/tcp', '7002/tcp'] },
      grant: { ports, durationSeconds, targets: { node: { mode: 'Local' } } },
    },
  };
}

function grant(name: string, over: Partial<AccessGrant['spec']> = {}, seconds = 600): AccessGrant {
  return {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'AccessGrant',
    metadata: { name },
    spec: {
      source: '10.77.1.5/32',
      ports: ['22/tcp'],
      expiresAt: new Date(Date.now() + seconds * 1000).toISOString(),
      policyRef: { name: 'ssh' },
      method: 'knock',
      observedBy: NODE,
      targets: { nodes: [NODE] },
      ...over,
    },
  };
}

const applied = (r: Rig, name: string) =>
  r.firewall.entries.has(name) && r.nodeStatus(name)?.state === 'Applied';

describe('agent against the API emulator', () => {
  it('applies a grant for its node, reports Applied in its own status key, removes it when deleted', async () => {
    const r = await rig();
    r.putPolicy(policy('ssh'));
    r.putGrant(grant('ssh-0a4d0105'));
    r.putGrant(grant('ssh-0a4d0106', { observedBy: 'node-b', targets: { nodes: ['node-b'] } }));
    await waitFor(() => applied(r, 'ssh-0a4d0105'), { what: 'Applied' });
    expect([...r.firewall.entries.keys()]).toEqual(['ssh-0a4d0105']);
    expect(r.nodeStatus('ssh-0a4d0106')).toBeUndefined();
    r.deleteGrant('ssh-0a4d0105');
    await waitFor(() => r.firewall.entries.size === 0, { what: 'removed' });
  });

  it('hand-written grants that exceed their policy apply nothing and are Failed with the reason', async () => {
    const r = await rig();
    r.putPolicy(policy('ssh', ['22/tcp'], 60));
    const bad: [AccessGrant, RegExp][] = [
      [
        grant('wider', { method: 'manual', policyRef: undefined, source: '10.77.1.0/24' }),
        /wider than the largest manual prefix \/32/,
      ],
      [
        grant('extra', { ports: ['22/tcp', '3389/tcp'] }, 60),
        /port 3389\/tcp is not granted by policy "ssh"/,
      ],
      [grant('longer', {}, 3600), /is further away than policy "ssh" allows \(60 s\)/],
      [grant('unknown', { policyRef: { name: 'rdp' } }, 60), /policy "rdp" does not exist/],
    ];
    for (const [g] of bad) r.putGrant(g);
    r.putGrant(grant('fine', {}, 60));
    await waitFor(() => applied(r, 'fine'), { what: 'the good grant Applied' });
    for (const [g, reason] of bad) {
      const s = await waitFor(
        () => r.nodeStatus(g.metadata.name)?.state === 'Failed' && r.nodeStatus(g.metadata.name),
        {
          what: `${g.metadata.name} Failed`,
        },
      );
      expect(s.message).toMatch(reason);
    }
    expect([...r.firewall.entries.keys()]).toEqual(['fine']);
    // None of them ever reached the firewall (by add or in a sync).
    expect(r.firewall.log.join('\n')).not.toMatch(/wider|extra|longer|unknown/);
  });

  it("a deleted policy's grants are closed; the others stay", async () => {
    const r = await rig();
    r.putPolicy(policy('ssh'));
    r.putPolicy(policy('rdp', ['3389/tcp']));
    r.putGrant(grant('ssh-0a4d0107'));
    r.putGrant(grant('rdp-0a4d0107', { policyRef: { name: 'rdp' }, ports: ['3389/tcp'] }));
    await waitFor(() => applied(r, 'ssh-0a4d0107') && applied(r, 'rdp-0a4d0107'), { what: 'both Applied' });
    r.deletePolicy('rdp');
    await waitFor(() => r.nodeStatus('rdp-0a4d0107')?.state === 'Failed', { what: 'rdp grant Failed' });
    expect([...r.firewall.entries.keys()]).toEqual(['ssh-0a4d0107']);
    expect(r.nodeStatus('rdp-0a4d0107')?.message).toBe('policy "rdp" does not exist');
  });

  it('watch faults (dropped, compacted, 429, 500) close nothing; changes made meanwhile arrive', async () => {
    const r = await rig();
    r.putPolicy(policy('ssh'));
    for (let i = 0; i < 5; i++) r.putGrant(grant(`ssh-0a4d02${i}0`, { source: `10.77.2.${i + 1}/32` }));
    await waitFor(() => r.firewall.entries.size === 5, { what: 'five applied' });
    const faults = r.c.server.faults;
    faults.fail({ code: 500, count: 6, method: 'GET' });
    faults.fail({ code: 429, count: 4, method: 'GET', retryAfterSeconds: 1 });
    faults.dropWatches();
    r.putGrant(grant('ssh-0a4d0250', { source: '10.77.2.50/32' }));
    r.c.server.storage.compact();
    faults.dropWatches();
    await waitFor(() => applied(r, 'ssh-0a4d0250'), {
      what: 'the grant made during the faults',
      timeoutMs: 30_000,
    });
    // Two periodic resyncs under more dropped watches.
    for (let i = 0; i < 2; i++) {
      const before = r.agent.state.resyncs;
      faults.dropWatches();
      await waitFor(() => r.agent.state.resyncs > before, { what: 'a resync', timeoutMs: 15_000 });
    }
    expect(r.firewall.entries.size).toBe(6);
    expect(r.removals()).toEqual([]);
    for (let i = 0; i < 5; i++) expect(r.nodeStatus(`ssh-0a4d02${i}0`)?.state).toBe('Applied');
  });

  it('an empty or failing policy list removes no drop and closes no grant', async () => {
    const r = await rig();
    r.putPolicy(policy('ssh'));
    r.putGrant(grant('ssh-0a4d0401', { source: '10.77.4.1/32' }));
    await waitFor(() => applied(r, 'ssh-0a4d0401'), { what: 'Applied' });
    r.c.server.faults.fail({ code: 500, count: 5, pathIncludes: 'knockpolicies' });
    r.c.server.faults.dropWatches();
    r.deletePolicy('ssh'); // the last one: the policy list is now empty
    for (let i = 0; i < 2; i++) {
      const before = r.agent.state.resyncs;
      await waitFor(() => r.agent.state.resyncs > before, { what: 'a resync', timeoutMs: 15_000 });
    }
    expect(r.firewall.entries.has('ssh-0a4d0401')).toBe(true);
    expect(r.nodeStatus('ssh-0a4d0401')?.state).toBe('Applied');
    expect(r.firewall.log.filter((l) => l.startsWith('install'))).toEqual(['install 22/tcp,3389/tcp']);
    expect(r.removals()).toEqual([]);
  });

  it('with the API stopped, a grant still closes at its expiresAt; its status is written when the API is back', async () => {
    const r = await rig();
    r.putPolicy(policy('ssh'));
    const short = grant('ssh-0a4d0301', { source: '10.77.3.1/32' }, 4);
    r.putGrant(short);
    r.putGrant(grant('ssh-0a4d0302', { source: '10.77.3.2/32' }, 600));
    await waitFor(() => applied(r, 'ssh-0a4d0301') && applied(r, 'ssh-0a4d0302'), { what: 'both Applied' });
    const expiresAt = Date.parse(short.spec.expiresAt);
    let back = false;
    const stop = r.c.server.faults.stopFor(10_000).then(() => (back = true));
    await waitFor(() => !r.firewall.entries.has('ssh-0a4d0301'), { what: 'local expiry', timeoutMs: 15_000 });
    expect(back).toBe(false); // closed while the API was still down
    expect(Date.now()).toBeLessThan(expiresAt + 5_000);
    expect(r.firewall.log).toContain('remove ssh-0a4d0301 expired');
    await stop;
    await waitFor(() => r.nodeStatus('ssh-0a4d0301')?.state === 'Removed', {
      what: 'Removed written after the stop',
      timeoutMs: 40_000,
    });
    expect(r.firewall.entries.has('ssh-0a4d0302')).toBe(true);
    expect(r.removals()).toEqual(['remove ssh-0a4d0301 expired']);
  }, 60_000);
});
