// Loads knockgate's own capture addon (native/pcap_capture.c, built by `npm ci` / `npm run
// build:native` into build/Release/) and types it. Found by walking up from this module, so it loads
// both from the sources (tests) and from dist/.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PcapStats {
  /** Packets the kernel handed to the capture socket (libpcap's ps_recv). */
  received: number;
  /** Packets dropped because the capture buffer was full (ps_drop). */
  dropped: number;
  /** Packets the interface dropped (ps_ifdrop). */
  interfaceDropped: number;
}

/**
 * onBatch(count, usedBytes, error?): `count` records in the batch buffer's first `usedBytes`, each a
 * u32 captured length, a u32 wire length, a u32 SPA match (all host order, little-endian here; the
 * match is 0 when the native SPA gate did not inspect the packet, else 0x80000000 | bit i for each
 * key i of its port that authenticated it), the captured bytes, padding to 4 bytes. The buffer is
 * reused for the next batch. `error` (one line): the capture stopped.
 */
export type BatchHandler = (count: number, usedBytes: number, error?: string) => void;

/** One SPA port of the native gate's key table (native/spa_gate.h; see capture/spa-gate.ts). */
export interface NativeSpaPort {
  port: number;
  keys: { hmacType: number; key?: Buffer; allowMissingHmac: boolean }[];
}

/** Packets the native SPA gate refused, by reason, and let through, since the handle was made. */
export interface NativeSpaStats {
  notSpa: number;
  saltedPrefix: number;
  missingHmac: number;
  badHmac: number;
  passed: number;
}

export interface PcapHandle {
  /** Returns the link type (DLT number). Throws one line naming the device. */
  open(
    device: string,
    filter: string,
    snaplen: number,
    bufferBytes: number,
    batch: Buffer,
    onBatch: BatchHandler,
  ): number;
  /** Idempotent; the handle is also closed when garbage collected. */
  close(): void;
  /** libpcap's pcap_stats since the capture opened; undefined once closed. */
  stats(): PcapStats | undefined;
  /** Replace the native SPA gate's key table whole (or throw one line and change nothing). */
  setSpaKeys(ports: readonly NativeSpaPort[]): void;
  spaStats(): NativeSpaStats;
}

/** native/spa_open.c: one policy's keys; open() gives the plaintext or a refusal code (spa_open.h). */
export interface NativeSpaOpener {
  open(packet: Uint8Array): string | number;
}

export interface Addon {
  PcapHandle: new () => PcapHandle;
  /** Throws one line (never key material) for keys it cannot use. */
  SpaOpener: new (
    key: Uint8Array,
    legacy: boolean,
    hmacType: number,
    hmacKey: Uint8Array | undefined,
    allowMissingHmac: boolean,
  ) => NativeSpaOpener;
  libVersion(): string;
  /** The gate on one frame, with a table built for the call (what the batch path does per packet). */
  spaInspect(
    ports: readonly NativeSpaPort[],
    frame: Buffer,
    length: number,
    dlt: number,
  ): { inspected: boolean; mask?: number; reason?: string };
  /** The bounds of native/spa_limits.h. */
  spaLimits(): Record<string, number>;
  /** native/nft_run.c: "" when libnftables is usable in this process, else why not. */
  nftAvailable(): string;
  /** One nftables transaction in this process's network namespace: "" on success, else nft's error. */
  nftRun(text: string): string;
  /** Set element changes as one nfnetlink transaction (native/nft_elements.c); "" or the refusal. */
  nftElements(
    table: string,
    ops: readonly {
      op: 0 | 1;
      set: string;
      family: 4 | 6;
      addresses: string[];
      protos: number[];
      ports: number[];
      timeoutsMs?: number[];
    }[],
  ): string;
  /**
   * native/mem_trim.cc: a full memory-reducing garbage collection (synchronous, tens of ms) and
   * malloc_trim(0); for once start-up is over. trimmed: malloc gave pages back.
   */
  releaseMemory(): { trimmed: boolean };
}

const ADDON_PATH = join('build', 'Release', 'knockgate_pcap.node');

function findAddon(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, ADDON_PATH);
    if (existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`capture addon ${ADDON_PATH} not found: run \`npm ci\` or \`npm run build:native\``);
}

let loaded: Addon | undefined;

export function pcapAddon(): Addon {
  loaded ??= createRequire(import.meta.url)(findAddon()) as Addon;
  return loaded;
}
