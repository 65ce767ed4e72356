// The replay claim of a one-time knock sequence: each sequence opens once, cluster-wide, because the
// ReplayStore refuses a digest it has already recorded.
//
// digest    = lowercase hex SHA-256 of "<policy>\n<sequence as port/proto, joined by ','>",
//             e.g. sha256("ssh\n7000/tcp,8000/udp,9000/tcp")
// expiresAt = the knock time + ONE_TIME_CLAIM_LIFETIME_MS. A one-time sequence is used up for good (as
//             knockd comments it out of its file); the controller deletes claims after expiresAt, so
//             the lifetime is long enough to never matter: 100 years.

import { createHash } from 'node:crypto';

export const ONE_TIME_CLAIM_LIFETIME_MS = 100 * 365 * 24 * 3600 * 1000;

export function oneTimeSequenceDigest(policy: string, sequence: readonly string[]): string {
  return createHash('sha256')
    .update(`${policy}\n${sequence.join(',')}`)
    .digest('hex');
}

export function oneTimeClaim(
  policy: string,
  sequence: readonly string[],
  at: number,
): { digest: string; expiresAt: Date } {
  return {
    digest: oneTimeSequenceDigest(policy, sequence),
    expiresAt: new Date(at + ONE_TIME_CLAIM_LIFETIME_MS),
  };
}
