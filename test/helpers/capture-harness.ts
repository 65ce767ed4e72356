// Test harness (not product code): runs knockgate's live capture + engine inside a test's network
// namespace and prints one JSON line per event on stdout, for end-to-end tests to read:
//   {"event":"ready","interfaces":[...],"filters":{...}}
//   {"event":"verdict","verdict":{...},"packet":{"src":..,"proto":..,"dstPort":..}}
//   {"event":"error","message":"..."}            (then exit status 1)
// Usage: node dist/test/helpers/capture-harness.js --interface IF [--interface IF2...]
//          --policies FILE.json [--buffer-size BYTES]
// (or from the sources: vite-node test/helpers/capture-harness.ts -- ARGS; see capture-live.ts).
// Runs until SIGTERM.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { systemClock } from '../../api/clock.js';
import type { KnockPolicy } from '../../api/types.js';
import { startSniffer } from '../../sniffer/capture/sniffer.js';
import { createEngine } from '../../sniffer/engine.js';

function emit(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

try {
  const { values } = parseArgs({
    options: {
      interface: { type: 'string', multiple: true },
      policies: { type: 'string' },
      'buffer-size': { type: 'string' },
    },
  });
  const bufferBytes = values['buffer-size'] === undefined ? undefined : Number(values['buffer-size']);
  const policies = JSON.parse(readFileSync(values.policies ?? '', 'utf8')) as KnockPolicy[];
  const engine = createEngine({ policies, clock: systemClock });
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
