// What `knockgate import` runs (cmd/import.ts registers the options): the config loaders and the
// YAML writer load only for this command.

import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { loadConfig, ConfigError, type LoadedConfig } from '../api/config/load.js';
import { where } from '../api/config/errors.js';
import { CliError } from './errors.js';

export interface ImportCliOptions {
  namespace: string;
  fwknopdConf?: string;
  output?: string;
}

export function run(file: string, opts: ImportCliOptions): void {
  let config: LoadedConfig;
  try {
    // A cluster's Secret can be filled in after the import: keys still at fwknop-server's
    // placeholder are left out of it, with a warning, rather than refusing the whole file.
    config = loadConfig(file, {
      placeholderKeys: 'omit',
      ...(opts.fwknopdConf === undefined ? {} : { fwknopdConf: opts.fwknopdConf }),
    });
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message);
    throw err;
  }
  for (const w of [...config.warnings, ...clusterWarnings(file, config)])
    process.stderr.write(`warning: ${w}\n`);
  const yaml = renderClusterYaml(config, opts.namespace);
  if (opts.output === undefined) {
    process.stdout.write(yaml);
    return;
  }
  try {
    writeFileSync(opts.output, yaml, { mode: 0o600 });
  } catch (err) {
    throw new CliError(
      `${opts.output}: cannot write: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      1,
    );
  }
}

/** What a cluster cannot take from this config. */
function clusterWarnings(file: string, config: LoadedConfig): string[] {
  const out: string[] = [];
  if (config.settingsLine !== undefined) {
    out.push(
      where(
        file,
        config.settingsLine,
        'the StandaloneConfig is not imported: in a cluster, protected ports, alwaysAllow, neverGrant, mode and backend are the Helm values of the agent',
      ),
    );
  }
  const withHooks = Object.keys(config.hooks);
  if (withHooks.length) {
    out.push(
      `${file}: commands of ${withHooks.join(', ')} are not imported: a cluster runs no commands ` +
        '(they are kept when this file is used with knockgate standalone)',
    );
  }
  return out;
}

/** Multi-document YAML: each policy, followed by its Secret when it has one. */
export function renderClusterYaml(config: LoadedConfig, namespace: string): string {
  const docs: unknown[] = [];
  const emitted = new Set<string>();
  for (const policy of config.policies) {
    docs.push({
      apiVersion: policy.apiVersion,
      kind: policy.kind,
      metadata: { name: policy.metadata.name },
      spec: policy.spec,
    });
    const secretName = policy.spec.spa?.keySecretRef.name;
    if (secretName === undefined || emitted.has(secretName)) continue;
    emitted.add(secretName);
    docs.push({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: secretName, namespace },
      type: 'Opaque',
      stringData: config.secrets[secretName],
    });
  }
  return docs.map((d) => `---\n${stringify(d, { lineWidth: 0 })}`).join('');
}
