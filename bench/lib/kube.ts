// A one-node Kubernetes cluster inside the bench's server namespace, for the kube-* scenarios: the
// API emulator as its own program (reachable only on the namespace's loopback), the CRDs, RBAC with
// one user per role, the node, the SPA key Secret and the bench's two policies (the same knock and
// SPA policies knockgate standalone runs with, bench/lib/knockgate.ts), then `knockgate sniffer` and
// `knockgate agent` as the programs a DaemonSet would run. No controller: the agent opens a grant
// the sniffer wrote without it (the controller only reports and garbage-collects).

import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { FirewallBackend } from '../../api/standalone.js';
import { agentRules } from '../../controller/agent/rbac.js';
import { SNIFFER_CLUSTER_RULES, SNIFFER_NAMESPACE_RULES } from '../../controller/sniffer/rbac.js';
import { waitFor, type Host } from '../../test/helpers/netns.js';
import { stopPeer, type Peer } from './peers.js';
import { KNOCKGATE, KNOCK_PORTS, PROTECTED_PORT, ROOT, SPA_PORT, type SpaKeys } from './setup.js';

export const KUBE_NAMESPACE = 'knockgate';
export const NODE = 'bench-node';
const EMULATOR = join(ROOT, 'dist', 'test', 'emulators', 'kube-apiserver', 'main.js');
/** The in-namespace helper program (bench/lib/kube-node.ts). */
export const KUBE_NODE_HELPER = join(ROOT, 'dist', 'bench', 'lib', 'kube-node.js');
/** Grant durations of the bench policies; the reconcile scenario's grants live within this. */
export const POLICY_DURATION_SECONDS = 7200;

// Each role holds exactly the rules the product declares for it (controller/*/rbac.ts), one token
// each; the admin sets the cluster up.
function rbacFile(): string {
  const users = [
    {
      name: 'admin',
      token: 'bench-admin-token-0123456789',
      rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
    },
    {
      name: 'sniffer',
      token: 'bench-sniffer-token-0123456789',
      rules: [
        ...SNIFFER_CLUSTER_RULES,
        ...SNIFFER_NAMESPACE_RULES.map((r) => ({ ...r, namespaces: [KUBE_NAMESPACE] })),
      ],
    },
    { name: 'agent', token: 'bench-agent-token-0123456789', rules: agentRules(NODE) },
  ];
  // JSON is YAML: the emulator's --rbac file.
  return `${JSON.stringify({ users }, null, 2)}\n`;
}

// Secret data is base64 of the key text (itself base64), as the API returns it.
const b64 = (text: string) => Buffer.from(text).toString('base64');

function manifests(keys: SpaKeys): string {
  const grant = `grant: {ports: ["${PROTECTED_PORT}/tcp"], durationSeconds: ${POLICY_DURATION_SECONDS}}`;
  return `apiVersion: v1
kind: Node
metadata: {name: ${NODE}, labels: {role: bench}}
---
apiVersion: v1
kind: Secret
metadata: {name: bench-keys, namespace: ${KUBE_NAMESPACE}}
data: {KEY_BASE64: "${b64(keys.keyBase64)}", HMAC_KEY_BASE64: "${b64(keys.hmacKeyBase64)}"}
---
apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: bench-knock}
spec:
  knock: {sequence: [${KNOCK_PORTS.map((p) => `"${p}/tcp"`).join(', ')}], sequenceTimeoutSeconds: 10, tcpFlags: [syn]}
  ${grant}
---
apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: bench-spa}
spec:
  spa: {keySecretRef: {name: bench-keys}, port: "${SPA_PORT}/udp"}
  ${grant}
`;
}

/** A program started in the namespace, with its output (the tail) and when it said it was ready. */
export interface KubeProcess extends Peer {
  /** Date.now() at spawn and at the ready line. */
  spawnedAt: number;
  readyAt: number;
}

async function startProcess(
  host: Host,
  what: string,
  args: string[],
  ready: (out: string) => boolean,
  timeoutMs = 60_000,
): Promise<KubeProcess> {
  const spawnedAt = Date.now();
  const child: ChildProcess = host.spawn('node', args);
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-1024 * 1024));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const proc: KubeProcess = { process: child, output: () => out, spawnedAt, readyAt: NaN };
  try {
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}`);
        return ready(out);
      },
      { what, timeoutMs, intervalMs: 5 },
    );
  } catch (err) {
    await stopPeer(proc);
    throw new Error(`${(err as Error).message}: ${out.slice(-2000)}`);
  }
  proc.readyAt = Date.now();
  return proc;
}

const started = (out: string) => out.includes('"event":"started"');

export interface KubeCluster {
  kubeconfig: string;
  emulator: KubeProcess;
  kubectl(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** The emulator in `srv` with the CRDs, RBAC, node, Secret and the two bench policies. */
export async function startCluster(srv: Host, dir: string, keys: SpaKeys): Promise<KubeCluster> {
  const kubeconfig = join(dir, `kubeconfig-${Date.now()}`);
  const rbac = join(dir, 'rbac.yaml');
  writeFileSync(rbac, rbacFile());
  const emulator = await startProcess(
    srv,
    'the Kubernetes API emulator',
    [
      EMULATOR,
      '--port',
      '0',
      '--kubeconfig',
      kubeconfig,
      '--rbac',
      rbac,
      '--crds',
      join(ROOT, 'crds'),
      '--namespace',
      KUBE_NAMESPACE,
      // The reconcile scenario's watchers list first, then follow; a large history costs nothing.
      '--history-limit',
      '50000',
    ],
    (out) => out.includes('ready on'),
  );
  const kubectl = async (args: string[]) =>
    (
      await srv.run('kubectl', ['--kubeconfig', kubeconfig, '--context', 'admin', ...args], {
        timeoutMs: 120_000,
      })
    ).stdout;
  const file = join(dir, 'kube-manifests.yaml');
  writeFileSync(file, manifests(keys), { mode: 0o600 });
  try {
    await kubectl(['apply', '-f', file]);
  } catch (err) {
    await stopPeer(emulator);
    throw err;
  }
  return { kubeconfig, emulator, kubectl, stop: () => stopPeer(emulator) };
}

/**
 * `knockgate sniffer` on the veth facing the client. Its grant-write rate limit and per-policy cap
 * are raised to the trial count (each trial is a new source, ~30 per second): the defaults (10/s,
 * burst 20) are a flood guard, and a trial refused by them would measure the guard, not the path.
 */
export function startKubeSniffer(srv: Host, cluster: KubeCluster, iface: string): Promise<KubeProcess> {
  return startProcess(
    srv,
    'knockgate sniffer to start capturing',
    [
      ...nodeArgs(),
      KNOCKGATE,
      'sniffer',
      '--kubeconfig',
      cluster.kubeconfig,
      '--context',
      'sniffer',
      '--namespace',
      KUBE_NAMESPACE,
      '--node',
      NODE,
      '--interface',
      iface,
      '--grants-per-second',
      '1000',
      '--grants-burst',
      '1000',
      '--max-grants-per-policy',
      '10000',
      '--log-level',
      'info',
    ],
    started,
  );
}

export function agentConfig(backend: FirewallBackend): string {
  return `apiVersion: knockgate.io/v1alpha1
kind: AgentConfig
nodeName: ${NODE}
protectedPorts: ["${PROTECTED_PORT}/tcp"]
knockPorts: [${[...KNOCK_PORTS.map((p) => `"${p}/tcp"`), `"${SPA_PORT}/udp"`].join(', ')}]
backend: ${backend}
`;
}

/**
 * `knockgate agent` with `backend`. `ready`: what counts as started (default: its "started" line,
 * logged once the first full resync is applied).
 */
export function startKubeAgent(
  srv: Host,
  cluster: KubeCluster,
  dir: string,
  backend: FirewallBackend,
  timeoutMs = 60_000,
): Promise<KubeProcess> {
  const config = join(dir, `agent-${backend}.yaml`);
  writeFileSync(config, agentConfig(backend));
  return startProcess(
    srv,
    `knockgate agent (${backend}) to start`,
    [
      ...nodeArgs(),
      KNOCKGATE,
      'agent',
      '--config',
      config,
      '--kubeconfig',
      cluster.kubeconfig,
      '--context',
      'agent',
      '--log-level',
      'info',
    ],
    started,
    timeoutMs,
  );
}

/** `knockgate controller` (the admin user: the bench declares no controller role). */
export function startKubeController(srv: Host, cluster: KubeCluster): Promise<KubeProcess> {
  return startProcess(
    srv,
    'knockgate controller to start',
    [
      ...nodeArgs(),
      KNOCKGATE,
      'controller',
      '--kubeconfig',
      cluster.kubeconfig,
      '--context',
      'admin',
      '--namespace',
      KUBE_NAMESPACE,
      '--identity',
      'bench-controller',
      '--log-level',
      'info',
    ],
    started,
  );
}

/** Remove what an agent (or standalone) installed with `backend` in the namespace's firewall. */
export async function cleanupFirewall(srv: Host, backend: FirewallBackend): Promise<void> {
  await srv.run('node', [KNOCKGATE, 'standalone', '--cleanup', '--backend', backend, '--log-level', 'warn']);
}

/** KG_BENCH_NODE_ARGS, as the standalone daemon gets them (e.g. --cpu-prof). */
function nodeArgs(): string[] {
  return (process.env.KG_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
}

/**
 * The `time` (epoch ms) of the first audit line (grants-audit.ts) with `"event":"<event>"` and
 * `"method":"<method>"` of each grant, by grant name.
 */
export function auditTimes(output: string, event: string, method: string): Map<string, number> {
  const times = new Map<string, number>();
  for (const line of output.split('\n')) {
    if (!line.includes(`"event":"${event}"`)) continue;
    try {
      const l = JSON.parse(line) as { time?: number; grant?: string; method?: string };
      if (l.method !== method || !l.grant || typeof l.time !== 'number') continue;
      if (!times.has(l.grant)) times.set(l.grant, l.time);
    } catch {
      /* a partial line at the tail: skip */
    }
  }
  return times;
}

/** The 1, 5 and 15 minute load averages, for the tables' headings (a shared machine's load varies). */
export function loadNow(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

/** Log lines worth showing when trials failed: warnings, errors and refusals (at most `max`). */
export function problemLines(output: string, max = 40): string[] {
  return output
    .split('\n')
    .filter((l) => /"level":(4|5|6)0/.test(l) || l.includes('"event":"refuse"'))
    .slice(-max);
}
