// Polling with a generous deadline: end-to-end tests wait for outcomes, never for fixed times.
// Kept apart from the namespace helpers: scripts/test-lanes.mjs puts every test that imports them
// in the one-at-a-time namespace lane, and a test that only polls does not belong there.

/** Wait until `check` returns a truthy value, polling; generous deadlines, bounded attempts. */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  { timeoutMs = 20_000, intervalMs = 50, what = 'condition' } = {},
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
