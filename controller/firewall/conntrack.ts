// `conntrack -D` for one source's flows to the ports a grant no longer covers: without it an
// ESTABLISHED flow (long-lived UDP above all) keeps passing the guard's established rule after the
// grant ends. A flush that finds nothing is not an error; a failed flush is logged, never thrown
// (the grant is closed in the firewall either way).

import type { Logger } from '../../api/log.js';
import { CommandError, excerpt, type Commands } from './command.js';
import type { ElementKey } from './elements.js';

/** conntrack exits 1 with this message when nothing matched. */
const NOTHING_DELETED = /\b0 flow entries have been deleted/;

export function conntrackArgs(family: 4 | 6, address: string, key: Pick<ElementKey, 'proto' | 'port'>) {
  return [
    '-D',
    '-f',
    family === 4 ? 'ipv4' : 'ipv6',
    '-s',
    address,
    '-p',
    key.proto,
    '--dport',
    String(key.port),
  ];
}

export async function flushConntrack(
  commands: Commands,
  logger: Logger,
  family: 4 | 6,
  address: string,
  keys: Pick<ElementKey, 'proto' | 'port'>[],
): Promise<void> {
  for (const key of keys) {
    try {
      const r = await commands.run('conntrack', conntrackArgs(family, address, key), { okCodes: [0, 1] });
      if (r.code === 1 && !NOTHING_DELETED.test(r.stderr))
        throw new CommandError(`conntrack: ${excerpt(r.stderr) || 'exit status 1'}`, r);
      logger.debug({ source: address, port: key.port, proto: key.proto }, 'conntrack flows flushed');
    } catch (err) {
      logger.warn(
        { source: address, port: key.port, proto: key.proto, err: (err as Error).message },
        'conntrack flush failed',
      );
    }
  }
}
