// knockgate standalone --config FILE: the sniffer, local grants and firewall on this host, in place
// of knockd or fwknopd (reading their config files). Wiring and signals only: the daemon is
// controller/standalone/daemon.ts.
//
// Exit status: 0 after SIGTERM/SIGINT; 2 for bad input (config FILE:LINE, options); 1 when this host
// cannot run it (privileges, interface, firewall tools). Every failure is one line, and a failed
// start leaves no rule behind.
//
// Only the options are defined here; the daemon loads when the command runs (cmd/standalone-run.ts).

import type { Command } from 'commander';
import { FIREWALL_BACKENDS } from '../api/standalone.js';
import { DEFAULT_STATE_DIR } from '../controller/local/state-dir.js';
import { CAPTURE_BUFFER } from '../sniffer/capture/buffer.js';
import { intOption, logLevel } from './options.js';

export interface StandaloneCliOptions {
  config?: string;
  fwknopdConf?: string;
  interface?: string[];
  backend?: string;
  stateDir: string;
  logLevel: string;
  maxGrants?: number;
  bufferSize?: number;
  metricsAddress?: string;
  cleanup?: boolean;
  clusterId?: string;
  awsEndpoint?: string;
}

export function register(program: Command): void {
  program
    .command('standalone')
    .description('sniffer, local grants and firewall on this host: a drop-in for knockd and fwknopd')
    .option('-c, --config <file>', 'knockd.conf, fwknop access.conf or knockgate YAML')
    .option('--fwknopd-conf <file>', 'fwknopd.conf to read with an access.conf (interface, SPA port)')
    .option('-i, --interface <name...>', 'capture interface(s); default: the default-route interface')
    .option('--backend <name>', `firewall backend: ${FIREWALL_BACKENDS.join(', ')} (default nftables)`)
    .option('--state-dir <dir>', 'where grants and used SPA packets are kept', DEFAULT_STATE_DIR)
    .option('--log-level <level>', 'trace, debug, info, warn, error', logLevel, 'info')
    .option(
      '--max-grants <n>',
      'live grants at most; more are refused',
      intOption('--max-grants', 1, 1_000_000),
    )
    .option(
      '--buffer-size <bytes>',
      'capture buffer size',
      intOption('--buffer-size', CAPTURE_BUFFER.minBytes, CAPTURE_BUFFER.maxBytes),
    )
    .option('--metrics-address <host:port>', 'serve /metrics and /healthz here, e.g. 127.0.0.1:9464')
    .option(
      '--cluster-id <id>',
      'knockgate.io/cluster tag of the security-group rules this host adds (required with awsSecurityGroups targets; unique per installation)',
    )
    .option('--aws-endpoint <url>', 'EC2 endpoint (a VPC endpoint; default: the regional endpoint)')
    .option('--cleanup', 'remove everything knockgate installed in the firewall, then exit')
    .action(async (opts: StandaloneCliOptions) => (await import('./standalone-run.js')).run(opts));
}
