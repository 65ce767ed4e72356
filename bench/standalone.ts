// npm run bench:standalone [-- --quick] [--trials N] [--only latency|scale]
//
// Knock-to-open latency — last knock or SPA packet sent → first successful TCP connect to the
// protected port — for knockgate standalone with each firewall backend, knockd (knocks) and fwknopd
// (SPA), in the same run and topology: a server and a client network namespace joined by a veth
// pair. Each trial uses its own client source address, so every trial starts from a closed port.
// Then the time to apply and to expire 10,000 grants per backend through the firewall module.
// Prints markdown tables and writes bench/results/standalone.json. Root only; cleans up after itself.

import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { systemClock } from '../api/clock.js';
import { createLogger } from '../api/log.js';
import type { FirewallBackend } from '../api/standalone.js';
import { createFirewall } from '../controller/firewall/firewall.js';
import type { FirewallGrant } from '../controller/firewall/types.js';
import { Topology, waitFor, type Host } from '../test/helpers/netns.js';
import type { ProbeArgs } from './probe.js';
import { dropProtectedPort, flushIptables, startFwknopd, startKnockd, stopPeer } from './lib/peers.js';
import { fmt, markdownTable, summarize, type Summary } from './lib/stats.js';

const ROOT = join(import.meta.dirname, '..', '..');
const KNOCKGATE = join(ROOT, 'dist', 'cmd', 'knockgate.js');
const PROBE = join(ROOT, 'dist', 'bench', 'probe.js');
const BACKENDS: FirewallBackend[] = ['nftables', 'ipset', 'iptables'];
const PROTECTED_PORT = 2222;
const KNOCK_PORTS = [7001, 7002, 7003];
const SPA_PORT = 62201;

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const trialsArg = args.indexOf('--trials');
const TRIALS = trialsArg >= 0 ? Number(args[trialsArg + 1]) : quick ? 50 : 200;
const GRANT_SCALE = quick ? 1000 : 10_000;
const onlyArg = args.indexOf('--only');
const only = onlyArg >= 0 ? args[onlyArg + 1] : undefined;
if (only !== undefined && only !== 'latency' && only !== 'scale') throw new Error('--only: latency or scale');
if (!Number.isInteger(TRIALS) || TRIALS < 1 || TRIALS > 240) throw new Error('--trials: 1-240');

interface Row {
  daemon: string;
  trigger: 'knock' | 'spa';
  summary: Summary;
}

async function probe(cli: Host, probeArgs: ProbeArgs): Promise<{ latenciesMs: number[]; failures: number }> {
  const { stdout } = await cli.run('node', [PROBE, JSON.stringify(probeArgs)], { timeoutMs: 600_000 });
  return JSON.parse(stdout) as { latenciesMs: number[]; failures: number };
}

function knockgateConfig(
  backend: FirewallBackend,
  keys: { keyBase64: string; hmacKeyBase64: string },
): string {
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

async function startKnockgate(srv: Host, dir: string, iface: string, config: string): Promise<ChildProcess> {
  const file = join(dir, 'knockgate.yaml');
  writeFileSync(file, config, { mode: 0o600 });
  const child = srv.spawn('node', [
    KNOCKGATE,
    'standalone',
    '--config',
    file,
    '--interface',
    iface,
    '--state-dir',
    join(dir, `state-${Date.now()}`),
    '--log-level',
    'info',
  ]);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`knockgate exited: ${out}`);
      return out.includes('"event":"started"');
    },
    { what: 'knockgate standalone to start', timeoutMs: 30_000 },
  );
  return child;
}

async function stopKnockgate(srv: Host, child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  await srv.run('node', [KNOCKGATE, 'standalone', '--cleanup', '--log-level', 'warn']);
}

async function latencyRows(net: Topology, dir: string): Promise<Row[]> {
  const srv = net.ns('srv');
  const cli = net.ns('cli');
  const target = srv.addr4['cli']!;
  // Knock and SPA trials each get their own client addresses (a grant from one trigger must not
  // make the other's trial start open): 10.T.2.x and 10.T.3.x, on-link on both ends.
  const tag = target.split('.').slice(0, 2).join('.');
  const sourcesFor = (net3: number) => Array.from({ length: TRIALS }, (_, i) => `${tag}.${net3}.${10 + i}`);
  const knockSources = sourcesFor(2);
  const spaSources = sourcesFor(3);
  const batch = join(dir, 'addresses.batch');
  writeFileSync(
    batch,
    [...knockSources, ...spaSources].map((s) => `addr add ${s}/24 dev ${cli.ifname['srv']}\n`).join(''),
  );
  await cli.run('ip', ['-batch', batch]);
  for (const net3 of [2, 3])
    await srv.run('ip', ['addr', 'add', `${tag}.${net3}.1/24`, 'dev', srv.ifname['cli']!]);
  srv.spawn('node', [
    '-e',
    `require('net').createServer((s) => { s.on('error', () => {}); s.end('ok\\n'); }).listen(${PROTECTED_PORT}, '0.0.0.0')`,
  ]);
  const keys = {
    keyBase64: randomBytes(32).toString('base64'),
    hmacKeyBase64: randomBytes(64).toString('base64'),
  };
  const base = { target, protectedPort: PROTECTED_PORT, timeoutMs: 5000 };
  const knockProbe: ProbeArgs = { ...base, sources: knockSources, mode: 'knock', knockPorts: KNOCK_PORTS };
  const spaProbe: ProbeArgs = { ...base, sources: spaSources, mode: 'spa', spa: { port: SPA_PORT, ...keys } };
  const iface = srv.ifname['cli']!;
  const rows: Row[] = [];
  const record = (
    daemon: string,
    trigger: 'knock' | 'spa',
    r: { latenciesMs: number[]; failures: number },
  ) => {
    rows.push({ daemon, trigger, summary: summarize(r.latenciesMs, r.failures) });
    console.error(`  ${daemon} ${trigger}: ${r.latenciesMs.length} trials, ${r.failures} failed`);
  };

  for (const backend of BACKENDS) {
    const kg = await startKnockgate(srv, dir, iface, knockgateConfig(backend, keys));
    try {
      record(`knockgate (${backend})`, 'knock', await probe(cli, knockProbe));
      record(`knockgate (${backend})`, 'spa', await probe(cli, spaProbe));
    } finally {
      await stopKnockgate(srv, kg);
    }
  }

  await dropProtectedPort(srv, PROTECTED_PORT);
  const knockd = await startKnockd(srv, dir, iface, KNOCK_PORTS, PROTECTED_PORT);
  try {
    record('knockd 0.8', 'knock', await probe(cli, knockProbe));
  } finally {
    await stopPeer(knockd);
    await flushIptables(srv);
  }

  await dropProtectedPort(srv, PROTECTED_PORT);
  const fwknopd = await startFwknopd(srv, dir, iface, SPA_PORT, PROTECTED_PORT, keys);
  try {
    record('fwknopd 2.6.10', 'spa', await probe(cli, spaProbe));
  } finally {
    await stopPeer(fwknopd);
    await flushIptables(srv);
  }
  return rows;
}

interface ScaleRow {
  backend: FirewallBackend;
  grants: number;
  applyMs: number;
  expireMs: number;
  how: string;
}

/** Apply GRANT_SCALE grants (iptables: one atomic sync; its rule list is linear), then expire them all. */
async function grantScale(srv: Host): Promise<ScaleRow[]> {
  const rows: ScaleRow[] = [];
  const logger = createLogger({ level: 'warn', destination: process.stderr });
  for (const backend of BACKENDS) {
    const firewall = createFirewall({
      backend,
      logger,
      clock: systemClock,
      commandPrefix: ['ip', 'netns', 'exec', srv.netns],
      config: {
        protectedPorts: [{ port: PROTECTED_PORT, proto: 'tcp' }],
        knockPorts: [],
        alwaysAllow: [],
        mode: 'Enforce',
        maxGrants: GRANT_SCALE,
        conntrackFlush: false,
      },
    });
    try {
      await firewall.install();
      const expiresAt = Date.now() + 3600_000;
      const grants: FirewallGrant[] = Array.from({ length: GRANT_SCALE }, (_, i) => ({
        name: `bench-${i}`,
        source: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`,
        ports: [{ port: PROTECTED_PORT, proto: 'tcp' }],
        expiresAt,
      }));
      // As a flood of grants arrives: all at once (the firewall batches concurrent changes).
      const perGrant = backend !== 'iptables';
      let t = performance.now();
      if (perGrant) await Promise.all(grants.map((g) => firewall.add(g)));
      else await firewall.sync(grants);
      const applyMs = performance.now() - t;
      t = performance.now();
      if (perGrant) await Promise.all(grants.map((g) => firewall.remove(g, 'expired')));
      else await firewall.sync([]);
      const expireMs = performance.now() - t;
      rows.push({
        backend,
        grants: GRANT_SCALE,
        applyMs,
        expireMs,
        how: perGrant
          ? 'concurrent add/remove per grant (long-lived session, batched)'
          : 'one atomic iptables-restore',
      });
      console.error(`  ${backend}: ${GRANT_SCALE} grants applied in ${fmt(applyMs, 0)} ms`);
    } finally {
      await firewall.cleanup().catch(() => undefined);
      await firewall.close();
    }
  }
  return rows;
}

function latencyTable(rows: Row[]): string {
  const peerOf = (r: Row) => rows.find((p) => p.trigger === r.trigger && !p.daemon.startsWith('knockgate'));
  return markdownTable(
    [
      'daemon',
      'trigger',
      'trials',
      'failed',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      'peer p50 / this p50',
      'peer p99 / this p99',
    ],
    rows.map((r) => {
      const peer = peerOf(r);
      const own = r.daemon.startsWith('knockgate');
      return [
        r.daemon,
        r.trigger,
        String(r.summary.runs + r.summary.failures),
        String(r.summary.failures),
        fmt(r.summary.p50),
        fmt(r.summary.p90),
        fmt(r.summary.p99),
        fmt(r.summary.max),
        own && peer ? `${fmt(peer.summary.p50 / r.summary.p50)}×` : '',
        own && peer ? `${fmt(peer.summary.p99 / r.summary.p99)}×` : '',
      ];
    }),
  );
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:standalone needs root (network namespaces)');
  const dir = mkdtempSync(join(tmpdir(), 'kg-bench-'));
  const net = await Topology.create(['srv', 'cli']);
  // Interrupted: tear the namespaces (and everything running in them) down before exiting.
  const onSignal = () => void net.destroy().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    console.error(`open latency: ${TRIALS} trials per daemon and trigger`);
    const latency = only === 'scale' ? [] : await latencyRows(net, dir);
    console.error(`grant scale: ${GRANT_SCALE} grants per backend`);
    const scale = only === 'latency' ? [] : await grantScale(net.ns('srv'));
    const out = [
      `## Open latency (last knock / SPA packet sent → first TCP connect; ${TRIALS} trials; 1 ms probe resolution)`,
      '',
      latencyTable(latency),
      '',
      `## Grant scale (${GRANT_SCALE} grants)`,
      '',
      markdownTable(
        ['backend', 'grants', 'apply all (ms)', 'expire all (ms)', 'how'],
        scale.map((s) => [s.backend, String(s.grants), fmt(s.applyMs, 0), fmt(s.expireMs, 0), s.how]),
      ),
    ].join('\n');
    console.log(out);
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
    writeFileSync(
      join(ROOT, 'bench', 'results', 'standalone.json'),
      `${JSON.stringify({ machine: hostname(), date: new Date().toISOString(), commit, trials: TRIALS, latency, scale }, null, 2)}\n`,
    );
  } finally {
    await net.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
