// Live capture with `cap` (libpcap): one Cap per interface, each with its own packet buffer. cap
// copies each packet into that buffer and emits 'packet' synchronously, so a frame must be fully
// handled before the handler returns (the next packet overwrites the buffer).

import { readFileSync } from 'node:fs';
import cap from 'cap';
import { LinkType, linkTypeFromCap } from '../frames/link-type.js';
import { CAPTURE_BUFFER } from './buffer.js';
import { dropEstimate, readInterfaceDrops, type DropEstimate } from './drops.js';

export { CAPTURE_BUFFER };

/** cap opens with a 65535-byte snap length; a packet buffer of that size holds any packet whole. */
const PACKET_BUFFER_BYTES = 65_535;
const ARPHRD_ETHER = 1;

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
  onFrame: FrameHandler;
}

export interface Capture {
  readonly interfaces: readonly string[];
  close(): void;
  /** Per interface: an estimate, see drops.ts. */
  drops(): DropEstimate[];
}

/** True when the interface is Ethernet-framed (so a `vlan` filter compiles on it). */
export function isEthernetInterface(iface: string): boolean {
  try {
    return Number(readFileSync(`/sys/class/net/${iface}/type`, 'utf8').trim()) === ARPHRD_ETHER;
  } catch {
    return false; // `any` and unknown interfaces
  }
}

/**
 * cap 0.2.1: a Cap whose open() failed after pcap_create crashes the process when it is garbage
 * collected (its destructor stops a poll handle that was never initialised and unrefs an object that
 * was never referenced). Such objects are kept referenced here for the life of the process; a
 * failed open is rare (bad interface, no privilege) and costs one small object.
 */
const failedCaps: unknown[] = [];

function describe(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
}

/** Open every interface, or none: throws CaptureError (one line, naming the interface). */
export function openCapture(opts: CaptureOptions): Capture {
  const bufferBytes = opts.bufferBytes ?? CAPTURE_BUFFER.defaultBytes;
  if (
    !Number.isInteger(bufferBytes) ||
    bufferBytes < CAPTURE_BUFFER.minBytes ||
    bufferBytes > CAPTURE_BUFFER.maxBytes
  ) {
    throw new CaptureError(
      `capture buffer size ${bufferBytes} is out of range [${CAPTURE_BUFFER.minBytes}, ${CAPTURE_BUFFER.maxBytes}] bytes`,
    );
  }
  if (opts.interfaces.length === 0) throw new CaptureError('no interface to capture on');
  const open: { iface: string; c: InstanceType<typeof cap.Cap>; baseline: number | undefined }[] = [];
  const closeAll = () => {
    for (const o of open.splice(0)) o.c.close();
  };
  for (const iface of new Set(opts.interfaces)) {
    const c = new cap.Cap();
    const buffer = Buffer.alloc(PACKET_BUFFER_BYTES);
    let linkName: string;
    const filter = opts.filterFor(iface);
    if (filter.trim() === '') {
      closeAll();
      throw new CaptureError(`refusing to capture on ${iface} without a filter`);
    }
    try {
      linkName = c.open(iface, filter, bufferBytes, buffer);
    } catch (err) {
      failedCaps.push(c);
      closeAll();
      throw new CaptureError(`cannot capture on ${iface}: ${describe(err)}`);
    }
    const link = linkTypeFromCap(linkName);
    if (link === undefined) {
      c.close();
      closeAll();
      throw new CaptureError(`cannot capture on ${iface}: link type "${linkName}" is not supported`);
    }
    c.on('packet', (nbytes, truncated) => opts.onFrame(buffer, nbytes, link, iface, truncated));
    open.push({ iface, c, baseline: readInterfaceDrops(iface) });
  }
  return {
    interfaces: open.map((o) => o.iface),
    close: closeAll,
    drops: () => open.map((o) => dropEstimate(o.iface, o.baseline)),
  };
}
