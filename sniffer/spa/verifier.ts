// fwknopd's access checks for one KnockPolicy (server/incoming_spa.c, server/access.c), applied to
// one captured UDP payload. Pure: no I/O, no logging, no timers; time comes from the injected clock.
//
// Order: the policy's SPA port; the source within allowedSources; the packet decoded and
// authenticated (decode.ts: HMAC before decryption); command and NAT messages refused; the timestamp
// within maxPacketAgeSeconds either way; the allow IP ("0.0.0.0" = the source, only without
// requireSourceAddress; with it, the allow IP must be the source); never a loopback/link-local/
// unspecified/multicast host; requireUsername; the requested ports a subset of the grant's ports;
// the client timeout (-f) capped by maxDurationSeconds. A grant carries the replay claim: the SHA-256
// of the exact packet text, valid until packet time + maxPacketAgeSeconds + replayClockSkewSeconds.
//
// Refusals are built once per verifier, so the refusal path allocates nothing; verify() never throws.

import { hash } from 'node:crypto';
import { SocketAddress } from 'node:net';
import { ALWAYS_NEVER_GRANT, hostCidr } from '../../api/addresses.js';
import type { Clock } from '../../api/clock.js';
import { BOUNDS, DEFAULTS } from '../../api/limits.js';
import { formatPort, parsePort } from '../../api/ports.js';
import type { KnockPolicy } from '../../api/types.js';
import type { AccessDecision, InboundPacket, Refusal, Verdict } from '../decision.js';
import { decodeSpa, type SpaDecodeOptions } from './decode.js';
import { parseAccessMessage } from './fields/access-message.js';
import { SpaHmac } from './hmac.js';
import { nativeSpaOpener } from './native-open.js';
import type { SpaKeys } from './keys.js';
import { SPA_LIMITS } from './limits.js';
import { SPA_REFUSALS, type SpaRefusalReason } from './reasons.js';
import { parseIpv4, SourceMatcher } from './source-match.js';
import { DIGEST_CODES, isNatType } from './types.js';
import type { SpaGateKey } from '../capture/spa-gate.js';

export interface SpaVerifier {
  readonly policy: string;
  verify(packet: InboundPacket): Verdict;
  /** What the native SPA gate checks for this policy (capture/spa-gate.ts). Holds the HMAC key. */
  readonly gateKey: SpaGateKey;
}

/** A policy or key set that can never verify anything; thrown by createSpaVerifier only. */
export class SpaPolicyError extends Error {}

const DEFAULT_SOURCES = ['0.0.0.0/0', '::/0'];
const UNSPECIFIED_V4 = '0.0.0.0';
const neverGrant = new SourceMatcher(ALWAYS_NEVER_GRANT);

function canonicalIp(ip: string): string {
  return ip.includes(':') ? new SocketAddress({ address: ip, family: 'ipv6' }).address : ip;
}

/** The grant's source: "10.1.2.3/32", "fd00::7/128" (IPv6 in canonical form). */
function hostSource(ip: string): string {
  return parseIpv4(ip) >= 0 ? `${ip}/32` : hostCidr(canonicalIp(ip));
}

export interface SpaVerifierOptions {
  clock: Clock;
  /**
   * Where the HMAC and the decryption run: 'native' (the capture addon's SpaOpener, the default
   * where the addon loads) or 'javascript' (decode.ts openSpa, the reference).
   */
  crypto?: 'native' | 'javascript';
}

export function createSpaVerifier(policy: KnockPolicy, keys: SpaKeys, opts: SpaVerifierOptions): SpaVerifier {
  const name = policy.metadata.name;
  const spa = policy.spec.spa;
  const where = `KnockPolicy ${name}`;
  if (!spa) throw new SpaPolicyError(`${where}: not an SPA policy (spec.spa is missing)`);
  let port: ReturnType<typeof parsePort>;
  let sources: SourceMatcher;
  let grantPorts: Set<string>;
  try {
    port = parsePort(spa.port, 'udp');
    sources = new SourceMatcher(spa.allowedSources ?? DEFAULT_SOURCES);
    grantPorts = new Set(policy.spec.grant.ports.map((p) => formatPort(parsePort(p))));
  } catch (err) {
    throw new SpaPolicyError(`${where}: ${(err as Error).message}`);
  }
  if (keys.key.length < 1 || keys.key.length > SPA_LIMITS.maxKeyBytes)
    throw new SpaPolicyError(`${where}: encryption key must be 1-${SPA_LIMITS.maxKeyBytes} bytes`);
  if (keys.hmacKey && (keys.hmacKey.length < 1 || keys.hmacKey.length > SPA_LIMITS.maxHmacKeyBytes))
    throw new SpaPolicyError(`${where}: HMAC key must be 1-${SPA_LIMITS.maxHmacKeyBytes} bytes`);
  const encryptionMode = spa.encryptionMode ?? 'cbc';
  if (encryptionMode === 'legacy' && keys.hmacKey)
    throw new SpaPolicyError(`${where}: legacy encryption mode cannot be used with an HMAC key`);

  const decodeOptions: SpaDecodeOptions = {
    key: keys.key,
    encryptionMode,
    allowMissingHmac: spa.allowMissingHmac === true,
  };
  if (keys.hmacKey) decodeOptions.hmac = new SpaHmac(spa.hmacDigestType ?? 'sha256', keys.hmacKey);
  const gateKey: SpaGateKey = keys.hmacKey
    ? { hmacType: DIGEST_CODES[spa.hmacDigestType ?? 'sha256'], key: keys.hmacKey, allowMissingHmac: false }
    : { hmacType: 0, allowMissingHmac: decodeOptions.allowMissingHmac };
  if (opts.crypto !== 'javascript') {
    try {
      const opener = nativeSpaOpener({
        key: keys.key,
        encryptionMode,
        hmacType: gateKey.hmacType,
        ...(keys.hmacKey ? { hmacKey: keys.hmacKey } : {}),
        allowMissingHmac: decodeOptions.allowMissingHmac,
      });
      if (opener) decodeOptions.opener = opener;
    } catch (err) {
      throw new SpaPolicyError(`${where}: ${(err as Error).message}`);
    }
  }

  const maxAge = Math.min(
    spa.maxPacketAgeSeconds ?? DEFAULTS.maxPacketAgeSeconds,
    BOUNDS.maxPacketAgeSeconds,
  );
  const requireSource = spa.requireSourceAddress === true;
  const requireUsername = spa.requireUsername ?? '';
  const duration = Math.min(policy.spec.grant.durationSeconds, BOUNDS.maxDurationSeconds);
  const maxDuration = Math.min(policy.spec.grant.maxDurationSeconds ?? duration, BOUNDS.maxDurationSeconds);

  const refusals = new Map<SpaRefusalReason, Refusal>();
  for (const reason of Object.keys(SPA_REFUSALS) as SpaRefusalReason[]) {
    refusals.set(
      reason,
      Object.freeze({
        kind: 'refused',
        policy: name,
        reason,
        message: `SPA packet for ${where}: ${SPA_REFUSALS[reason]}`,
      }),
    );
  }
  const refuse = (reason: SpaRefusalReason): Refusal => refusals.get(reason)!;

  function check(packet: InboundPacket): Verdict {
    if (packet.proto !== port.proto || packet.dstPort !== port.port) return refuse('wrong-port');
    if (!sources.has(packet.src)) return refuse('source-not-allowed');
    const decoded = decodeSpa(packet.payload, decodeOptions);
    if (!decoded.ok) return refuse(decoded.reason);
    const msg = decoded.packet;
    if (msg.messageType === 'command') return refuse('command-refused');
    if (isNatType(msg.messageType)) return refuse('nat-refused');
    if (Math.abs(opts.clock.now() / 1000 - msg.timestamp) > maxAge) return refuse('stale');

    const request = parseAccessMessage(msg.accessMessage);
    if (!request) return refuse('malformed');
    let host: string;
    if (request.allowIp === UNSPECIFIED_V4) {
      if (requireSource) return refuse('source-mismatch');
      host = packet.src;
    } else {
      if (requireSource && canonicalIp(request.allowIp) !== canonicalIp(packet.src))
        return refuse('source-mismatch');
      host = request.allowIp;
    }
    if (neverGrant.has(host)) return refuse('never-grant');
    if (requireUsername !== '' && msg.username !== requireUsername) return refuse('username');

    const ports = new Set<string>();
    for (const a of request.access) {
      if (a.proto !== 'tcp' && a.proto !== 'udp') return refuse('ports-not-allowed');
      const spec = `${a.port}/${a.proto}`;
      if (!grantPorts.has(spec)) return refuse('ports-not-allowed');
      ports.add(spec);
    }
    if (ports.size > BOUNDS.maxPortsPerGrant) return refuse('ports-not-allowed');

    const decision: AccessDecision = {
      kind: 'grant',
      policy: name,
      method: 'spa',
      source: hostSource(host),
      ports: [...ports],
      durationSeconds: msg.clientTimeout > 0 ? Math.min(msg.clientTimeout, maxDuration) : duration,
      user: msg.username,
      claim: {
        digest: hash('sha256', packet.payload, 'hex'),
        expiresAt: new Date((msg.timestamp + maxAge + DEFAULTS.replayClockSkewSeconds) * 1000),
      },
    };
    return decision;
  }

  return {
    policy: name,
    gateKey,
    verify(packet: InboundPacket): Verdict {
      try {
        return check(packet);
      } catch {
        // Unreachable for any payload as far as the checks above go; fail closed all the same.
        return refuse('malformed');
      }
    },
  };
}
