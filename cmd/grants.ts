// knockgate grants: the grants in a standalone state dir (read-only; works with the daemon running
// or stopped). knockgate revoke SOURCE [--policy P]: close access at once in the running daemon.

//
// The state dir's readers and the control socket's client load when the command runs (await
// import()), so that no other command loads them.

import type { Command } from 'commander';
import { isIP } from 'node:net';
import { DEFAULT_STATE_DIR, StateDirError } from '../controller/local/state-dir.js';
import { CliError } from './errors.js';
import { join } from 'node:path';

async function listGrants(opts: { stateDir: string; all?: boolean; output?: string }): Promise<void> {
  if (opts.output !== undefined && opts.output !== 'json' && opts.output !== 'table')
    throw new CliError(`--output: want table or json, got "${opts.output}"`);
  const { loadGrantDir } = await import('../controller/local/grant-store.js');
  const { isLive } = await import('../controller/grants/phase.js');
  const { formatTable, grantRows } = await import('../controller/standalone/grant-table.js');
  let loaded;
  try {
    loaded = await loadGrantDir(join(opts.stateDir, 'grants'), { quarantine: false });
  } catch (err) {
    if (err instanceof StateDirError) throw new CliError(err.message, 1);
    throw err;
  }
  for (const p of loaded.problems) process.stderr.write(`warning: ${p}\n`);
  const now = Date.now();
  const grants = opts.all ? loaded.grants : loaded.grants.filter((g) => isLive(g, now));
  if (opts.output === 'json') {
    process.stdout.write(`${JSON.stringify(grants, null, 2)}\n`);
    return;
  }
  if (grants.length === 0) {
    process.stdout.write(opts.all ? 'No grants.\n' : 'No live grants (--all shows the recent history).\n');
    return;
  }
  process.stdout.write(formatTable(grantRows(grants, now)));
}

async function revoke(source: string, opts: { stateDir: string; policy?: string }): Promise<void> {
  const address = source.split('/')[0]!;
  if (isIP(address) === 0 || (source.includes('/') && !/\/(32|128)$/.test(source)))
    throw new CliError(`"${source}" is not a host address`);
  const { ControlSocketError, sendControlRequest } =
    await import('../controller/standalone/control-socket.js');
  let reply;
  try {
    reply = await sendControlRequest(opts.stateDir, {
      op: 'revoke',
      source: address,
      ...(opts.policy !== undefined ? { policy: opts.policy } : {}),
    });
  } catch (err) {
    if (err instanceof ControlSocketError) throw new CliError(err.message, 1);
    throw err;
  }
  if (!reply.ok) throw new CliError(`revoke: ${reply.error}`, 1);
  if (reply.revoked.length === 0) {
    process.stdout.write(`no live grant for ${address}${opts.policy ? ` and policy ${opts.policy}` : ''}\n`);
    return;
  }
  for (const name of reply.revoked) process.stdout.write(`revoked ${name}\n`);
}

export function register(program: Command): void {
  program
    .command('grants')
    .description('list the grants of a knockgate standalone state dir')
    .option('--state-dir <dir>', "the daemon's state dir", DEFAULT_STATE_DIR)
    .option('-A, --all', 'include expired, revoked and failed grants (recent history)')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(listGrants);
  program
    .command('revoke')
    .description('close access for SOURCE now, in the running knockgate standalone')
    .argument('<source>', 'the client address, e.g. 203.0.113.7')
    .option('--policy <name>', 'only the grants of this policy')
    .option('--state-dir <dir>', "the daemon's state dir", DEFAULT_STATE_DIR)
    .action(revoke);
}
