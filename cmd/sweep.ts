// `knockgate sweep --cluster ID --region R... [--aws-endpoint URL] [--dry-run]`: revoke this
// cluster's expired security-group rules (controller/aws/sweep.ts), no Kubernetes needed.
// Exit status: 0 when every region was swept, 1 when a region failed (AWS error, one line each), 2 on
// bad input.

import type { Command } from 'commander';
import { CliError } from './errors.js';

interface SweepFlags {
  cluster: string;
  region: string[];
  awsEndpoint?: string;
  dryRun?: boolean;
  maxAttempts: string;
}

export function register(program: Command): void {
  program
    .command('sweep')
    .description(
      "revoke this cluster's security-group rules whose knockgate.io/expires-at has passed (no cluster needed)",
    )
    .requiredOption('--cluster <id>', 'the knockgate.io/cluster tag value of this installation')
    .requiredOption('--region <region...>', 'AWS regions to sweep (one EC2 client each)')
    .option('--aws-endpoint <url>', 'EC2 endpoint (a VPC endpoint; default: the regional endpoint)')
    .option('--max-attempts <n>', 'attempts per EC2 call with adaptive retry', '5')
    .option('--dry-run', 'print what would be revoked, change nothing')
    .action(async (flags: SweepFlags) => {
      const { clusterIdProblem } = await import('../controller/aws/tags.js');
      const { Ec2Clients, endpointProblem, regionProblem } = await import('../controller/aws/client.js');
      const { formatSweep, sweep } = await import('../controller/aws/sweep.js');
      const problem =
        clusterIdProblem(flags.cluster) ??
        flags.region.map(regionProblem).find((p) => p !== null) ??
        (flags.awsEndpoint !== undefined ? endpointProblem(flags.awsEndpoint) : null);
      if (problem) throw new CliError(problem);
      if (!/^[1-9][0-9]?$/.test(flags.maxAttempts))
        throw new CliError(`--max-attempts: want 1-99, got "${flags.maxAttempts}"`);
      const clients = new Ec2Clients({ endpoint: flags.awsEndpoint, maxAttempts: Number(flags.maxAttempts) });
      try {
        const results = await sweep({
          clusterId: flags.cluster,
          regions: flags.region,
          clients,
          now: () => Date.now(),
          dryRun: flags.dryRun,
        });
        const { stdout, stderr } = formatSweep(results, flags.dryRun);
        process.stdout.write(stdout);
        process.stderr.write(stderr);
        const failed = results.filter((r) => r.error).length;
        if (failed > 0) throw new CliError(`sweep failed in ${failed} of ${results.length} regions`, 1);
      } finally {
        clients.destroy();
      }
    });
}
