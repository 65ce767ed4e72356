// Live capture with knockgate's own libpcap addon (addon.ts, native/pcap_capture.c): one handle per
// interface, polled on the event loop; packets arrive in batches in one reusable buffer, and each
// is copied to the front of a reusable frame buffer before the handler runs, so a frame must be
// fully handled before the handler returns (the next packet overwrites it). No allocation per packet.

import { readFileSync } from 'node:fs';
import { LinkType } from '../frames/link-type.js';
import { pcapAddon, type PcapHandle } from './addon.js';
import { CAPTURE_BUFFER, CAPTURE_SNAPLEN } from './buffer.js';
import { captureDrops, type CaptureDrops } from './drops.js';

export { CAPTURE_BUFFER, CAPTURE_SNAPLEN };

const ARPHRD_ETHER = 1;
const RECORD_HEADER = 8;
/** Packets of one batch: enough that a flood costs one JavaScript call per ~250 packets. */
const BATCH_PACKETS = 256;

export class CaptureError extends Error {}

export type FrameHandler = (
  buf: Buffer,
  length: number,
  link: LinkType,
  iface: string,
  truncated: boolean,
) => void;

export interface CaptureOptions {
  interfaces: readonly string[];
  /** A BPF filter per interface (see filter.ts); never empty. */
  filterFor: (iface: string) => string;
  bufferBytes?: number;
  /** Bytes kept of each packet (see CAPTURE_SNAPLEN); longer packets arrive truncated. */
  snaplen?: number;
  onFrame: FrameHandler;
  /** A capture stopped (interface gone, socket error): one line naming the interface. */
  onError?: (err: CaptureError) => void;
}

export interface Capture {
  readonly interfaces: readonly string[];
  close(): void;
  /** Per interface: libpcap's pcap_stats, see drops.ts. */
  drops(): CaptureDrops[];
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
  const closeAll = () => {
    for (const o of open.splice(0)) o.h.close();
  };
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
      let off = 0;
      for (let i = 0; i < count && off + RECORD_HEADER <= used; i++) {
        const caplen = batch.readUInt32LE(off);
        const wire = batch.readUInt32LE(off + 4);
        const start = off + RECORD_HEADER;
        batch.copy(frameBuf, 0, start, start + caplen);
        off = start + ((caplen + 3) & ~3);
        opts.onFrame(frameBuf, caplen, link, iface, caplen < wire);
      }
      if (error !== undefined) opts.onError?.(new CaptureError(error));
    };
    let dlt: number;
    try {
      dlt = h.open(iface, filter, snaplen, bufferBytes, batch, onBatch);
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
  };
}
