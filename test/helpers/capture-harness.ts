// Test harness (not product code): runs knockgate's live capture + engine inside a test's network
// namespace and prints one JSON line per event on stdout, for end-to-end tests to read:
//   {"event":"ready","interfaces":[...],"filters":{...}}
//   {"event":"verdict","verdict":{...},"packet":{"src":..,"proto":..,"dstPort":..}}
//   {"event":"error","message":"..."}            (then exit status 1)
//   {"event":"gate","counts":{...}}              (on SIGUSR2: the native SPA gate's counts)
//   {"event":"reloaded"}                         (on SIGHUP: policies and secrets re-read, as the
//                                                 standalone daemon's reload does, no restart)
// Usage: node dist/test/helpers/capture-harness.js --interface IF [--interface IF2...]
//          --policies FILE.json [--secrets FILE.json] [--buffer-size BYTES]
// (--secrets: {"<keySecretRef name>": {KEY_BASE64, HMAC_KEY_BASE64, ...}} for SPA policies.)
// (or from the sources: vite-node test/helpers/capture-harness.ts -- ARGS; see capture-live.ts).
// Runs until SIGTERM.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { systemClock } from '../../api/clock.js';
import type { KnockPolicy } from '../../api/types.js';
import { startSniffer } from '../../sniffer/capture/sniffer.js';
import { createEngine } from '../../sniffer/engine.js';
import { spaKeysFromSecretData } from '../../sniffer/spa/keys.js';
import { createSpaVerifier } from '../../sniffer/spa/verifier.js';

function emit(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

try {
  const { values } = parseArgs({
    options: {
      interface: { type: 'string', multiple: true },
      policies: { type: 'string' },
      secrets: { type: 'string' },
      'buffer-size': { type: 'string' },
    },
  });
  const bufferBytes = values['buffer-size'] === undefined ? undefined : Number(values['buffer-size']);
  const readPolicies = () => JSON.parse(readFileSync(values.policies ?? '', 'utf8')) as KnockPolicy[];
  const readSecrets = () =>
    values.secrets
      ? (JSON.parse(readFileSync(values.secrets, 'utf8')) as Record<string, Record<string, string>>)
      : {};
  let secrets = readSecrets();
  const engine = createEngine({
    policies: readPolicies(),
    clock: systemClock,
    spaVerifierFor: (p) =>
      createSpaVerifier(p, spaKeysFromSecretData(secrets[p.spec.spa!.keySecretRef.name] ?? {}), {
        clock: systemClock,
      }),
  });
  for (const p of engine.problems()) emit({ event: 'problem', ...p });
  const sniffer = startSniffer({
    engine,
    clock: systemClock,
    interfaces: values.interface,
    bufferBytes,
    onVerdict: (verdict, packet) =>
      emit({
        event: 'verdict',
        verdict,
        packet: { src: packet.src, proto: packet.proto, dstPort: packet.dstPort },
      }),
    onError: (err) => emit({ event: 'error', message: String(err) }),
  });
  const stop = () => {
    sniffer.close();
    engine.dispose();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGUSR2', () => emit({ event: 'gate', counts: sniffer.spaGateCounts() }));
  process.on('SIGHUP', () => {
    // As StandaloneDaemon.reload(): new keys need new verifiers, then the capture is refreshed.
    secrets = readSecrets();
    engine.setPolicies([]);
    engine.setPolicies(readPolicies());
    sniffer.refresh();
    emit({ event: 'reloaded', filters: sniffer.filters() });
  });
  // Keep running even while nothing is captured (no port to listen on).
  setInterval(() => undefined, 1 << 30);
  emit({
    event: 'ready',
    interfaces: sniffer.interfaces(),
    filters: sniffer.filters(),
    drops: sniffer.drops(),
  });
} catch (err) {
  emit({ event: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
}
