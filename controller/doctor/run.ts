// The doctor only reads: every program it runs lists or prints state (iptables-save, nft list,
// ip, tc), through the same Commands as the firewall (so only EXTERNAL_PROGRAMS run, each with a
// time limit). A program that fails is an observation, not an error: tryRun never throws.

import { pino } from 'pino';
import { systemClock } from '../../api/clock.js';
import { Commands, CommandError } from '../firewall/command.js';

export interface Ran {
  ok: boolean;
  stdout: string;
  /** The one-line reason when !ok. */
  error: string;
  notFound: boolean;
}

/** Commands for the doctor: no log lines of their own (the report says what failed). */
export function doctorCommands(): Commands {
  return new Commands([], pino({ level: 'silent' }), systemClock);
}

export async function tryRun(commands: Commands, cmd: string, args: string[]): Promise<Ran> {
  try {
    const r = await commands.run(cmd, args, { timeoutMs: 10_000 });
    return { ok: true, stdout: r.stdout, error: '', notFound: false };
  } catch (err) {
    const e = err as CommandError;
    return {
      ok: false,
      stdout: e.result?.stdout ?? '',
      error: e.message,
      notFound: err instanceof CommandError && e.notFound,
    };
  }
}
