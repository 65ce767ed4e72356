// `knockgate sweep` as an AWS Lambda handler (Node.js runtime, handler
// `dist/controller/aws/sweep-lambda.handler`), for an EventBridge schedule: the same sweep, configured
// by environment instead of flags, so expired rules close even when the cluster is gone.
//   KNOCKGATE_CLUSTER=prod  KNOCKGATE_REGIONS=eu-west-1,us-east-1  [KNOCKGATE_AWS_ENDPOINT=https://...]
//   [KNOCKGATE_DRY_RUN=true]
// Credentials: the function's execution role, through the SDK's default chain. A region that fails
// makes the invocation fail (so the schedule's retries and alarms see it); the log has one line per
// rule and per region.

import { endpointProblem, Ec2Clients, regionProblem } from './client.js';
import { formatSweep, sweep, type RegionSweep } from './sweep.js';
import { clusterIdProblem } from './tags.js';

export interface SweepLambdaResult {
  regions: { region: string; revoked: string[]; kept: number; error?: string }[];
}

function summary(r: RegionSweep) {
  return {
    region: r.region,
    revoked: r.revoked.map((x) => x.ruleId),
    kept: r.kept,
    ...(r.error ? { error: r.error } : {}),
  };
}

export async function handler(
  _event?: unknown,
  env: NodeJS.ProcessEnv = process.env,
  log: (line: string) => void = (line) => console.log(line),
): Promise<SweepLambdaResult> {
  const clusterId = env.KNOCKGATE_CLUSTER ?? '';
  const regions = (env.KNOCKGATE_REGIONS ?? '')
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  const endpoint = env.KNOCKGATE_AWS_ENDPOINT || undefined;
  const problem =
    clusterIdProblem(clusterId) ??
    (regions.length === 0 ? 'KNOCKGATE_REGIONS: want a comma-separated list of regions' : null) ??
    regions.map(regionProblem).find((p) => p !== null) ??
    (endpoint ? endpointProblem(endpoint) : null);
  if (problem) throw new Error(`knockgate sweep: ${problem}`);
  const dryRun = env.KNOCKGATE_DRY_RUN === 'true';
  const clients = new Ec2Clients({ endpoint });
  try {
    const results = await sweep({ clusterId, regions, clients, now: () => Date.now(), dryRun });
    const { stdout, stderr } = formatSweep(results, dryRun);
    for (const line of `${stdout}${stderr}`.split('\n').filter(Boolean)) log(line);
    const failed = results.filter((r) => r.error);
    if (failed.length > 0)
      throw new Error(
        `knockgate sweep failed in ${failed.map((r) => `${r.region} (${r.error})`).join(', ')}`,
      );
    return { regions: results.map(summary) };
  } finally {
    clients.destroy();
  }
}
