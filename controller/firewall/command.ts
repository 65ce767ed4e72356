// Running the netfilter tools: every command has a time limit (on the injectable clock), its exit
// status and stderr are logged, and a failure becomes an error that says which command and why.
// Arguments are passed as an argv array (no shell), and only validated values are ever substituted.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Clock } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import { requireListedProgram } from '../external-programs.js';
import { FIREWALL_LIMITS } from './limits.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to stdin (a ruleset for nft -f -, ipset restore, iptables-restore). */
  input?: string;
  timeoutMs?: number;
  /** Exit codes that count as success. Default [0]. */
  okCodes?: number[];
}

export class CommandError extends Error {
  constructor(
    message: string,
    readonly result?: CommandResult,
    /** The program itself is not installed. */
    readonly notFound = false,
  ) {
    super(message);
  }
}

/** Trim tool output for a log line or an error message. */
export function excerpt(text: string): string {
  const oneLine = text.trim().replace(/\s*\n\s*/g, ' | ');
  const max = FIREWALL_LIMITS.maxOutputChars;
  return oneLine.length > max ? `${oneLine.slice(0, max)}…` : oneLine;
}

export class Commands {
  constructor(
    private readonly prefix: readonly string[],
    private readonly logger: Logger,
    private readonly clock: Clock,
  ) {}

  /** True when commands run as they are, in this process's namespaces (no `ip netns exec` prefix). */
  get local(): boolean {
    return this.prefix.length === 0;
  }

  /** The argv to spawn; refuses a program missing from EXTERNAL_PROGRAMS (the image installs those). */
  private argv(cmd: string, args: readonly string[]): [string, string[]] {
    requireListedProgram(cmd);
    const all = [...this.prefix, cmd, ...args];
    return [all[0]!, all.slice(1)];
  }

  /** Start a long-lived process (the nft -i / ipset - sessions). */
  spawn(cmd: string, args: readonly string[]): ChildProcessWithoutNullStreams {
    const [file, argv] = this.argv(cmd, args);
    return spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /** Run to completion. Rejects with CommandError on a non-ok exit, a time-out or a missing program. */
  run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    let file: string, argv: string[];
    try {
      [file, argv] = this.argv(cmd, args);
    } catch (err) {
      return Promise.reject(new CommandError((err as Error).message));
    }
    const timeoutMs = opts.timeoutMs ?? FIREWALL_LIMITS.commandTimeoutMs;
    const okCodes = opts.okCodes ?? [0];
    const started = this.clock.now();
    const what = [cmd, ...args].join(' ');
    return new Promise((resolve, reject) => {
      const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      const timer = this.clock.setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => err.push(d));
      // A child that exits before reading all of its input closes the pipe: that is reported by
      // its exit status, not as an EPIPE crash.
      child.stdin.on('error', () => undefined);
      child.on('error', (e: NodeJS.ErrnoException) => {
        timer.cancel();
        const notFound = e.code === 'ENOENT';
        this.logger.warn({ cmd: what, err: e.message }, 'firewall command could not start');
        reject(new CommandError(`${cmd}: ${notFound ? 'not installed' : e.message}`, undefined, notFound));
      });
      child.on('close', (code, signal) => {
        timer.cancel();
        const result = {
          code: code ?? -1,
          stdout: Buffer.concat(out).toString(),
          stderr: Buffer.concat(err).toString(),
        };
        const ok = !timedOut && code !== null && okCodes.includes(code);
        const fields = {
          cmd: what,
          code,
          signal,
          ms: this.clock.now() - started,
          stderr: excerpt(result.stderr),
        };
        if (ok) {
          this.logger.debug(fields, 'firewall command done');
          return resolve(result);
        }
        this.logger.warn(fields, timedOut ? 'firewall command timed out' : 'firewall command failed');
        if (timedOut)
          return reject(new CommandError(`${cmd}: no answer within ${timeoutMs / 1000} s`, result));
        // "ip netns exec", env and sudo report a program they cannot find with 255/127 and ENOENT text.
        const notFound = (code === 127 || code === 255) && /No such file or directory/.test(result.stderr);
        const reason = notFound ? 'not installed' : excerpt(result.stderr) || `exit status ${code ?? signal}`;
        reject(new CommandError(`${cmd}: ${reason}`, result, notFound));
      });
      child.stdin.end(opts.input ?? '');
    });
  }
}
