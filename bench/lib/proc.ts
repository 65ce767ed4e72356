// What the flood scenarios read about a daemon from /proc: CPU time (utime + stime) and resident
// memory (VmRSS), and the kernel's own counters of its packet sockets (packet-stats.py).

import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
// USER_HZ is 100 on every Linux architecture node runs on.
const TICKS_PER_SECOND = 100;

/**
 * CPU time the process has used, user + system, in microseconds: the sum of its threads'
 * /proc/PID/task/TID/schedstat run time (nanoseconds; the utime + stime of /proc/PID/stat count in
 * 10 ms ticks, too coarse for a C daemon that spends a few ms on a whole flood). Falls back to
 * /proc/PID/stat when schedstat is unavailable.
 */
export function cpuMicros(pid: number): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`))
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    if (Number.isFinite(ns)) return ns / 1000;
  } catch {
    /* fall back to the tick counters */
  }
  return statCpuMicros(pid);
}

/** utime + stime from /proc/PID/stat, in microseconds (10 ms resolution). */
export function statCpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces), which ends at the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1e6) / TICKS_PER_SECOND;
}

/** Resident set size in bytes (VmRSS). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Samples a process's RSS every intervalMs until stopped; keeps the maximum and the last value. */
export class RssSampler {
  max = 0;
  last = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    intervalMs = 100,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): number {
    try {
      this.last = rssBytes(this.pid);
      this.max = Math.max(this.max, this.last);
    } catch {
      /* the process is gone: keep what was seen */
    }
    return this.last;
  }

  stop(): { maxBytes: number; lastBytes: number } {
    clearInterval(this.timer);
    this.sample();
    return { maxBytes: this.max, lastBytes: this.last };
  }
}

/** Wait until the process has used no CPU for quietMs (it caught up), at most timeoutMs. */
export async function untilIdle(pid: number, { quietMs = 1000, timeoutMs = 60_000 } = {}): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = cpuMicros(pid);
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, quietMs));
    const now = cpuMicros(pid);
    // Less than 2% of one core over the interval: idle (timers, the resync).
    if (now - last < quietMs * 1000 * 0.02) return;
    last = now;
  }
}

export interface PacketSocketStats {
  /** Packets the kernel handed to the socket's ring, including those dropped, since the last read. */
  packets: number;
  /** Packets dropped because the ring (libpcap's buffer) was full, since the last read. */
  drops: number;
}

/**
 * The kernel's PACKET_STATISTICS of every packet socket of `pid`, summed. Reading them resets them
 * (the kernel's semantics), so read once before a flood and once after it. Neither cap nor fwknopd
 * nor knockd reads them, so nothing else is disturbed. See packet-stats.py for how.
 */
export async function packetSocketStats(pid: number): Promise<PacketSocketStats> {
  const script = join(import.meta.dirname, '..', '..', '..', 'bench', 'lib', 'packet-stats.py');
  try {
    const { stdout } = await execFileP('python3', [script, String(pid)], { timeout: 10_000 });
    return JSON.parse(stdout) as PacketSocketStats;
  } catch (err) {
    // No python3 or no pidfd_getfd (Linux < 5.6): the drop figures are reported as unknown.
    if (!warned)
      console.error(`packet socket counters unavailable (${(err as Error).message.split('\n')[0]})`);
    warned = true;
    return { packets: NaN, drops: NaN };
  }
}

let warned = false;
