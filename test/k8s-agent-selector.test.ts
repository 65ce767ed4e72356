// The agent and Selector-mode policies, against the API emulator as its least-privileged user
// (agentRules: grants, policies, its own Node only), with an in-memory firewall: it reads its own
// Node object and applies a grant of a Selector-mode policy only when the policy's
// grant.targets.node.nodeSelector matches the node's labels (else Failed with the reason); while the
// Node cannot be read the grant stays unapplied and Pending, other grants are untouched, and it is
// decided again when the Node arrives or its labels change.

import { CoreV1Api } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import type { AccessGrant, KnockPolicy } from '../api/types.js';
import { agentConfig, NODE, startAgentRig, type AgentRig } from './helpers/agent-kube-rig.js';
import { waitFor } from './helpers/wait.js';

const AGENT_USER = 'system:serviceaccount:knockgate:agent-node-a';
const CONFIG = agentConfig(['22/tcp', '443/tcp']);

let current: AgentRig | undefined;
afterEach(async () => {
  await current?.stop();
  current = undefined;
});

async function rig(nodes: Record<string, Record<string, string>>): Promise<AgentRig> {
  current = await startAgentRig({ agentUser: AGENT_USER, config: CONFIG, nodes });
  return current;
}

function policy(
  name: string,
  target: NonNullable<KnockPolicy['spec']['grant']['targets']>['node'],
): KnockPolicy {
  return {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'KnockPolicy',
    metadata: { name },
    spec: {
      knock: { sequence: ['7000/tcp', '7001/tcp', '7002/tcp'] },
      grant: { ports: ['443/tcp', '22/tcp'], durationSeconds: 600, targets: { node: target } },
    },
  };
}

function grant(name: string, policyName: string, over: Partial<AccessGrant['spec']> = {}): AccessGrant {
  return {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'AccessGrant',
    metadata: { name },
    spec: {
      source: '10.77.2.5/32',
      ports: ['443/tcp'],
      expiresAt: new Date(Date.now() + 600_000).toISOString(),
      policyRef: { name: policyName },
      method: 'knock',
      observedBy: 'node-b', // a Selector grant is seen on one node and opens every selected one
      targets: { nodes: ['node-b', NODE] },
      ...over,
    },
  };
}

const EDGE = { mode: 'Selector' as const, nodeSelector: { role: 'edge' } };

describe('agent: Selector-mode policies against its own Node', () => {
  it("applies a Selector grant when the node's labels match, refuses it (Failed, nothing applied) when they do not", async () => {
    const r = await rig({ [NODE]: { role: 'edge', zone: 'a' }, 'node-b': { role: 'edge' } });
    r.putPolicy(policy('web', EDGE));
    r.putPolicy(policy('db', { mode: 'Selector', nodeSelector: { role: 'db', zone: 'a' } }));
    r.putGrant(grant('web-0a4d0205', 'web'));
    r.putGrant(grant('db-0a4d0205', 'db', { source: '10.77.2.6/32' }));
    await waitFor(() => r.nodeStatus('web-0a4d0205')?.state === 'Applied', { what: 'web grant Applied' });
    const failed = await waitFor(
      () => r.nodeStatus('db-0a4d0205')?.state === 'Failed' && r.nodeStatus('db-0a4d0205'),
      {
        what: 'db grant Failed',
      },
    );
    expect(failed.message).toBe('policy "db" opens only nodes labelled role=db,zone=a: node node-a is not');
    expect([...r.firewall.entries.keys()]).toEqual(['web-0a4d0205']);
    expect(r.firewall.log.join('\n')).not.toContain('db-0a4d0205');
  });

  it('without its Node the Selector grant stays unapplied and Pending, other grants apply; the Node arriving opens it', async () => {
    const r = await rig({ 'node-b': { role: 'edge' } });
    r.putPolicy(policy('web', EDGE));
    r.putPolicy(policy('ssh', { mode: 'Local' }));
    r.putGrant(grant('web-0a4d0207', 'web'));
    r.putGrant(
      grant('ssh-0a4d0207', 'ssh', { ports: ['22/tcp'], observedBy: NODE, targets: { nodes: [NODE] } }),
    );
    await waitFor(() => r.nodeStatus('ssh-0a4d0207')?.state === 'Applied', {
      what: 'the Local grant Applied',
    });
    const pending = await waitFor(
      () => r.nodeStatus('web-0a4d0207')?.state === 'Pending' && r.nodeStatus('web-0a4d0207'),
      {
        what: 'the Selector grant Pending',
      },
    );
    expect(pending.message).toBe(`waiting for node ${NODE}'s labels (policy "web" selects nodes by label)`);
    expect(r.firewall.entries.has('web-0a4d0207')).toBe(false);
    r.putNode(NODE, { role: 'edge' });
    await waitFor(() => r.nodeStatus('web-0a4d0207')?.state === 'Applied', {
      what: 'Applied once the Node exists',
    });
    expect([...r.firewall.entries.keys()].sort()).toEqual(['ssh-0a4d0207', 'web-0a4d0207']);
  });

  it('a label change that deselects the node closes the grant (Failed); the Local grant stays', async () => {
    const r = await rig({ [NODE]: { role: 'edge' } });
    r.putPolicy(policy('web', EDGE));
    r.putPolicy(policy('ssh', { mode: 'Local' }));
    r.putGrant(grant('web-0a4d0208', 'web'));
    r.putGrant(
      grant('ssh-0a4d0208', 'ssh', { ports: ['22/tcp'], observedBy: NODE, targets: { nodes: [NODE] } }),
    );
    await waitFor(
      () =>
        r.nodeStatus('web-0a4d0208')?.state === 'Applied' &&
        r.nodeStatus('ssh-0a4d0208')?.state === 'Applied',
      {
        what: 'both Applied',
      },
    );
    r.labelNode(NODE, { role: 'batch' });
    await waitFor(
      () => !r.firewall.entries.has('web-0a4d0208') && r.nodeStatus('web-0a4d0208')?.state === 'Failed',
      {
        what: 'the web grant closed and Failed',
      },
    );
    expect([...r.firewall.entries.keys()]).toEqual(['ssh-0a4d0208']);
  });

  it("the agent's RBAC: its own Node by get, list and watch (fieldSelector), no other node", async () => {
    const r = await rig({ [NODE]: { role: 'edge' }, 'node-b': { role: 'edge' } });
    const core = r.c.kubeConfigFor(AGENT_USER).makeApiClient(CoreV1Api);
    expect((await core.readNode({ name: NODE })).metadata?.name).toBe(NODE);
    const own = await core.listNode({ fieldSelector: `metadata.name=${NODE}` });
    expect(own.items.map((n) => n.metadata?.name)).toEqual([NODE]);
    await expect(core.readNode({ name: 'node-b' })).rejects.toMatchObject({ code: 403 });
    await expect(core.listNode()).rejects.toMatchObject({ code: 403 });
    await expect(core.listNode({ fieldSelector: 'metadata.name=node-b' })).rejects.toMatchObject({
      code: 403,
    });
    // The agent itself listed and watched its node that way.
    const asked = r.c.server.requests.filter(
      (q) => q.user === AGENT_USER && q.url.startsWith('/api/v1/nodes'),
    );
    const ownWatch = asked.filter((q) => q.url.includes('watch=true'));
    expect(ownWatch.length).toBeGreaterThanOrEqual(1);
    expect(ownWatch.every((q) => q.url.includes(`fieldSelector=metadata.name%3D${NODE}`))).toBe(true);
    expect(
      asked.filter((q) => q.url.includes(`metadata.name%3D${NODE}`)).every((q) => q.status !== 403),
    ).toBe(true);
    expect(
      asked.filter((q) => q.url.includes(`fieldSelector=metadata.name%3D${NODE}`)).length,
    ).toBeGreaterThanOrEqual(2);
  });
});
