// `knockgate doctor`: check this node or standalone host and explain, one line per check, OK / WARN /
// FAIL and why (controller/doctor/). Read-only: it lists rules, opens the capture for a few seconds
// and, with --region, calls DescribeSecurityGroups.
//
// Exit status: 0 when nothing failed (warnings allowed), 1 when a check failed, 2 on bad input.

import type { Command } from 'commander';
import { CliError } from './errors.js';
import { intOption } from './options.js';

interface DoctorFlags {
  config?: string;
  fwknopdConf?: string;
  agentConfig?: string;
  interface?: string[];
  port?: string[];
  captureSeconds: number;
  kubeProxyUrl?: string;
  region?: string;
  awsEndpoint?: string;
  securityGroup?: string[];
  clusterId?: string;
  check?: string[];
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description(
      'check this node: netfilter mode, eBPF bypass, kube-proxy mode, rules in force, capture, security group',
    )
    .option('-c, --config <file>', 'standalone config (knockd.conf, fwknop access.conf or knockgate YAML)')
    .option('--fwknopd-conf <file>', 'fwknopd.conf to read with an access.conf')
    .option('--agent-config <file>', "the agent's config (kind: AgentConfig YAML)")
    .option(
      '-i, --interface <name...>',
      "capture interface(s); default: the config's, else the default-route one",
    )
    .option('--port <port/proto...>', "knock or SPA ports to watch beside the config's (default proto udp)")
    .option(
      '--capture-seconds <n>',
      'how long the capture watches (0: skip)',
      intOption('--capture-seconds', 0, 300),
      5,
    )
    .option('--kube-proxy-url <url>', 'kube-proxy /proxyMode endpoint ("" : do not ask)')
    .option('--region <region>', "with AWS access: the node's region (checks its security groups)")
    .option('--aws-endpoint <url>', 'EC2 endpoint (a VPC endpoint; default: the regional endpoint)')
    .option('--security-group <id...>', "the node's security groups (the SPA port must be allowed in)")
    .option('--cluster-id <id>', 'the knockgate.io/cluster tag: list the groups knockgate manages')
    .option(
      '--check <name...>',
      'run only these checks: netfilter, ebpf, kube-proxy, config, firewall, capture, aws',
    )
    .action(async (flags: DoctorFlags) => {
      const { DOCTOR_CHECKS, runDoctor } = await import('../controller/doctor/doctor.js');
      const { exitStatus, formatReport } = await import('../controller/doctor/report.js');
      const { parsePort } = await import('../api/ports.js');
      for (const c of flags.check ?? [])
        if (!(DOCTOR_CHECKS as readonly string[]).includes(c))
          throw new CliError(`--check ${c}: want one of ${DOCTOR_CHECKS.join(', ')}`);
      for (const p of flags.port ?? []) {
        try {
          parsePort(p, 'udp');
        } catch (err) {
          throw new CliError(`--port ${p}: ${(err as Error).message}`);
        }
      }
      if (flags.config !== undefined && flags.agentConfig !== undefined)
        throw new CliError('--config and --agent-config: give one (a standalone host or a node)');
      let clients;
      if (flags.region !== undefined) {
        const { Ec2Clients, endpointProblem, regionProblem } = await import('../controller/aws/client.js');
        const { clusterIdProblem } = await import('../controller/aws/tags.js');
        const problem =
          regionProblem(flags.region) ??
          (flags.awsEndpoint !== undefined ? endpointProblem(flags.awsEndpoint) : null) ??
          (flags.clusterId !== undefined ? clusterIdProblem(flags.clusterId) : null) ??
          (flags.securityGroup ?? [])
            .map((g) =>
              /^sg-[0-9a-f]{8,17}$/.test(g)
                ? null
                : `--security-group ${g}: not a security group id (sg-...)`,
            )
            .find((p) => p !== null) ??
          null;
        if (problem) throw new CliError(problem);
        clients = new Ec2Clients({ endpoint: flags.awsEndpoint, maxAttempts: 2 });
      } else if (flags.securityGroup || flags.clusterId || flags.awsEndpoint) {
        throw new CliError('--security-group, --cluster-id and --aws-endpoint need --region');
      }
      try {
        const results = await runDoctor({
          config: flags.config,
          fwknopdConf: flags.fwknopdConf,
          agentConfig: flags.agentConfig,
          interfaces: flags.interface,
          ports: flags.port,
          captureSeconds: flags.captureSeconds,
          kubeProxyUrl: flags.kubeProxyUrl,
          only: flags.check as never,
          ...(clients
            ? {
                aws: {
                  clients,
                  region: flags.region!,
                  securityGroups: flags.securityGroup ?? [],
                  ...(flags.clusterId !== undefined ? { clusterId: flags.clusterId } : {}),
                },
              }
            : {}),
        });
        process.stdout.write(formatReport(results));
        process.exitCode = exitStatus(results);
      } finally {
        clients?.destroy();
      }
    });
}
