// `knockgate grants` output: one row per grant, like `kubectl get accessgrants`.

import type { AccessGrant } from '../../api/types.js';
import { expiresAtMs, isLive } from '../grants/phase.js';

const COLUMNS = ['NAME', 'SOURCE', 'PORTS', 'POLICY', 'METHOD', 'PHASE', 'EXPIRES'] as const;

/** "4m12s", "2h3m", "expired 10s ago". */
export function formatDuration(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  const text =
    s < 60
      ? `${s}s`
      : s < 3600
        ? `${Math.floor(s / 60)}m${s % 60}s`
        : s < 86400
          ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`
          : `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/** The phase as of `now`: a live-phased grant past its expiry shows Expired (the daemon may be down). */
export function phaseAt(grant: AccessGrant, now: number): string {
  if (isLive(grant, now)) return grant.status?.phase ?? 'Pending';
  return grant.status?.phase && grant.status.phase !== 'Active' && grant.status.phase !== 'Pending'
    ? grant.status.phase
    : 'Expired';
}

export function grantRows(grants: readonly AccessGrant[], now: number): string[][] {
  return grants.map((g) => [
    g.metadata.name,
    g.spec.source,
    g.spec.ports.join(','),
    g.spec.policyRef?.name ?? '<manual>',
    g.spec.method,
    phaseAt(g, now),
    formatDuration(expiresAtMs(g) - now),
  ]);
}

export function formatTable(rows: readonly string[][]): string {
  const all = [[...COLUMNS], ...rows];
  const widths = COLUMNS.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return (
    all
      .map((r) =>
        r
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('   ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}
