// What the sniffer's validators hand on: a decision to grant access, or a refusal with a reason.
// The knock matcher and the SPA verifier both produce these; whoever owns the GrantStore (standalone
// or the Kubernetes sniffer) turns an AccessDecision into an AccessGrant.

export interface AccessDecision {
  kind: 'grant';
  /** KnockPolicy name. */
  policy: string;
  method: 'knock' | 'spa';
  /** The host to open for, as a host CIDR ("203.0.113.7/32", "fd00::7/128"). */
  source: string;
  /** "22/tcp" specs: a subset of the policy's grant ports. */
  ports: string[];
  durationSeconds: number;
  /** SPA username, when the packet carried one. */
  user?: string;
  /**
   * A one-use token to claim in the ReplayStore before granting (SPA packet digest, one-time knock
   * sequence): a 'replay' answer means refuse.
   */
  claim?: { digest: string; expiresAt: Date };
}

export interface Refusal {
  kind: 'refused';
  policy?: string;
  /** Short machine-friendly reason, e.g. "bad-hmac", "stale", "replay", "source-not-allowed". */
  reason: string;
  /** One human line: what and where. Never holds key material. */
  message: string;
}

export type Verdict = AccessDecision | Refusal;

/** The packet facts a validator sees (already decoded from the frame). */
export interface InboundPacket {
  /** Source address without prefix ("10.0.0.2", "fd00::2"). */
  src: string;
  dst: string;
  family: 4 | 6;
  proto: 'tcp' | 'udp';
  srcPort: number;
  dstPort: number;
  /** TCP flags byte (FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10 URG=0x20); 0 for UDP. */
  tcpFlags: number;
  /** Transport payload (a view into the capture buffer: copy before keeping it). */
  payload: Buffer;
  /** Capture time, ms since the epoch (from the injectable clock). */
  at: number;
}
