#!/usr/bin/env node
// The EC2 emulator as a program (test infrastructure, never shipped):
//   npm run emulator:ec2 -- --port 0 [--access-key-id ID --secret-access-key KEY]
// Prints one ready line (URL, port, admin token) and runs until SIGINT/SIGTERM. State in memory,
// per region. Faults and settings at run time: POST /emulator/v1/faults and /emulator/v1/settings
// with `Authorization: Bearer <admin token>`.

import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { DEFAULT_SETTINGS } from './faults.js';
import { DEFAULT_CREDENTIAL, Ec2Emulator } from './server.js';

function numberOption(name: string, min: number, max: number, integer = true) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be ${integer ? 'an integer' : 'a number'} ${min}-${max}`);
    return n;
  };
}

const program = new Command('ec2-emulator')
  .description(
    'EC2 Query API emulator for knockgate tests (security groups and rules, state in memory per region)',
  )
  .option('--port <port>', 'port to listen on (0 = a free one)', numberOption('--port', 0, 65535), 0)
  .option('--host <address>', 'IP address to listen on', '127.0.0.1')
  .option('--access-key-id <id>', 'the accepted access key id', DEFAULT_CREDENTIAL.accessKeyId)
  .option('--secret-access-key <key>', 'its secret access key', DEFAULT_CREDENTIAL.secretAccessKey)
  .option('--session-token <token>', 'require this session token (temporary credentials)')
  .option(
    '--inbound-rule-limit <n>',
    'inbound rules per security group and address family (RulesPerSecurityGroupLimitExceeded beyond)',
    numberOption('--inbound-rule-limit', 1, 1000),
    DEFAULT_SETTINGS.inboundRulesPerFamily,
  )
  .option(
    '--rate-limit <rps>',
    'requests per second per region before RequestLimitExceeded (0 = no limit)',
    numberOption('--rate-limit', 0, 1_000_000, false),
    DEFAULT_SETTINGS.requestsPerSecond,
  )
  .option(
    '--burst <n>',
    'token bucket size per region',
    numberOption('--burst', 1, 1_000_000),
    DEFAULT_SETTINGS.burst,
  )
  .option('--deny <action...>', 'actions refused to the access key with UnauthorizedOperation')
  .option('--latency-ms <ms>', 'delay before every answer', numberOption('--latency-ms', 0, 600_000), 0)
  .option(
    '--fail-5xx <count>',
    'answer the next N requests with 503 Unavailable',
    numberOption('--fail-5xx', 0, 1_000_000),
    0,
  )
  .option(
    '--drop <count>',
    'drop the connection of the next N requests, no answer',
    numberOption('--drop', 0, 1_000_000),
    0,
  )
  .option('--admin-token <token>', 'bearer token of /emulator/v1/ (default: random, printed)')
  .showHelpAfterError(false)
  .exitOverride()
  .configureOutput({ writeErr: () => undefined });

async function main(): Promise<void> {
  program.parse();
  const o = program.opts<{
    port: number;
    host: string;
    accessKeyId: string;
    secretAccessKey: string;
    sessionToken?: string;
    inboundRuleLimit: number;
    rateLimit: number;
    burst: number;
    deny?: string[];
    latencyMs: number;
    fail5xx: number;
    drop: number;
    adminToken?: string;
  }>();
  const emulator = new Ec2Emulator({
    port: o.port,
    host: o.host,
    credentials: [
      {
        accessKeyId: o.accessKeyId,
        secretAccessKey: o.secretAccessKey,
        ...(o.sessionToken !== undefined ? { sessionToken: o.sessionToken } : {}),
      },
    ],
    settings: {
      inboundRulesPerFamily: o.inboundRuleLimit,
      requestsPerSecond: o.rateLimit,
      burst: o.burst,
      deny: o.deny ? { [o.accessKeyId]: o.deny } : {},
    },
    adminToken: o.adminToken,
  });
  emulator.faults.apply({
    latencyMs: o.latencyMs,
    ...(o.fail5xx > 0 ? { fail: { status: 503, count: o.fail5xx } } : {}),
    ...(o.drop > 0 ? { drop: { count: o.drop } } : {}),
  });
  await emulator.start();
  process.stdout.write(
    `ec2 emulator ready on ${emulator.url} port=${emulator.port} access-key-id=${o.accessKeyId} admin-token=${emulator.adminToken}\n`,
  );
  const shutdown = () => void emulator.stop().then(() => process.exit(0));
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  if (err instanceof CommanderError && err.exitCode === 0) process.exit(0); // --help
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`ec2-emulator: ${message.split('\n')[0]}\n`);
  process.exit(2);
});
