// knockgate import FILE: a knockd.conf, an fwknop access.conf or knockgate YAML → KnockPolicy and
// Secret YAML for the cluster (Secrets in the release namespace, keys in stringData). Warnings go to
// stderr one line each; a broken file is one `FILE:LINE: what is wrong` line and exit status 2.
//
// Only the options are defined here; the loaders and the YAML writer load when the command runs
// (cmd/import-run.ts), so that no other command loads them.

import type { Command } from 'commander';
import { DNS1123_LABEL } from '../api/validate-fields.js';
import { CliError } from './errors.js';
import type { ImportCliOptions } from './import-run.js';

/** The Helm chart's default release namespace. */
const DEFAULT_NAMESPACE = 'knockgate';

export function register(program: Command): void {
  program
    .command('import')
    .description(
      'convert a knockd.conf, an fwknop access.conf or knockgate YAML into KnockPolicy and Secret YAML',
    )
    .argument('<file>', 'knockd.conf, access.conf or knockgate YAML')
    .option('-n, --namespace <ns>', 'namespace of the key Secrets (the release namespace)', DEFAULT_NAMESPACE)
    .option(
      '--fwknopd-conf <file>',
      'fwknopd.conf to read with an access.conf (SPA port, interface, packet age)',
    )
    .option('-o, --output <file>', 'write the YAML here (mode 0600: it holds keys) instead of stdout')
    .action(async (file: string, opts: ImportCliOptions) => {
      if (!DNS1123_LABEL.test(opts.namespace))
        throw new CliError(`--namespace "${opts.namespace}" is not a namespace name`);
      (await import('./import-run.js')).run(file, opts);
    });
}
