// knockgate standalone as the benchmarks run it: one config with a knock policy and an SPA policy
// that both open the protected port, started in the server namespace, metrics on the namespace's
// loopback.

import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FirewallBackend } from '../../api/standalone.js';
import { waitFor, type Host } from '../../test/helpers/netns.js';
import { KNOCKGATE, KNOCK_PORTS, PROTECTED_PORT, SPA_PORT, type SpaKeys } from './setup.js';

export const METRICS_ADDRESS = '127.0.0.1:9464';

export function knockgateConfig(backend: FirewallBackend, keys: SpaKeys): string {
  return `apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: bench-knock}
spec:
  knock: {sequence: [${KNOCK_PORTS.map((p) => `"${p}/tcp"`).join(', ')}], sequenceTimeoutSeconds: 10, tcpFlags: [syn]}
  grant: {ports: ["${PROTECTED_PORT}/tcp"], durationSeconds: 120}
---
apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: bench-spa}
spec:
  spa: {keySecretRef: {name: bench-keys}, port: "${SPA_PORT}/udp"}
  grant: {ports: ["${PROTECTED_PORT}/tcp"], durationSeconds: 120}
---
apiVersion: v1
kind: Secret
metadata: {name: bench-keys}
stringData: {KEY_BASE64: "${keys.keyBase64}", HMAC_KEY_BASE64: "${keys.hmacKeyBase64}"}
---
apiVersion: knockgate.io/v1alpha1
kind: StandaloneConfig
backend: ${backend}
`;
}

export interface RunningKnockgate {
  process: ChildProcess;
  pid: number;
  stateDir: string;
  output: () => string;
  /** The daemon's `grant-timing` lines (stage timings per grant), when started at debug level. */
  timings: Record<string, number>[];
}

export async function startKnockgate(
  srv: Host,
  dir: string,
  iface: string,
  backend: FirewallBackend,
  keys: SpaKeys,
  bufferBytes?: number,
  /** Another config instead of knockgateConfig(), extra flags, extra environment (bench:aws), log level. */
  more: { config?: string; args?: string[]; env?: Record<string, string>; logLevel?: 'info' | 'debug' } = {},
): Promise<RunningKnockgate> {
  const file = join(dir, 'knockgate.yaml');
  writeFileSync(file, more.config ?? knockgateConfig(backend, keys), { mode: 0o600 });
  const stateDir = join(dir, `state-${Date.now()}`);
  // `ip netns exec` execs the command in place, so the child's PID is the daemon's own.
  // KG_BENCH_NODE_ARGS: extra node flags for the daemon, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  // (node refuses --cpu-prof in NODE_OPTIONS).
  const nodeArgs = (process.env.KG_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child = srv.spawn(
    'node',
    [
      ...nodeArgs,
      KNOCKGATE,
      'standalone',
      '--config',
      file,
      '--interface',
      iface,
      '--state-dir',
      stateDir,
      '--metrics-address',
      METRICS_ADDRESS,
      '--log-level',
      more.logLevel ?? 'info',
      ...(bufferBytes === undefined ? [] : ['--buffer-size', String(bufferBytes)]),
      ...(more.args ?? []),
    ],
    more.env ? { env: { ...process.env, ...more.env } } : {},
  );
  let out = '';
  let partial = '';
  const timings: Record<string, number>[] = [];
  const keep = (d: Buffer) => {
    // The refusal log is rate-limited; still, keep only the tail of a long run.
    out = (out + d.toString()).slice(-256 * 1024);
  };
  child.stdout!.on('data', (d: Buffer) => {
    keep(d);
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines)
      if (line.includes('"event":"grant-timing"')) {
        const {
          level: _l,
          time: _t,
          pid: _p,
          hostname: _h,
          event: _e,
          grant: _g,
          msg: _m,
          name: _n,
          ...stages
        } = JSON.parse(line) as Record<string, unknown>;
        timings.push(stages as Record<string, number>);
      }
  });
  child.stderr!.on('data', keep);
  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`knockgate exited: ${out}`);
      return out.includes('"event":"started"');
    },
    { what: 'knockgate standalone to start', timeoutMs: 30_000 },
  );
  return { process: child, pid: child.pid!, stateDir, output: () => out, timings };
}

export async function stopKnockgate(srv: Host, kg: RunningKnockgate): Promise<void> {
  const child = kg.process;
  if (child.exitCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  await srv.run('node', [KNOCKGATE, 'standalone', '--cleanup', '--log-level', 'warn']);
}

/** The daemon's Prometheus samples: by `name{labels}`, and summed over the labels by `name`. */
export async function knockgateMetrics(srv: Host): Promise<Map<string, number>> {
  const { stdout } = await srv.run('node', [
    '-e',
    `fetch('http://${METRICS_ADDRESS}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`,
  ]);
  const out = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    if (line.startsWith('#') || !line.trim()) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    if (m[2]) out.set(m[1]! + m[2], Number(m[3]));
    out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[3]));
  }
  return out;
}

/** Live grants in the daemon's state dir, through `knockgate grants --state-dir DIR -o json`. */
export async function knockgateGrantSources(srv: Host, stateDir: string): Promise<string[]> {
  const { stdout } = await srv.run('node', [
    KNOCKGATE,
    'grants',
    '--state-dir',
    stateDir,
    '--output',
    'json',
  ]);
  return (JSON.parse(stdout) as { spec: { source: string } }[]).map((g) => g.spec.source.split('/')[0]!);
}
