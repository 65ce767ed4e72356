// Fault injection and the settings tests flip while the emulator runs, in process
// (`emulator.faults`, `emulator.settings`) or over HTTP (POST /emulator/v1/faults and
// /emulator/v1/settings with `Authorization: Bearer <admin token>`):
//   latencyMs     delay before every EC2 answer
//   fail          the next N matching requests answer 500 InternalError or 503 Unavailable
//   drop          the next N matching requests have their connection destroyed, unanswered
// Settings: the per-region request rate (token bucket, RequestLimitExceeded), the inbound rules per
// group and family, and the deny list (UnauthorizedOperation) per access key.

import type { Clock } from '../../../api/clock.js';

export interface FailSpec {
  /** 500 (InternalError) or 503 (Unavailable). */
  status: 500 | 503;
  count?: number;
  /** Only this EC2 action / region. */
  action?: string;
  region?: string;
}

export interface DropSpec {
  count?: number;
  action?: string;
  region?: string;
}

export interface FaultRequest {
  clear?: boolean;
  latencyMs?: number;
  fail?: FailSpec;
  drop?: DropSpec;
}

export interface Settings {
  /** Requests per second per region (token bucket refill); 0 = no limit. */
  requestsPerSecond: number;
  /** Bucket size: how many requests may come at once. */
  burst: number;
  /** Inbound rules per security group per address family (EC2 default 60). */
  inboundRulesPerFamily: number;
  /** Actions refused with UnauthorizedOperation, per access key id. */
  deny: Record<string, string[]>;
}

export const DEFAULT_SETTINGS: Settings = {
  requestsPerSecond: 0,
  burst: 10,
  inboundRulesPerFamily: 60,
  deny: {},
};

type Match = { action?: string; region?: string };
const matches = (m: Match, action: string, region: string) =>
  (m.action === undefined || m.action === action) && (m.region === undefined || m.region === region);

export class Faults {
  latencyMs = 0;
  private fails: (FailSpec & { left: number })[] = [];
  private drops: (DropSpec & { left: number })[] = [];

  apply(req: FaultRequest): void {
    if (req.clear) this.clear();
    if (req.latencyMs !== undefined) {
      if (!(Number.isFinite(req.latencyMs) && req.latencyMs >= 0 && req.latencyMs <= 600_000))
        throw new Error(`latencyMs ${req.latencyMs}: want 0-600000`);
      this.latencyMs = req.latencyMs;
    }
    if (req.fail) this.fail(req.fail);
    if (req.drop) this.drop(req.drop);
  }

  fail(spec: FailSpec): void {
    if (spec.status !== 500 && spec.status !== 503)
      throw new Error(`fail.status ${spec.status}: want 500 or 503`);
    this.fails.push({ ...spec, left: count(spec.count) });
  }

  drop(spec: DropSpec = {}): void {
    this.drops.push({ ...spec, left: count(spec.count) });
  }

  clear(): void {
    this.latencyMs = 0;
    this.fails = [];
    this.drops = [];
  }

  /** Consume a matching fault for this request, if any. */
  take(action: string, region: string): { drop: true } | { status: 500 | 503 } | undefined {
    const d = this.drops.find((x) => x.left > 0 && matches(x, action, region));
    if (d) {
      d.left--;
      return { drop: true };
    }
    const f = this.fails.find((x) => x.left > 0 && matches(x, action, region));
    if (f) {
      f.left--;
      return { status: f.status };
    }
    return undefined;
  }
}

function count(n: number | undefined): number {
  const c = n ?? 1;
  if (!Number.isInteger(c) || c < 1 || c > 1_000_000) throw new Error(`count ${c}: want 1-1000000`);
  return c;
}

export function checkSettings(s: Partial<Settings>): void {
  if (s.requestsPerSecond !== undefined && !(s.requestsPerSecond >= 0 && s.requestsPerSecond <= 1e6))
    throw new Error(`requestsPerSecond ${s.requestsPerSecond}: want 0-1000000`);
  if (s.burst !== undefined && !(Number.isInteger(s.burst) && s.burst >= 1 && s.burst <= 1e6))
    throw new Error(`burst ${s.burst}: want 1-1000000`);
  if (
    s.inboundRulesPerFamily !== undefined &&
    !(
      Number.isInteger(s.inboundRulesPerFamily) &&
      s.inboundRulesPerFamily >= 1 &&
      s.inboundRulesPerFamily <= 1000
    )
  )
    throw new Error(`inboundRulesPerFamily ${s.inboundRulesPerFamily}: want 1-1000`);
  if (s.deny !== undefined)
    for (const [k, v] of Object.entries(s.deny))
      if (!Array.isArray(v) || v.some((a) => typeof a !== 'string'))
        throw new Error(`deny.${k}: want a list of action names`);
}

/** EC2 throttles per account and region with a token bucket (refill rate, bucket size). */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly clock: Clock,
    private readonly settings: () => Settings,
  ) {
    this.tokens = settings().burst;
    this.at = clock.now();
  }

  take(): boolean {
    const { requestsPerSecond, burst } = this.settings();
    if (requestsPerSecond === 0) return true;
    const now = this.clock.now();
    this.tokens = Math.min(burst, this.tokens + ((now - this.at) / 1000) * requestsPerSecond);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
