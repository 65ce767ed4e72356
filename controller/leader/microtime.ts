// metav1.MicroTime as the API server parses it: RFC 3339 with exactly six fractional digits.
// client-node 1.4 serializes a Date with milliseconds (three digits), which kube-apiserver refuses
// for Lease renewTime/acquireTime, so knockgate writes these fields as strings it formats itself.

/** 1767225600123 → "2026-01-01T00:00:00.123000Z". */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
