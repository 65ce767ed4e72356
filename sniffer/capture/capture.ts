// Live capture with knockgate's own libpcap addon (addon.ts, native/pcap_capture.c): one handle per
// interface, polled on the event loop; packets arrive in batches in one reusable buffer, and each
// is copied to the front of a reusable frame buffer before the handler runs, so a frame must be
// fully handled before the handler returns (the next packet overwrites it). No allocation per packet.
//
// The native SPA gate (spa-gate.ts, native/spa_gate.c): setSpaGate(table) hands every handle the key
// table; packets to a gated port that no key authenticates are dropped in the addon and counted
// (spaGateCounts()), and a packet that passed reaches onFrame with the policies whose keys matched.

import { readFileSync } from 'node:fs';
import { LinkType } from '../frames/link-type.js';
import { pcapAddon, type PcapHandle } from './addon.js';
import { CAPTURE_BUFFER, CAPTURE_SNAPLEN } from './buffer.js';
import { captureDrops, type CaptureDrops } from './drops.js';
import {
  addGateCounts,
  emptyGateCounts,
  gateCountsOf,
  type GateMatch,
  type SpaGateCounts,
  type SpaGatePort,
} from './spa-gate.js';

export { CAPTURE_BUFFER, CAPTURE_SNAPLEN };

const ARPHRD_ETHER = 1;
/**
 * u32 captured length, u32 wire length, u32 SPA match, u32 capture time s and u32 its µs (the
 * kernel's receive timestamp) (native/pcap_capture.c).
 */
const RECORD_HEADER = 20;
/** Packets of one batch: enough that a flood costs one JavaScript call per ~250 packets. */
const BATCH_PACKETS = 256;

export class CaptureError extends Error {}

export type FrameHandler = (
  buf: Buffer,
  length: number,
  link: LinkType,
  iface: string,
  truncated: boolean,
  /** The native SPA gate inspected the packet and let it through: see spa-gate.ts GateMatch. */
  spa: GateMatch | undefined,
  /**
   * When the kernel received the packet: ms since the epoch, µs precision (wall clock, not the
   * injectable clock: for measuring the time to a decision, never for one).
   */
  capturedAtMs: number,
) => void;

export interface CaptureOptions {
  interfaces: readonly string[];
  /** A BPF filter per interface (see filter.ts); never empty. */
  filterFor: (iface: string) => string;
  bufferBytes?: number;
  /** Bytes kept of each packet (see CAPTURE_SNAPLEN); longer packets arrive truncated. */
  snaplen?: number;
  onFrame: FrameHandler;
  /** The native SPA gate's key table (see setSpaGate); default: nothing gated. */
  spaGate?: readonly SpaGatePort[];
  /** A capture stopped (interface gone, socket error): one line naming the interface. */
  onError?: (err: CaptureError) => void;
}

export interface Capture {
  readonly interfaces: readonly string[];
  close(): void;
  /** Per interface: libpcap's pcap_stats, see drops.ts. */
  drops(): CaptureDrops[];
  /** Replace the native SPA gate's key table on every handle (atomic per handle). Throws one line. */
  setSpaGate(table: readonly SpaGatePort[]): void;
  /** Packets the native SPA gate refused (by reason) or let through, over every handle. */
  spaGateCounts(): SpaGateCounts;
}

/** True when the interface is Ethernet-framed (so a `vlan` filter compiles on it). */
export function isEthernetInterface(iface: string): boolean {
  try {
    return Number(readFileSync(`/sys/class/net/${iface}/type`, 'utf8').trim()) === ARPHRD_ETHER;
  } catch {
    return false; // `any` and unknown interfaces
  }
}

const LINK_TYPES = new Set<number>([LinkType.Ethernet, LinkType.Raw, LinkType.LinuxSll, LinkType.LinuxSll2]);

function describe(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
}

function checkRange(what: string, value: number, bounds: { minBytes: number; maxBytes: number }): void {
  if (!Number.isInteger(value) || value < bounds.minBytes || value > bounds.maxBytes) {
    throw new CaptureError(
      `capture ${what} ${value} is out of range [${bounds.minBytes}, ${bounds.maxBytes}] bytes`,
    );
  }
}

/** Open every interface, or none: throws CaptureError (one line, naming the interface). */
export function openCapture(opts: CaptureOptions): Capture {
  const bufferBytes = opts.bufferBytes ?? CAPTURE_BUFFER.defaultBytes;
  const snaplen = opts.snaplen ?? CAPTURE_SNAPLEN.defaultBytes;
  checkRange('buffer size', bufferBytes, CAPTURE_BUFFER);
  checkRange('snap length', snaplen, CAPTURE_SNAPLEN);
  if (opts.interfaces.length === 0) throw new CaptureError('no interface to capture on');
  const addon = pcapAddon();
  const open: { iface: string; h: PcapHandle }[] = [];
  /** Counts of handles already closed. */
  const closedCounts = emptyGateCounts();
  const closeAll = () => {
    for (const o of open.splice(0)) {
      addGateCounts(closedCounts, gateCountsOf(o.h.spaStats()));
      o.h.close();
    }
  };
  // The table the handles hold now; a batch is read with the table it was checked against.
  let gate: readonly SpaGatePort[] = opts.spaGate ?? [];
  let gateByPort = new Map(gate.map((g) => [g.port, g]));
  const pushGate = (h: PcapHandle) => h.setSpaKeys(gate.map((g) => ({ port: g.port, keys: g.keys })));
  // One frame buffer for every interface: handlers run one at a time on the event loop.
  const frameBuf = Buffer.alloc(snaplen);
  for (const iface of new Set(opts.interfaces)) {
    const filter = opts.filterFor(iface);
    if (filter.trim() === '') {
      closeAll();
      throw new CaptureError(`refusing to capture on ${iface} without a filter`);
    }
    const h = new addon.PcapHandle();
    const batch = Buffer.alloc(BATCH_PACKETS * (RECORD_HEADER + ((snaplen + 3) & ~3)));
    let link = LinkType.Ethernet;
    const onBatch = (count: number, used: number, error?: string) => {
      const ports = gateByPort;
      const portOf = (port: number) => ports.get(port);
      let off = 0;
      for (let i = 0; i < count && off + RECORD_HEADER <= used; i++) {
        const caplen = batch.readUInt32LE(off);
        const wire = batch.readUInt32LE(off + 4);
        const match = batch.readUInt32LE(off + 8);
        const capturedAtMs = batch.readUInt32LE(off + 12) * 1000 + batch.readUInt32LE(off + 16) / 1000;
        const start = off + RECORD_HEADER;
        batch.copy(frameBuf, 0, start, start + caplen);
        off = start + ((caplen + 3) & ~3);
        const spa = match === 0 ? undefined : { match, portOf };
        opts.onFrame(frameBuf, caplen, link, iface, caplen < wire, spa, capturedAtMs);
      }
      if (error !== undefined) opts.onError?.(new CaptureError(error));
    };
    let dlt: number;
    try {
      dlt = h.open(iface, filter, snaplen, bufferBytes, batch, onBatch);
      // Before the event loop's next turn, so no packet is read without the table.
      pushGate(h);
    } catch (err) {
      h.close();
      closeAll();
      const msg = describe(err);
      throw new CaptureError(
        msg.startsWith('cannot capture on ') ? msg : `cannot capture on ${iface}: ${msg}`,
      );
    }
    if (!LINK_TYPES.has(dlt)) {
      h.close();
      closeAll();
      throw new CaptureError(`cannot capture on ${iface}: link type ${dlt} is not supported`);
    }
    link = dlt as LinkType;
    open.push({ iface, h });
  }
  return {
    interfaces: open.map((o) => o.iface),
    close: closeAll,
    drops: () => open.map((o) => captureDrops(o.iface, o.h.stats())),
    setSpaGate(table) {
      // Built and checked on every handle before any is changed: a bad table changes nothing.
      const probe = new addon.PcapHandle();
      probe.setSpaKeys(table.map((g) => ({ port: g.port, keys: g.keys })));
      probe.close();
      gate = table;
      gateByPort = new Map(table.map((g) => [g.port, g]));
      for (const o of open) pushGate(o.h);
    },
    spaGateCounts() {
      const total = emptyGateCounts();
      addGateCounts(total, closedCounts);
      for (const o of open) addGateCounts(total, gateCountsOf(o.h.spaStats()));
      return total;
    },
  };
}
