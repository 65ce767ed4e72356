// Commands run when a door opens and closes: knockd's start_command/stop_command (with %IP%) and
// fwknopd's CMD_CYCLE_OPEN/CMD_CYCLE_CLOSE and older EXTERNAL_CMD_OPEN/CLOSE (with $IP, $SRC,
// $PKT_SRC, $DST, $PORT, $PROTO, $TIMEOUT, $CLIENT_TIMEOUT).
//
// Like knockd and fwknopd, the command line is run by /bin/sh -c, so an administrator's pipes and
// redirections keep working. What makes that safe is that only validated values are substituted:
// an IP address (node:net parses it), a port number, a protocol name, a decimal number. Nothing a
// packet carries reaches the shell as text of its own. Every command has a time limit; its exit
// status and (bounded) output are logged; a failure is reported to the caller, which records the
// grant as Failed instead of open.

import { spawn } from 'node:child_process';
import { isIP } from 'node:net';
import type { Logger } from '../api/log.js';
import { requireListedProgram } from './external-programs.js';

/** The shell hook commands run in (listed in EXTERNAL_PROGRAMS, like every program knockgate runs). */
const SHELL = '/bin/sh';
requireListedProgram(SHELL);

/** Values a command template may use. Each is validated before substitution. */
export interface HookVars {
  /** The address access is granted to (knockd %IP%, fwknop $IP/$SRC). */
  ip: string;
  /** The packet's source address, when it differs (fwknop $PKT_SRC). Default: ip. */
  pktSrc?: string;
  /** The address the packet was sent to (fwknop $DST). */
  dst?: string;
  /** First granted port and its protocol (fwknop $PORT, $PROTO). */
  port?: number;
  proto?: 'tcp' | 'udp';
  /** Expiry, seconds since the epoch (fwknop $TIMEOUT). */
  expiresAtSeconds?: number;
  /** The client's requested timeout in seconds, 0 when none (fwknop $CLIENT_TIMEOUT). */
  clientTimeout?: number;
}

export class HookError extends Error {}

/** Every bound of hook execution. */
export const HOOK_LIMITS = {
  /** A command that runs longer is killed (SIGTERM, then SIGKILL 2 s later) and counts as failed. */
  defaultTimeLimitMs: 30_000,
  /** Output kept for the log, per stream. */
  maxOutputBytes: 4096,
  maxCommandLength: 4096,
} as const;

function validated(vars: HookVars): Record<string, string> {
  const ip = checkIp(vars.ip, 'ip');
  const out: Record<string, string> = { IP: ip, SRC: ip, PKT_SRC: checkIp(vars.pktSrc ?? ip, 'pktSrc') };
  if (vars.dst !== undefined) out.DST = checkIp(vars.dst, 'dst');
  if (vars.port !== undefined) {
    if (!Number.isInteger(vars.port) || vars.port < 1 || vars.port > 65535)
      throw new HookError(`invalid port ${vars.port}`);
    out.PORT = String(vars.port);
  }
  if (vars.proto !== undefined) {
    if (vars.proto !== 'tcp' && vars.proto !== 'udp')
      throw new HookError(`invalid protocol ${String(vars.proto)}`);
    out.PROTO = vars.proto;
  }
  for (const [name, value] of [
    ['TIMEOUT', vars.expiresAtSeconds],
    ['CLIENT_TIMEOUT', vars.clientTimeout],
  ] as const) {
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 0) throw new HookError(`invalid ${name} ${value}`);
    out[name] = String(value);
  }
  return out;
}

function checkIp(value: string, what: string): string {
  // isIP accepts only plain dotted-quad and RFC 4291 text: no spaces, quotes or shell metacharacters.
  if (isIP(value) === 0) throw new HookError(`invalid ${what} address "${value}"`);
  return value;
}

/**
 * Substitute %IP% (knockd) and $NAME (fwknop) in `template`. A $NAME whose value is not known is an
 * error rather than an empty string, so a command never runs with a hole in it. Longest names first
 * so $PKT_SRC is not read as $P... and $CLIENT_TIMEOUT not as $TIMEOUT.
 */
export function renderCommand(template: string, vars: HookVars): string {
  if (template.length > HOOK_LIMITS.maxCommandLength) throw new HookError('command too long');
  const values = validated(vars);
  const names = ['CLIENT_TIMEOUT', 'PKT_SRC', 'TIMEOUT', 'PROTO', 'PORT', 'SRC', 'DST', 'IP'];
  return template.replace(/%IP%|\$([A-Z_]+)/g, (whole, name: string | undefined) => {
    if (name === undefined) return values.IP!;
    const known = names.find((n) => name.startsWith(n));
    if (!known) return whole; // not ours: leave shell variables such as $HOME alone
    const value = values[known];
    if (value === undefined) throw new HookError(`command uses $${known}, which is not known for this grant`);
    return value + name.slice(known.length);
  });
}

export interface HookResult {
  ok: boolean;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Run one rendered command line with /bin/sh -c under a time limit; never throws. */
export function runCommand(
  command: string,
  opts: { timeLimitMs?: number; logger?: Logger; what?: string } = {},
): Promise<HookResult> {
  const limit = opts.timeLimitMs ?? HOOK_LIMITS.defaultTimeLimitMs;
  const started = Date.now();
  return new Promise((resolve) => {
    // Its own process group, so a time-limit kill reaches whatever the shell started too.
    const child = spawn(SHELL, ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        /* already gone */
      }
    };
    const out = { stdout: '', stderr: '' };
    const keep = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      if (out[stream].length < HOOK_LIMITS.maxOutputBytes) {
        out[stream] += chunk.toString('utf8').slice(0, HOOK_LIMITS.maxOutputBytes - out[stream].length);
      }
    };
    child.stdout.on('data', keep('stdout'));
    child.stderr.on('data', keep('stderr'));
    let timedOut = false;
    let killer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      killer = setTimeout(() => killGroup('SIGKILL'), 2000);
    }, limit);
    const finish = (exitCode: number | null, signal: string | null, spawnError?: Error) => {
      clearTimeout(timer);
      if (killer) clearTimeout(killer);
      const result: HookResult = {
        ok: !timedOut && !spawnError && exitCode === 0,
        exitCode,
        signal,
        timedOut,
        stdout: out.stdout.trim(),
        stderr: (spawnError ? spawnError.message : out.stderr).trim(),
        durationMs: Date.now() - started,
      };
      opts.logger?.[result.ok ? 'info' : 'warn'](
        { event: 'command', what: opts.what, command, ...result },
        result.ok ? 'command succeeded' : 'command failed',
      );
      resolve(result);
    };
    child.once('error', (err) => finish(null, null, err));
    child.once('close', (code, signal) => finish(code, signal));
  });
}
