// The knockgate program: one subcommand per role or tool (DESIGN.md "Command line"), loaded by the
// binary (cmd/knockgate.ts) once start-up is set up. Each subcommand lives in its own module under
// cmd/ and registers itself on the program here.

import { Command, CommanderError } from 'commander';
import { registerCommands } from './commands.js';
import { CliError } from './errors.js';

const program = new Command('knockgate')
  .description('Port knocking and Single Packet Authorization for Kubernetes, cloud and Linux hosts')
  .version('0.1.0')
  .showHelpAfterError(false)
  .exitOverride();

registerCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // --help and --version "fail" with exit code 0.
    process.exit(err.exitCode);
  }
  // One line, what and where; never a stack trace for bad input.
  process.stderr.write(`knockgate: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof CliError ? err.exitCode : 1);
});
