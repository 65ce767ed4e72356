// Reading config files: bounded in size, errors as ConfigError naming the file (and the line that
// referred to it, for included files).

import { readFileSync, statSync } from 'node:fs';
import { ConfigError } from './errors.js';
import { MAX_CONFIG_BYTES } from './defaults.js';

/** Where a file was referred from (an %include line, a one_time_sequences directive). */
export interface Origin {
  file: string;
  line: number;
}

export function readConfigText(path: string, from?: Origin): string {
  const fail = (what: string) =>
    from ? new ConfigError(from.file, from.line, `${path}: ${what}`) : new ConfigError(path, undefined, what);
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw fail('not a regular file');
    size = st.size;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw fail(`cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (size > MAX_CONFIG_BYTES) throw fail(`too large (${size} bytes, at most ${MAX_CONFIG_BYTES})`);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw fail(`cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
