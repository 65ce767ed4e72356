// Capture wired to decoding and the engine: packets on the capture interfaces go through the
// allocation-free decoder; only those on a port some policy listens on become InboundPackets (with
// the injectable clock's time) when the engine needs them; every verdict goes to onVerdict.
//
//   const s = startSniffer({ engine, clock, onVerdict: (v, p) => ... });
//   engine.setPolicies(newPolicies); s.refresh();   // recompiles the filter, reopens when it changed,
//                                                    // hands the native SPA gate the new keys
//   s.close();
//
// Interfaces: `interfaces` when given, else the interfaces of the default routes (routes.ts).
// Addresses: the interfaces' own, re-read by refresh(). With no port to listen on, nothing is opened.

import type { Clock } from '../../api/clock.js';
import type { InboundPacket, Verdict } from '../decision.js';
import type { Engine } from '../engine.js';
import { DecodedFrame } from '../frames/frame.js';
import { decodeFrame } from '../frames/decode.js';
import { portKeyOf } from '../frames/port-key.js';
import { CaptureError, isEthernetInterface, openCapture, type Capture } from './capture.js';
import type { CaptureDrops } from './drops.js';
import { buildCaptureFilter } from './filter.js';
import {
  addGateCounts,
  emptyGateCounts,
  policiesOfMatch,
  type GateMatch,
  type SpaGateCounts,
} from './spa-gate.js';
import { interfaceAddresses } from './local-addresses.js';
import { defaultRouteInterfaces } from './routes.js';

export interface SnifferOptions {
  engine: Engine;
  clock: Clock;
  /** Capture interfaces; default: the default-route interfaces. */
  interfaces?: readonly string[];
  /** libpcap buffer size in bytes (see CAPTURE_BUFFER). */
  bufferBytes?: number;
  /**
   * `capturedAtMs`: when the kernel received the packet that decided it (wall-clock ms, µs
   * precision; see capture.ts FrameHandler): for stage timings only.
   */
  onVerdict: (verdict: Verdict, packet: InboundPacket, capturedAtMs?: number) => void;
  /** Called when onVerdict throws (the capture carries on). */
  onError?: (err: unknown) => void;
  /** A capture stopped (interface gone, socket error); default: onError. */
  onCaptureError?: (err: CaptureError) => void;
}

export interface Sniffer {
  /** The interfaces being captured on (empty while there is no port to listen on). */
  interfaces(): readonly string[];
  /** The filter per interface currently applied. */
  filters(): Record<string, string>;
  /** Re-read the engine's ports and the interfaces' addresses; reopen the capture when the filter changed. */
  refresh(): void;
  drops(): CaptureDrops[];
  /** Packets the native SPA gate refused (by reason) or let through since the sniffer started. */
  spaGateCounts(): SpaGateCounts;
  close(): void;
}

/** Throws CaptureError (one line) when the capture cannot start. */
export function startSniffer(opts: SnifferOptions): Sniffer {
  const interfaces = opts.interfaces?.length ? [...opts.interfaces] : defaultRouteInterfaces();
  if (interfaces.length === 0) {
    throw new CaptureError('no default route to pick a capture interface from: name the interface');
  }
  const frame = new DecodedFrame();
  let capture: Capture | undefined;
  let filters: Record<string, string> = {};

  // The capture time of the frame being handled (verdicts are reported synchronously within it).
  let capturedAtMs: number | undefined;
  const onVerdict = (verdict: Verdict, packet: InboundPacket) => {
    try {
      opts.onVerdict(verdict, packet, capturedAtMs);
    } catch (err) {
      opts.onError?.(err);
    }
  };
  // Per packet: decode into the reused frame, one Map lookup, and for a wanted port the engine's
  // frame path (no InboundPacket unless a verifier or a verdict needs one).
  const onFrame = (
    buf: Buffer,
    length: number,
    link: Parameters<typeof decodeFrame>[2],
    _iface: string,
    _truncated: boolean,
    spa: GateMatch | undefined,
    at: number,
  ) => {
    if (!decodeFrame(buf, length, link, frame)) return;
    if (!opts.engine.wants(portKeyOf(frame.ipProto, frame.dstPort))) return;
    capturedAtMs = at;
    opts.engine.handleFrame(frame, opts.clock.now(), onVerdict, policiesOfMatch(spa, frame.dstPort));
  };
  /** Gate counts of captures closed by a reopen. */
  const closedCounts = emptyGateCounts();
  const closeCapture = () => {
    if (!capture) return;
    addGateCounts(closedCounts, capture.spaGateCounts());
    capture.close();
    capture = undefined;
  };

  function computeFilters(): Record<string, string> {
    const ports = opts.engine.ports();
    if (ports.length === 0) return {};
    const spaPorts = opts.engine.spaOnlyPorts?.() ?? [];
    const out: Record<string, string> = {};
    for (const iface of interfaces) {
      const addresses = interfaceAddresses([iface]);
      if (addresses.length === 0)
        throw new CaptureError(`interface ${iface} has no address to capture packets for`);
      out[iface] = buildCaptureFilter({ addresses, ports, spaPorts, vlan: isEthernetInterface(iface) });
    }
    return out;
  }

  function refresh(): void {
    const next = computeFilters();
    // New keys (a rotated Secret, a rewritten key file) reach the gate here, without a reopen.
    const gate = opts.engine.spaGate?.() ?? [];
    if (JSON.stringify(next) === JSON.stringify(filters) && (capture || Object.keys(next).length === 0)) {
      capture?.setSpaGate(gate);
      return;
    }
    closeCapture();
    filters = {};
    if (Object.keys(next).length === 0) return;
    capture = openCapture({
      interfaces: Object.keys(next),
      filterFor: (iface) => next[iface]!,
      bufferBytes: opts.bufferBytes,
      onFrame,
      spaGate: gate,
      onError: (err) => (opts.onCaptureError ?? opts.onError)?.(err),
    });
    filters = next;
  }

  refresh();
  return {
    interfaces: () => capture?.interfaces ?? [],
    filters: () => ({ ...filters }),
    refresh,
    drops: () => capture?.drops() ?? [],
    spaGateCounts() {
      const total = emptyGateCounts();
      addGateCounts(total, closedCounts);
      if (capture) addGateCounts(total, capture.spaGateCounts());
      return total;
    },
    close() {
      closeCapture();
      filters = {};
    },
  };
}
