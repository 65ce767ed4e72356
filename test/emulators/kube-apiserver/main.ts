#!/usr/bin/env node
// The Kubernetes API emulator as a program (test infrastructure, never shipped):
//   npm run emulator:kube -- --port 0 --kubeconfig /tmp/kubeconfig [--rbac rbac.yaml] [--crds crds/]
// Prints one ready line with the URL, writes a kubeconfig usable by kubectl and the product, and
// runs until SIGINT/SIGTERM. Faults: POST /emulator/v1/faults with the admin (first user's) token.

import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { writeFileSync } from 'node:fs';
import { loadCrdDirectory } from './crds.js';
import { loadRbacFile } from './rbac.js';
import { KubeApiServer } from './server.js';

function intOption(name: string, min: number, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be an integer ${min}-${max}`);
    return n;
  };
}

const program = new Command('kube-apiserver-emulator')
  .description('Kubernetes API emulator for knockgate tests (127.0.0.1 unless --host, state in memory)')
  .option('--port <port>', 'port to listen on (0 = a free one)', intOption('--port', 0, 65535), 0)
  .option(
    '--host <address>',
    'IP address to listen on (default 127.0.0.1; another one only inside a test netns)',
  )
  .option('--kubeconfig <file>', 'write a kubeconfig here (one context per user)')
  .option('--rbac <file>', 'users (bearer tokens) and their rules, YAML')
  .option('--crds <dir>', 'create the CustomResourceDefinitions of every .yaml file in this directory')
  .option('--namespace <name...>', 'namespaces that exist from the start')
  .option(
    '--history-limit <n>',
    'watch events kept for resuming (older: 410 Gone)',
    intOption('--history-limit', 1, 1_000_000),
    1000,
  )
  .option(
    '--history-window-ms <ms>',
    'also forget watch events older than this (0 = no time limit)',
    intOption('--history-window-ms', 0, 86_400_000),
    0,
  )
  .option(
    '--bookmark-interval-ms <ms>',
    'interval of watch bookmarks',
    intOption('--bookmark-interval-ms', 10, 3_600_000),
    5000,
  )
  .showHelpAfterError(false)
  // Usage errors end as one line and exit 2, like every other error (see main().catch).
  .exitOverride()
  .configureOutput({ writeErr: () => undefined });

async function main(): Promise<void> {
  program.parse();
  const opts = program.opts<{
    port: number;
    host?: string;
    kubeconfig?: string;
    rbac?: string;
    crds?: string;
    namespace?: string[];
    historyLimit: number;
    historyWindowMs: number;
    bookmarkIntervalMs: number;
  }>();
  const server = new KubeApiServer({
    port: opts.port,
    host: opts.host,
    users: opts.rbac ? loadRbacFile(opts.rbac) : undefined,
    namespaces: opts.namespace,
    historyLimit: opts.historyLimit,
    historyWindowMs: opts.historyWindowMs,
    bookmarkIntervalMs: opts.bookmarkIntervalMs,
  });
  if (opts.crds) loadCrdDirectory(server, opts.crds);
  await server.start();
  if (opts.kubeconfig) writeFileSync(opts.kubeconfig, server.kubeconfig(), { mode: 0o600 });
  process.stdout.write(
    `kube-apiserver emulator ready on ${server.url} port=${server.port}${opts.kubeconfig ? ` kubeconfig=${opts.kubeconfig}` : ''}\n`,
  );
  const shutdown = () => void server.stop().then(() => process.exit(0));
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  if (err instanceof CommanderError && err.exitCode === 0) process.exit(0); // --help, --version
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`kube-apiserver-emulator: ${message.split('\n')[0]}\n`);
  process.exit(2);
});
