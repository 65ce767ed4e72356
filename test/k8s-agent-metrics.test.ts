// The agent's metrics and health (controller/agent/metrics.ts, controller/metrics-server.ts) against
// the API emulator, with an in-memory firewall: /healthz answers from the start, /readyz only once
// the firewall is installed and the caches have listed, and /metrics counts what the agent did —
// grants opened, refused by kind of reason, expired, revoked, applied now, firewall syncs and errors,
// status writes, and whether the API is up (0 while it is stopped, 1 again after).

import type { Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { AccessGrant, KnockPolicy } from '../api/types.js';
import { createAgentMetrics, refusalKind } from '../controller/agent/metrics.js';
import { serveMetrics } from '../controller/metrics-server.js';
import { agentConfig, NODE, startAgentRig } from './helpers/agent-kube-rig.js';
import { waitFor } from './helpers/wait.js';

const CONFIG = agentConfig(['22/tcp', '443/tcp']);

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function get(server: Server, path: string): Promise<{ status: number; body: string }> {
  const { port } = server.address() as { port: number };
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

/** One sample of the exposition text, 0 when absent. */
function sample(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

function policy(name: string, target: Record<string, unknown> = { mode: 'Local' }): KnockPolicy {
  return {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'KnockPolicy',
    metadata: { name },
    spec: {
      knock: { sequence: ['7000/tcp', '7001/tcp', '7002/tcp'] },
      grant: { ports: ['22/tcp'], durationSeconds: 600, targets: { node: target } },
    },
  } as KnockPolicy;
}

function grant(name: string, over: Partial<AccessGrant['spec']> = {}, seconds = 600): AccessGrant {
  return {
    apiVersion: 'knockgate.io/v1alpha1',
    kind: 'AccessGrant',
    metadata: { name },
    spec: {
      source: '10.77.3.5/32',
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

describe('agent metrics and health', () => {
  it('/healthz from the start, /readyz once installed and listed, /metrics counting what the agent did', async () => {
    const metrics = createAgentMetrics();
    const r = await startAgentRig({
      agentUser: 'system:serviceaccount:knockgate:agent-node-a',
      config: CONFIG,
      nodes: { [NODE]: { role: 'edge' } },
      metrics,
      start: false,
      bookmarkIntervalMs: 500,
    });
    cleanups.push(() => r.stop());
    const { c, agent, firewall } = r;
    r.putPolicy(policy('ssh'));
    r.putPolicy(policy('db', { mode: 'Selector', nodeSelector: { role: 'db' } }));
    const server = await serveMetrics(metrics, `127.0.0.1:${await freePort()}`, {
      notReady: () => agent.notReady(),
    });
    cleanups.push(() => new Promise((r) => server.close(r)));

    expect(await get(server, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
    expect(await get(server, '/readyz')).toEqual({
      status: 503,
      body: 'the firewall is not installed yet\n',
    });
    await agent.start();
    expect(await get(server, '/readyz')).toEqual({ status: 200, body: 'ok\n' });

    r.putGrant(grant('ssh-0a4d0305'));
    r.putGrant(grant('ssh-0a4d0306', { ports: ['22/tcp', '443/tcp'], source: '10.77.3.6/32' }));
    r.putGrant(grant('db-0a4d0307', { policyRef: { name: 'db' }, source: '10.77.3.7/32' }));
    r.putGrant(grant('ssh-0a4d0308', { source: '10.77.3.8/32' }, 2));
    const scrape = async () => (await get(server, '/metrics')).body;
    await waitFor(
      async () => {
        const m = await scrape();
        return (
          sample(m, 'knockgate_agent_grants_opened_total', 'event="open"') >= 2 &&
          sample(m, 'knockgate_agent_grants_refused_total', 'reason="ports"') === 1 &&
          sample(m, 'knockgate_agent_grants_refused_total', 'reason="node-selector"') === 1 &&
          sample(m, 'knockgate_agent_grants_expired_total') === 1
        );
      },
      { timeoutMs: 20_000, what: 'opened 2, refused ports and node-selector, 1 expired' },
    );
    r.deleteGrant('ssh-0a4d0305');
    await waitFor(async () => sample(await scrape(), 'knockgate_agent_grants_revoked_total') === 1, {
      what: 'the deleted grant counted as revoked',
    });
    const m = await scrape();
    expect(sample(m, 'knockgate_agent_grants_applied')).toBe(0);
    expect(sample(m, 'knockgate_agent_api_up')).toBe(1);
    expect(sample(m, 'knockgate_agent_status_writes_total', 'result="ok"')).toBeGreaterThanOrEqual(4);
    expect(sample(m, 'knockgate_agent_firewall_sync_seconds_count')).toBeGreaterThanOrEqual(2); // install + resync
    expect(sample(m, 'knockgate_agent_firewall_errors_total', 'op="add"')).toBe(0);
    // Open latency (creationTimestamp → open) for each open, expiry lag for the expired grant.
    expect(sample(m, 'knockgate_open_latency_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(sample(m, 'knockgate_open_latency_seconds_bucket', 'le="+Inf"')).toBeGreaterThanOrEqual(2);
    expect(sample(m, 'knockgate_expiry_lag_seconds_count')).toBe(1);
    expect(sample(m, 'knockgate_expiry_lag_seconds_sum')).toBeLessThan(60);
    expect(m).toContain('knockgate_process_cpu_seconds_total');

    // A firewall that fails an add: counted; the grant is Pending and retried.
    firewall.failNextAdd = 'the kernel said no';
    r.putGrant(grant('ssh-0a4d0309', { source: '10.77.3.9/32' }));
    await waitFor(
      async () => sample(await scrape(), 'knockgate_agent_firewall_errors_total', 'op="add"') === 1,
      {
        what: 'the failed add counted',
      },
    );
    await waitFor(async () => sample(await scrape(), 'knockgate_agent_grants_applied') === 1, {
      what: 'the grant applied on retry',
    });

    // The API stopped: api_up 0 (the watches fail), then 1 again; readiness stays (caches keep state).
    void c.server.faults.stopFor(3_000);
    await waitFor(async () => sample(await scrape(), 'knockgate_agent_api_up') === 0, {
      timeoutMs: 20_000,
      what: 'api_up 0 while the API is stopped',
    });
    expect((await get(server, '/readyz')).status).toBe(200);
    await waitFor(async () => sample(await scrape(), 'knockgate_agent_api_up') === 1, {
      timeoutMs: 30_000,
      what: 'api_up 1 once the API is back',
    });
  });

  it("every refusal of check.ts has its own bounded kind (no 'other')", () => {
    const reasons: [string, string][] = [
      ['spec.ports: bad port "x"', 'ports'],
      ['port 3389/tcp is not granted by policy "ssh"', 'ports'],
      ['port 8080/tcp is not protected on this node', 'ports'],
      ['spec.source: not an address', 'source'],
      ['source 10.0.0.0/24 is not a single host', 'source'],
      ['source 10.0.0.0/16 is wider than the largest manual prefix /24 of this node', 'source'],
      ['source 127.0.0.1/32: 127.0.0.1 is never granted on this node', 'never-grant'],
      ['a knock grant without spec.policyRef', 'policy-missing'],
      ['policy "rdp" does not exist', 'policy-missing'],
      ['policy "ssh" is invalid: spec.grant.ports: required', 'policy-invalid'],
      ['method spa does not match policy "ssh" (a knock policy)', 'method'],
      ['expiresAt 2030-01-01T00:00:00Z is further away than policy "ssh" allows (60 s)', 'duration'],
      ['expiresAt 2030-01-01T00:00:00Z is more than 604800 s away', 'duration'],
      ['security group sg-1 is not one of policy "ssh"\'s targets', 'security-group'],
      ['policy "ssh" opens no node firewall (targets.node.mode None)', 'node-target'],
      ['policy "ssh" opens only the node that saw the request (node-b), not node-a', 'node-target'],
      ['policy "db" opens only nodes labelled role=db: node node-a is not', 'node-selector'],
      ['malformed grant: x is undefined', 'malformed'],
      ['firewall: bad source', 'firewall-input'],
    ];
    for (const [reason, kind] of reasons) expect([reason, refusalKind(reason)]).toEqual([reason, kind]);
    expect(refusalKind('something new')).toBe('other');
  });
});

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
