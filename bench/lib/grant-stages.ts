// Where a grant's time goes: the daemon's `grant-timing` debug lines (controller/standalone/
// stage-timer.ts), collected per trigger, for the probe's trials and for trials sent by the real
// clients (`knock`, `fwknop --no-rc-file`), summarised per stage as p50 / p99.
//
// The real clients cannot bind a source address; each trial's source is picked by a host route to
// the server with `src` set (`ip route replace TARGET/32 dev IF src SOURCE`), so every trial comes
// from its own address and opens a new grant (not an extension).

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor, type Host } from '../../test/helpers/netns.js';
import type { RunningKnockgate } from './knockgate.js';
import { KNOCK_PORTS, PROTECTED_PORT, SPA_PORT, type SpaKeys } from './setup.js';
import { fmt, markdownTable, summarize } from './stats.js';

/** The stages in the order a grant goes through them; the rest of a line's fields follow. */
const ORDER = [
  'captureToDecisionMs',
  'replayClaimMs',
  'replayWriteMs',
  'queueMs',
  'storeReadMs',
  'journalMs',
  'firewallMs',
  'kernelAtMs',
  'storeWriteMs',
  'writeAndApplyMs',
  'statusWriteMs',
  'decisionToDoneMs',
];

export interface StageSet {
  label: string;
  timings: Record<string, number>[];
}

/**
 * capture → kernel: the kernel's receive timestamp (the capture header) → the decision, plus the
 * decision → the kernel took the element.
 */
export function captureToKernel(t: Record<string, number>): number | undefined {
  if (t['kernelAtMs'] === undefined) return undefined;
  return (t['captureToDecisionMs'] ?? 0) + t['kernelAtMs'];
}

function stagesOf(sets: StageSet[]): string[] {
  const seen = new Set<string>();
  for (const s of sets) for (const t of s.timings) for (const k of Object.keys(t)) seen.add(k);
  return [...ORDER.filter((k) => seen.has(k)), ...[...seen].filter((k) => !ORDER.includes(k)).sort()];
}

/** One row per stage, one "p50 / p99" column per set. */
export function stageTable(sets: StageSet[]): string {
  const stages = stagesOf(sets);
  const cell = (values: number[]) => {
    const s = summarize(values);
    return values.length === 0 ? '' : `${fmt(s.p50, 2)} / ${fmt(s.p99, 2)}`;
  };
  const rows = stages.map((stage) => [
    stage,
    ...sets.map((s) => cell(s.timings.map((t) => t[stage]).filter((v): v is number => v !== undefined))),
  ]);
  rows.push([
    '**capture → kernel** (captureToDecisionMs + kernelAtMs)',
    ...sets.map((s) => cell(s.timings.map(captureToKernel).filter((v): v is number => v !== undefined))),
  ]);
  return markdownTable(
    ['stage (ms, p50 / p99)', ...sets.map((s) => `${s.label} (${s.timings.length})`)],
    rows,
  );
}

/** Summaries of every stage of a set, for latest.json. */
export function stageFigures(set: StageSet): Record<string, { p50: number; p99: number; n: number }> {
  const out: Record<string, { p50: number; p99: number; n: number }> = {};
  for (const stage of stagesOf([set])) {
    const values = set.timings.map((t) => t[stage]).filter((v): v is number => v !== undefined);
    const s = summarize(values);
    out[stage] = { p50: s.p50, p99: s.p99, n: values.length };
  }
  const total = set.timings.map(captureToKernel).filter((v): v is number => v !== undefined);
  const s = summarize(total);
  out['captureToKernelMs'] = { p50: s.p50, p99: s.p99, n: total.length };
  return out;
}

export interface RealClientOptions {
  srv: Host;
  cli: Host;
  kg: RunningKnockgate;
  target: string;
  keys: SpaKeys;
  trials: number;
  dir: string;
}

/**
 * `trials` knocks with the real `knock` and `trials` SPA packets with the real `fwknop`, each from
 * its own source (10.T.4.x, 10.T.5.x); resolves to the grant-timing lines each produced.
 */
export async function realClientStages(o: RealClientOptions): Promise<{ knock: StageSet; spa: StageSet }> {
  const ifname = o.cli.ifname['srv']!;
  const tag = o.target.split('.').slice(0, 2).join('.');
  const sources = (net3: number) => Array.from({ length: o.trials }, (_, i) => `${tag}.${net3}.${10 + i}`);
  const knockSources = sources(4);
  const spaSources = sources(5);
  const batch = join(o.dir, 'real-client-addresses.batch');
  writeFileSync(
    batch,
    [...knockSources, ...spaSources].map((s) => `addr add ${s}/24 dev ${ifname}\n`).join(''),
  );
  await o.cli.run('ip', ['-batch', batch]);
  for (const net3 of [4, 5])
    await o.srv.run('ip', ['addr', 'add', `${tag}.${net3}.1/24`, 'dev', o.srv.ifname['cli']!]);
  const run = async (source: string, send: () => Promise<unknown>): Promise<Record<string, number>> => {
    await o.cli.run('ip', ['route', 'replace', `${o.target}/32`, 'dev', ifname, 'src', source]);
    const before = o.kg.timings.length;
    await send();
    await waitFor(() => o.kg.timings.length > before, {
      what: `the grant-timing line of a grant for ${source}`,
      timeoutMs: 10_000,
    });
    return o.kg.timings[before]!;
  };
  const knock: Record<string, number>[] = [];
  const spa: Record<string, number>[] = [];
  try {
    for (const source of knockSources)
      knock.push(
        await run(source, () =>
          o.cli.run('knock', [o.target, ...KNOCK_PORTS.map((p) => `${p}:tcp`)], { timeoutMs: 10_000 }),
        ),
      );
    for (const source of spaSources)
      spa.push(
        await run(source, () =>
          o.cli.run(
            'env',
            [
              `HOME=${o.dir}`,
              'fwknop',
              '--no-rc-file',
              '--no-save-args',
              '-A',
              `tcp/${PROTECTED_PORT}`,
              '-a',
              source,
              '-D',
              o.target,
              '-p',
              String(SPA_PORT),
              '--key-base64-rijndael',
              o.keys.keyBase64,
              '--key-base64-hmac',
              o.keys.hmacKeyBase64,
            ],
            { timeoutMs: 10_000 },
          ),
        ),
      );
  } finally {
    await o.cli.run('ip', ['route', 'del', `${o.target}/32`]).catch(() => undefined);
  }
  return {
    knock: { label: 'knock (real client)', timings: knock },
    spa: { label: 'fwknop (real client)', timings: spa },
  };
}
