// Where a grant's time goes: stage timings from the packet's capture to the grant being recorded
// Active, logged at debug level (`grant-timing`). Measurement only (performance.now(), never a
// decision): the logic runs on the injectable clock.

import { performance } from 'node:perf_hooks';

/** Consecutive stages (mark: time since the previous mark) and overlapping spans (span: one promise). */
export class StageTimer {
  private readonly start = performance.now();
  private last = this.start;
  private readonly times: Record<string, number> = {};

  /**
   * `capturedAtMs`: when the kernel received the deciding packet (wall-clock ms, the capture
   * header's timestamp), giving `captureToDecisionMs`: the capture's wakeup, the hand-off to
   * JavaScript, decoding and the engine's decision.
   */
  constructor(capturedAtMs?: number) {
    if (capturedAtMs !== undefined)
      this.times['captureToDecisionMs'] = round(performance.timeOrigin + this.start - capturedAtMs);
  }

  mark(stage: string): void {
    const now = performance.now();
    this.times[stage] = round(now - this.last);
    this.last = now;
  }

  /** A point reached (not a stage): ms since the decision, e.g. `kernelAtMs` once the firewall took it. */
  reached(point: string): void {
    this.times[point] = round(performance.now() - this.start);
  }

  span<T>(stage: string, work: Promise<T>): Promise<T> {
    const from = performance.now();
    const done = () => void (this.times[stage] = round(performance.now() - from));
    work.then(done, done);
    return work;
  }

  /** Every stage so far, and the total since the decision. */
  stages(): Record<string, number> {
    return { ...this.times, decisionToDoneMs: round(performance.now() - this.start) };
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
