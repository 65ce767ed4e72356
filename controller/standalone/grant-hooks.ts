// knockd's start_command/stop_command and fwknop's open/close commands, run for one grant.
// Values substituted come from the stored grant (validated by renderCommand), never from packet text.
// Only the start command decides anything: its failure makes the grant Failed (nothing stays open).

import { isIP } from 'node:net';
import type { Logger } from '../../api/log.js';
import { parsePort } from '../../api/ports.js';
import { HOOK_DEFAULTS, type Hooks } from '../../api/standalone.js';
import type { AccessGrant } from '../../api/types.js';
import { HookError, renderCommand, runCommand, type HookVars } from '../hooks.js';
import { expiresAtMs } from '../grants/phase.js';

export type HookPhase = 'start' | 'stop';

export interface HookOutcome {
  ok: boolean;
  /** One line: why it failed. */
  message?: string;
}

function templateFor(hooks: Hooks, phase: HookPhase, family: number): string | undefined {
  if (family === 6) {
    const v6 = phase === 'start' ? hooks.start6 : hooks.stop6;
    if (v6 !== undefined) return v6 === '' ? undefined : v6;
  }
  const t = phase === 'start' ? hooks.start : hooks.stop;
  return t === '' ? undefined : t;
}

function varsFor(grant: AccessGrant): HookVars {
  const ip = grant.spec.source.split('/')[0]!;
  const first = grant.spec.ports[0] === undefined ? undefined : parsePort(grant.spec.ports[0]);
  const vars: HookVars = { ip, expiresAtSeconds: Math.floor(expiresAtMs(grant) / 1000), clientTimeout: 0 };
  if (first) {
    vars.port = first.port;
    vars.proto = first.proto;
  }
  return vars;
}

/**
 * The command line `phase` would run for `grant`, rendered (for Audit mode's log), or undefined when
 * its policy has none for this family.
 */
export function grantHookCommand(hooks: Hooks | undefined, phase: HookPhase, grant: AccessGrant) {
  if (!hooks) return undefined;
  const template = templateFor(hooks, phase, isIP(grant.spec.source.split('/')[0]!));
  if (template === undefined) return undefined;
  try {
    return renderCommand(template, varsFor(grant));
  } catch (err) {
    return `(not runnable: ${(err as HookError).message})`;
  }
}

/** Run the grant's policy hook for `phase`; resolves ok when there is none. Never throws. */
export async function runGrantHook(
  hooks: Hooks | undefined,
  phase: HookPhase,
  grant: AccessGrant,
  logger: Logger,
): Promise<HookOutcome> {
  if (!hooks) return { ok: true };
  const ip = grant.spec.source.split('/')[0]!;
  const template = templateFor(hooks, phase, isIP(ip));
  if (template === undefined) return { ok: true };
  let command: string;
  try {
    command = renderCommand(template, varsFor(grant));
  } catch (err) {
    const message = `${phase} command of policy "${grant.spec.policyRef?.name}": ${(err as HookError).message}`;
    logger.error({ event: 'hook', grant: grant.metadata.name, phase }, message);
    return { ok: false, message };
  }
  const timeLimitMs = (hooks.timeoutSeconds ?? HOOK_DEFAULTS.timeoutSeconds) * 1000;
  const result = await runCommand(command, { timeLimitMs, logger, what: `${phase} ${grant.metadata.name}` });
  if (result.ok) return { ok: true };
  const why = result.timedOut
    ? `timed out after ${timeLimitMs / 1000}s`
    : result.signal
      ? `killed by ${result.signal}`
      : `exit status ${result.exitCode}`;
  return { ok: false, message: `${phase} command failed: ${why}` };
}
