// A long-lived `nft -i` or `ipset -` process: per-grant changes are written to its stdin as lines
// instead of forking a process per grant. Requests are serialised; each is followed by a sentinel
// line that the tool answers with a known message on stderr carrying a sequence number, so the
// stderr text before that message is exactly the answer to the request ("" = success). stderr is
// the only channel that works for both tools: ipset block-buffers stdout when it is not a terminal,
// and stdout and stderr are separate pipes whose relative order is lost.

import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Clock } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import { excerpt, type Commands } from './command.js';
import { FIREWALL_LIMITS } from './limits.js';

export interface SessionProtocol {
  command: string;
  args: string[];
  /** The sentinel line for sequence number `seq`, and a pattern matching the tool's answer to it. */
  sentinel(seq: number): { line: string; answer: RegExp };
  /** Lines of the tool's own decoration to drop from answers (help hints, prompts). */
  noise?: RegExp;
}

export class SessionError extends Error {}

/** The process went away (killed, crashed) while or before it was asked. */
class SessionEndedError extends SessionError {}

interface Pending {
  seq: number;
  answer: RegExp;
  resolve: (stderr: string) => void;
  reject: (err: Error) => void;
}

/** Sequence numbers stay in 1..65535 (the ipset sentinel carries one as a port). */
const MAX_SEQ = 65_535;

export class LineSession {
  private child: ChildProcessWithoutNullStreams | undefined;
  private stderr = '';
  private pending: Pending | undefined;
  private seq = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly commands: Commands,
    private readonly protocol: SessionProtocol,
    private readonly logger: Logger,
    private readonly clock: Clock,
  ) {}

  /**
   * Send `lines`; resolves with the tool's stderr for them ("" when every line succeeded). A
   * process found dead is replaced and the request sent once more: requests set elements to an
   * exact state (nft add/delete/add, ipset -exist), so a repeat is harmless.
   */
  request(lines: string[]): Promise<string> {
    const run = this.queue.then(() =>
      this.send(lines).catch((err: unknown) => {
        if (!(err instanceof SessionEndedError)) throw err;
        return this.send(lines);
      }),
    );
    this.queue = run.catch(() => undefined);
    return run;
  }

  private start(): ChildProcessWithoutNullStreams {
    const child = this.commands.spawn(this.protocol.command, this.protocol.args);
    this.stderr = '';
    child.stdout.resume(); // prompts and listings are not answers; drained so the pipe never fills
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      this.stderr += d;
      this.check();
    });
    child.stdin.on('error', () => undefined); // reported through 'exit'
    const gone = (why: string) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.logger.warn(
        { cmd: this.protocol.command, why, stderr: excerpt(this.stderr) },
        'firewall session ended',
      );
      this.fail(new SessionEndedError(`${this.protocol.command} session ended (${why})`));
    };
    child.on('error', (e) => gone(e.message));
    child.on('exit', (code, signal) => gone(`exit ${code ?? signal}`));
    this.child = child;
    this.logger.debug({ cmd: this.protocol.command, pid: child.pid }, 'firewall session started');
    return child;
  }

  private send(lines: string[]): Promise<string> {
    const child = this.child ?? this.start();
    this.seq = (this.seq % MAX_SEQ) + 1;
    const { line, answer } = this.protocol.sentinel(this.seq);
    return new Promise<string>((resolve, reject) => {
      const timeoutMs = FIREWALL_LIMITS.sessionRequestTimeoutMs;
      const timer = this.clock.setTimeout(() => {
        // A session that does not answer is not trusted again: killed, and restarted on next use.
        this.fail(
          new SessionError(`${this.protocol.command} session: no answer within ${timeoutMs / 1000} s`),
        );
        this.kill();
      }, timeoutMs);
      this.pending = {
        seq: this.seq,
        answer,
        resolve: (text) => {
          timer.cancel();
          resolve(text);
        },
        reject: (err) => {
          timer.cancel();
          reject(err);
        },
      };
      child.stdin.write(`${lines.join('\n')}\n${line}\n`);
      this.check();
    });
  }

  private check(): void {
    const p = this.pending;
    if (!p) return;
    const m = p.answer.exec(this.stderr);
    if (!m) return;
    const before = this.stderr.slice(0, m.index);
    this.stderr = this.stderr.slice(m.index + m[0].length);
    this.pending = undefined;
    const noise = this.protocol.noise;
    const text = before
      .split('\n')
      .filter((l) => l.trim() !== '' && !(noise && noise.test(l)))
      .join('\n');
    p.resolve(text);
  }

  private fail(err: Error): void {
    const p = this.pending;
    this.pending = undefined;
    p?.reject(err);
  }

  private kill(): void {
    const child = this.child;
    this.child = undefined;
    if (child?.pid !== undefined && child.exitCode === null) child.kill('SIGKILL');
  }

  /** End the process: stdin closed (the tool exits), killed if it lingers. */
  async close(): Promise<void> {
    await this.queue;
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    await new Promise<void>((resolve) => {
      const timer = this.clock.setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, FIREWALL_LIMITS.commandTimeoutMs);
      child.once('exit', () => {
        timer.cancel();
        resolve();
      });
      child.stdin.end();
    });
  }
}
