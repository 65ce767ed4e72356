// The JavaScript side of the native SPA gate (native/spa_gate.c): on UDP ports where only SPA
// policies listen, the capture addon checks each packet's length, prefix, alphabet and HMAC against
// every policy's key, in the batch, and drops what no key authenticates - counted by reason, never
// handed to JavaScript. A packet that passes carries a match mask: bit i = the port's i-th key
// authenticated it, so only those policies' verifiers (the JavaScript reference, which still checks
// everything, HMAC included) run.
//
// The key table comes from the engine's verifiers (SpaVerifier.gateKey), is pushed to every capture
// handle by the sniffer's refresh() - called wherever policies or keys change - and replaces the old
// table atomically. It holds key bytes: never log it.

import type { PortRef } from '../../api/ports.js';
import { SPA_GATE_LIMITS } from '../spa/limits.js';

/** What the gate needs of one SPA policy's keys (sniffer/spa/verifier.ts). */
export interface SpaGateKey {
  /** fko_hmac_type_t code (sniffer/spa/types.ts DIGEST_CODES); 0 = no HMAC key. */
  hmacType: number;
  /** HMAC key bytes; absent when hmacType is 0. */
  key?: Buffer;
  /** With no HMAC key: let packets through to the verifier (allowMissingHmac), else refuse them. */
  allowMissingHmac: boolean;
}

/** One gated port: its keys in order, and the policy each key belongs to. */
export interface SpaGatePort {
  port: number;
  keys: SpaGateKey[];
  policies: string[];
}

/** Packets the gate refused, by reason (sniffer/spa/reasons.ts), and the ones it let through. */
export interface SpaGateCounts {
  'not-spa': number;
  'salted-prefix': number;
  'missing-hmac': number;
  'bad-hmac': number;
  passed: number;
}

export const SPA_GATE_REASONS = ['not-spa', 'salted-prefix', 'missing-hmac', 'bad-hmac'] as const;

export function emptyGateCounts(): SpaGateCounts {
  return { 'not-spa': 0, 'salted-prefix': 0, 'missing-hmac': 0, 'bad-hmac': 0, passed: 0 };
}

export function addGateCounts(into: SpaGateCounts, more: SpaGateCounts): void {
  for (const k of [...SPA_GATE_REASONS, 'passed'] as const) into[k] += more[k];
}

/** The addon's spaStats() in these names. */
export function gateCountsOf(s: {
  notSpa: number;
  saltedPrefix: number;
  missingHmac: number;
  badHmac: number;
  passed: number;
}): SpaGateCounts {
  return {
    'not-spa': s.notSpa,
    'salted-prefix': s.saltedPrefix,
    'missing-hmac': s.missingHmac,
    'bad-hmac': s.badHmac,
    passed: s.passed,
  };
}

/** Top bit of a record's match word: the gate inspected the packet. */
export const SPA_INSPECTED = 0x80000000;

/** A packet the gate let through: its record's match word and the table it was checked against. */
export interface GateMatch {
  match: number;
  portOf: (port: number) => SpaGatePort | undefined;
}

/**
 * The policies whose keys authenticated a packet sent to `dstPort`, or undefined when the gate did
 * not inspect it (not a gated port): then every handler of the port runs.
 */
export function policiesOfMatch(spa: GateMatch | undefined, dstPort: number): string[] | undefined {
  if (!spa || (spa.match & SPA_INSPECTED) === 0) return undefined;
  const match = spa.match;
  const gate = spa.portOf(dstPort);
  if (!gate) return [];
  const out: string[] = [];
  for (let i = 0; i < gate.policies.length; i++) if (match & (1 << i)) out.push(gate.policies[i]!);
  return out;
}

/**
 * The gate's table for the engine's SPA-only UDP ports: a port is gated when every policy on it
 * gave a gate key and it has at most SPA_GATE_LIMITS.maxKeysPerPort of them; at most maxPorts ports.
 */
export function buildGateTable(
  spaOnlyPorts: readonly PortRef[],
  keysOf: (port: PortRef) => { policy: string; key: SpaGateKey | undefined }[],
): SpaGatePort[] {
  const table: SpaGatePort[] = [];
  for (const p of spaOnlyPorts) {
    if (p.proto !== 'udp' || table.length === SPA_GATE_LIMITS.maxPorts) continue;
    const entries = keysOf(p);
    if (entries.length === 0 || entries.length > SPA_GATE_LIMITS.maxKeysPerPort) continue;
    if (entries.some((e) => e.key === undefined)) continue;
    table.push({ port: p.port, keys: entries.map((e) => e.key!), policies: entries.map((e) => e.policy) });
  }
  return table;
}
