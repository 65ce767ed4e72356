// The Helm chart (charts/knockgate) with the real Helm 3.17.2 (test/helpers/helm.ts): lint, template
// with default and test values, values.schema.json refusals with the path, the rendered configs read
// by the product's own parsers, least privilege as rendered (generated from controller/*/rbac.ts,
// the same rules the end-to-end harnesses enforce, and each role's forbidden requests refused with
// 403 by the API emulator holding the rendered rules), and helm install / upgrade / uninstall into
// the emulator, where this test plays the kubelet for the pre-delete Job (it runs the Job's
// `knockgate uninstall` as the Job's ServiceAccount and reports the Job Complete).

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseAgentConfig } from '../controller/agent/config.js';
import { AGENT_CLUSTER_RULES, AGENT_NAMESPACE_RULES } from '../controller/agent/rbac.js';
import { chartAdmissionPolicyJson, chartRbac } from '../controller/chart-rbac.js';
import { buildGrant } from '../controller/grants/build.js';
import { systemClock } from '../api/clock.js';
import { validateControllerConfig } from '../controller/reconciler/config.js';
import { CONTROLLER_CLUSTER_RULES, CONTROLLER_NAMESPACE_RULES } from '../controller/reconciler/rbac.js';
import { SNIFFER_CLUSTER_RULES, SNIFFER_NAMESPACE_RULES } from '../controller/sniffer/rbac.js';
import { UNINSTALL_CLUSTER_RULES, UNINSTALL_NAMESPACE_RULES } from '../controller/uninstall/rbac.js';
import type { RbacUser } from './emulators/kube-apiserver/rbac.js';
import { adminUser, chartUsers, renderChart, type Doc } from './helpers/chart-render.js';
import { CHART, helm } from './helpers/helm.js';
import { startEmulatedCluster } from './helpers/kube-store-emulator.js';

const ROOT = new URL('../', import.meta.url).pathname;
const NS = 'knockgate';
const TEST_VALUES = `${CHART}/ci/test-values.yaml`;
let home: string;
beforeAll(() => {
  home = mkdtempSync(`${tmpdir()}/kg-helm-`);
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

const template = (args: string[] = []): Promise<Doc[]> => renderChart(NS, args, home);
const find = (docs: Doc[], kind: string, suffix: string): Doc => {
  const d = docs.find((x) => x.kind === kind && x.metadata.name.endsWith(suffix));
  if (!d) throw new Error(`no ${kind} *${suffix} rendered`);
  return d;
};
type Container = {
  args: string[];
  securityContext: {
    capabilities?: unknown;
    privileged?: boolean;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
  };
};
type PodSpec = {
  hostNetwork?: boolean;
  serviceAccountName: string;
  securityContext: { runAsNonRoot?: boolean };
  containers: Container[];
  volumes?: { name: string; hostPath?: unknown }[];
};
type Pod = { spec: { template: { spec: PodSpec } } };
const podSpec = (d: Doc) => (d as unknown as Pod).spec.template.spec;

describe('helm lint and template', () => {
  it('lints with default and test values; Chart.yaml appVersion is package.json version; CRDs are crds/', async () => {
    for (const extra of [[], ['-f', TEST_VALUES]]) {
      const r = await helm(['lint', CHART, '--strict', ...extra], { home });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    }
    const chart = parseYaml(readFileSync(`${CHART}/Chart.yaml`, 'utf8')) as { appVersion: string };
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string };
    expect(chart.appVersion).toBe(pkg.version);
    const files = readdirSync(`${ROOT}crds`).sort();
    expect(readdirSync(`${CHART}/files/crds`).sort()).toEqual(files);
    for (const f of files)
      expect(readFileSync(`${CHART}/files/crds/${f}`, 'utf8'), f).toBe(
        readFileSync(`${ROOT}crds/${f}`, 'utf8'),
      );
  });

  it('renders the roles least-privileged: host network, only NET_RAW / NET_ADMIN+NET_RAW, read-only roots', async () => {
    const docs = await template();
    const sniffer = podSpec(find(docs, 'DaemonSet', '-sniffer'));
    const agent = podSpec(find(docs, 'DaemonSet', '-agent'));
    const controller = find(docs, 'Deployment', '-controller');
    expect(sniffer.hostNetwork).toBe(true);
    expect(agent.hostNetwork).toBe(true);
    expect(sniffer.containers[0].securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['NET_RAW'] });
    expect(agent.containers[0].securityContext.capabilities).toEqual({
      drop: ['ALL'],
      add: ['NET_ADMIN', 'NET_RAW'],
    });
    for (const spec of [sniffer, agent, podSpec(controller)]) {
      const sc = spec.containers[0].securityContext;
      expect(sc.privileged ?? false).toBe(false);
      expect(sc.readOnlyRootFilesystem).toBe(true);
      expect(sc.allowPrivilegeEscalation).toBe(false);
    }
    expect(sniffer.volumes).toBeUndefined();
    expect((agent.volumes ?? []).filter((v) => v.hostPath)).toEqual([
      { name: 'xtables-lock', hostPath: { path: '/run/xtables.lock', type: 'FileOrCreate' } },
    ]);
    expect((controller as unknown as { spec: { replicas: number } }).spec.replicas).toBe(2);
    expect(podSpec(controller).securityContext.runAsNonRoot).toBe(true);
    expect(podSpec(controller).containers[0].securityContext.capabilities).toEqual({ drop: ['ALL'] });
    expect(docs.some((d) => d.kind === 'PodDisruptionBudget')).toBe(true);
    const job = find(docs, 'Job', '-uninstall');
    expect(job.metadata.annotations?.['helm.sh/hook']).toBe('pre-delete');
    expect(docs.filter((d) => d.kind === 'CustomResourceDefinition')).toHaveLength(3);
    // Metrics on loopback by default (host network): no Service for the host roles.
    expect(sniffer.containers[0].args).toContain('--metrics-address=127.0.0.1:9465');
    expect(docs.filter((d) => d.kind === 'Service').map((d) => d.metadata.name)).toEqual([
      'kg-knockgate-controller-metrics',
    ]);
    const view = docs.find((d) => d.kind === 'ClusterRole' && d.metadata.name.endsWith('-view')) as Doc & {
      metadata: { labels: Record<string, string> };
    };
    expect(view.metadata.labels['rbac.authorization.k8s.io/aggregate-to-view']).toBe('true');
  });

  it('renders configs the product reads: Audit on first install, knock ports from the policies', async () => {
    const def = await template();
    const cfg = (docs: Doc[], suffix: string, key: string) =>
      (find(docs, 'ConfigMap', suffix) as unknown as { data: Record<string, string> }).data[key]!;
    const agentDefault = parseAgentConfig('agent.yaml', cfg(def, '-agent', 'agent.yaml'), {
      NODE_NAME: 'node-a',
    });
    expect(agentDefault.mode).toBe('Audit');
    const docs = await template(['-f', TEST_VALUES]);
    const agent = parseAgentConfig('agent.yaml', cfg(docs, '-agent', 'agent.yaml'), { NODE_NAME: 'node-a' });
    expect(agent.mode).toBe('Enforce');
    expect(agent.knockPorts.map((p) => `${p.port}/${p.proto}`)).toEqual([
      '7001/tcp',
      '7002/tcp',
      '7003/tcp',
      '62201/udp',
    ]);
    const controller = validateControllerConfig(parseYaml(cfg(docs, '-controller', 'controller.yaml')));
    expect(controller.errors).toEqual([]);
    expect(controller.config!.leaderElection.namespace).toBe(NS);
    const args = podSpec(find(docs, 'Deployment', '-controller')).containers[0].args as string[];
    expect(args).toEqual(expect.arrayContaining(['--cluster-id=test-cluster', '--aws-region=eu-west-1']));
    const sa = find(docs, 'ServiceAccount', '-controller');
    expect(sa.metadata.annotations?.['eks.amazonaws.com/role-arn']).toMatch(/^arn:aws:iam::/);
    expect(docs.filter((d) => d.kind === 'KnockPolicy').map((d) => d.metadata.name)).toEqual([
      'ssh-knock',
      'ssh-spa',
    ]);
    expect(docs.filter((d) => d.kind === 'Secret').map((d) => d.metadata.name)).toEqual(['ssh-spa']);
    expect(docs.filter((d) => d.kind === 'ServiceMonitor')).toHaveLength(3);
  });

  it('Helm refuses wrong types, unknown keys, a missing cluster ID and one without regions through values.schema.json, with the path', async () => {
    const cases: [string[], RegExp][] = [
      [['--set', 'agent.resyncIntervalSeconds=soon'], /agent\.resyncIntervalSeconds: Invalid type/],
      [['--set', 'agent.protectedPort[0]=22/tcp'], /agent: Additional property protectedPort is not allowed/],
      [['--set', 'agent.mode=Enforcing'], /agent\.mode: agent\.mode must be one of/],
      [
        ['--set', 'controller.aws.regions[0]=eu-west-1'],
        /controller\.clusterId: String length must be greater/,
      ],
      // The controller refuses --cluster-id without a region (it would crash-loop): so does the schema.
      [['--set', 'controller.clusterId=prod'], /controller\.aws\.regions: Array must have at least 1 items/],
      [['--set', 'nope=1'], /Additional property nope is not allowed/],
    ];
    for (const [args, want] of cases) {
      const r = await helm(['template', 'kg', CHART, ...args], { home });
      expect(r.status, args.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(/values don't meet the specifications of the schema/);
      expect(r.stderr).toMatch(want);
    }
    expect((await helm(['template', 'kg', CHART, '--set', 'global.anything=1'], { home })).status).toBe(0);
  });
});

const canonical = (r: object) =>
  JSON.stringify(Object.fromEntries(Object.entries(r).sort(([a], [b]) => a.localeCompare(b))));
const sortRules = (rules: object[]) => rules.map(canonical).sort();

describe('least privilege as rendered', () => {
  it('files/rbac.json is what controller/*/rbac.ts say, and the rendered roles hold exactly those rules', async () => {
    expect(JSON.parse(readFileSync(`${CHART}/files/rbac.json`, 'utf8'))).toEqual(
      JSON.parse(JSON.stringify(chartRbac())),
    );
    const users = chartUsers(await template());
    const rulesOf = (role: string) =>
      users.find((u) => u.name === `system:serviceaccount:${NS}:kg-knockgate-${role}`)!.rules;
    const inNs = (rules: object[]) => rules.map((r) => ({ ...r, namespaces: [NS] }));
    // The rules the end-to-end harnesses enforce (test/helpers/cluster-harness.ts) are these.
    expect(sortRules(rulesOf('sniffer'))).toEqual(
      sortRules([...SNIFFER_CLUSTER_RULES, ...inNs(SNIFFER_NAMESPACE_RULES)]),
    );
    expect(sortRules(rulesOf('controller'))).toEqual(
      sortRules([...CONTROLLER_CLUSTER_RULES, ...inNs(CONTROLLER_NAMESPACE_RULES)]),
    );
    expect(sortRules(rulesOf('uninstall'))).toEqual(
      sortRules([...UNINSTALL_CLUSTER_RULES, ...inNs(UNINSTALL_NAMESPACE_RULES)]),
    );
    expect(sortRules(rulesOf('agent'))).toEqual(
      sortRules([
        ...AGENT_CLUSTER_RULES,
        { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
        ...inNs(AGENT_NAMESPACE_RULES),
      ]),
    );
  });

  it('each role is refused (403) what it does not need, holding the rendered rules', async () => {
    const docs = await template();
    const admin: RbacUser = adminUser();
    const cluster = await startEmulatedCluster({ users: [admin, ...chartUsers(docs)] });
    try {
      const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
      for (const ns of [NS, 'other']) await core.createNamespace({ body: { metadata: { name: ns } } });
      for (const ns of [NS, 'other'])
        await core.createNamespacedSecret({
          namespace: ns,
          body: { metadata: { name: 'k' }, data: { KEY_BASE64: 'eA==' } },
        });
      const as = (role: string) => cluster.kubeConfigFor(`system:serviceaccount:${NS}:kg-knockgate-${role}`);
      const status = async (p: Promise<unknown>) =>
        p.then(
          () => 200,
          (e: { code?: number }) => e.code,
        );
      const grants = (role: string) => as(role).makeApiClient(CustomObjectsApi);
      const secrets = (role: string) => as(role).makeApiClient(CoreV1Api);
      const grantBody = {
        apiVersion: 'knockgate.io/v1alpha1',
        kind: 'AccessGrant',
        metadata: { name: 'x' },
        spec: {},
      };
      const g = { group: 'knockgate.io', version: 'v1alpha1', plural: 'accessgrants' };
      // The sniffer reads its keys in the release namespace, nowhere else, and never deletes a grant.
      expect(await status(secrets('sniffer').readNamespacedSecret({ name: 'k', namespace: NS }))).toBe(200);
      expect(await status(secrets('sniffer').readNamespacedSecret({ name: 'k', namespace: 'other' }))).toBe(
        403,
      );
      expect(await status(grants('sniffer').deleteClusterCustomObject({ ...g, name: 'x' }))).toBe(403);
      // The agent writes no grant and reads no Secret; the controller reads no Secret either.
      expect(await status(grants('agent').createClusterCustomObject({ ...g, body: grantBody }))).toBe(403);
      expect(await status(secrets('agent').readNamespacedSecret({ name: 'k', namespace: NS }))).toBe(403);
      expect(await status(secrets('controller').readNamespacedSecret({ name: 'k', namespace: NS }))).toBe(
        403,
      );
      expect(await status(grants('controller').createClusterCustomObject({ ...g, body: grantBody }))).toBe(
        403,
      );
      expect(await status(secrets('uninstall').readNamespacedSecret({ name: 'k', namespace: NS }))).toBe(403);
    } finally {
      await cluster.stop();
    }
  });
});

describe("the sniffer writes only its own node's grants (the rendered ValidatingAdmissionPolicy)", () => {
  it("node-a's sniffer creates and extends its grant; node-b's is refused (403) patching it, and a token naming no node creates nothing", async () => {
    expect(readFileSync(`${CHART}/files/sniffer-admission-policy.json`, 'utf8').replace(/\s+/g, '')).toBe(
      chartAdmissionPolicyJson().replace(/\s+/g, ''),
    );
    const docs = await template();
    const sa = `system:serviceaccount:${NS}:kg-knockgate-sniffer`;
    const snifferRules = chartUsers(docs).find((u) => u.name === sa)!.rules;
    const token = () => randomBytes(16).toString('hex');
    const sniffer = (node?: string): RbacUser => ({
      name: sa,
      token: token(),
      rules: snifferRules,
      ...(node ? { extra: { 'authentication.kubernetes.io/node-name': [node] } } : {}),
    });
    const admin: RbacUser = adminUser();
    const [a, b, none] = [sniffer('node-a'), sniffer('node-b'), sniffer()];
    const cluster = await startEmulatedCluster({ users: [admin, a, b, none] });
    // One kubeconfig per token (the users share a name, as the pods of one ServiceAccount do).
    const kubeconfigOf = (u: RbacUser) => {
      const kc = parseYaml(cluster.server.kubeconfig('admin')) as {
        users: { name: string; user: { token: string } }[];
        contexts: { name: string; context: { user: string } }[];
        'current-context': string;
      };
      kc.users = [{ name: 'pod', user: { token: u.token } }];
      kc.contexts = [
        { ...kc.contexts[0]!, name: 'pod', context: { ...kc.contexts[0]!.context, user: 'pod' } },
      ];
      kc['current-context'] = 'pod';
      const file = `${home}/${u.token}.kubeconfig`;
      writeFileSync(file, JSON.stringify(kc));
      return file;
    };
    const kubectl = (u: RbacUser, args: string[], stdin?: string) =>
      new Promise<{ code: number; out: string }>((resolve) => {
        const child = execFile(
          'kubectl',
          ['--kubeconfig', kubeconfigOf(u), ...args],
          { timeout: 30_000 },
          (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: `${stdout}${stderr}` }),
        );
        if (stdin !== undefined) child.stdin!.end(stdin);
      });
    try {
      const policy = docs.filter((d) => d.kind.startsWith('ValidatingAdmissionPolicy'));
      expect(policy.map((d) => d.kind)).toEqual([
        'ValidatingAdmissionPolicy',
        'ValidatingAdmissionPolicyBinding',
      ]);
      const applied = await kubectl(
        admin,
        ['create', '-f', '-'],
        policy.map((d) => JSON.stringify(d)).join('\n'),
      );
      expect(applied.code, applied.out).toBe(0);
      const grant = (node: string, source = '10.88.0.7') =>
        buildGrant(
          {
            kind: 'grant',
            policy: 'ssh',
            method: 'knock',
            source,
            ports: ['22/tcp'],
            durationSeconds: 60,
          },
          { clock: systemClock, node },
        );
      const own = grant('node-a');
      const created = await kubectl(a, ['create', '-f', '-'], JSON.stringify(own));
      expect(created.code, created.out).toBe(0);
      const later = new Date(Date.now() + 120_000).toISOString().replace(/\.\d+Z$/, 'Z');
      const extend = [
        'patch',
        'accessgrant',
        own.metadata.name,
        '--type',
        'merge',
        '-p',
        JSON.stringify({ spec: { expiresAt: later } }),
      ];
      const byB = await kubectl(b, extend);
      expect(byB.code).toBe(1);
      expect(byB.out).toMatch(/Forbidden|forbidden/);
      expect(byB.out).toMatch(/a sniffer changes only grants its own node observed/);
      const byA = await kubectl(a, extend);
      expect(byA.code, byA.out).toBe(0);
      // A grant in another node's name, and a token without a node: refused, nothing written.
      const forged = await kubectl(a, ['create', '-f', '-'], JSON.stringify(grant('node-b', '10.88.0.8')));
      expect(forged.out).toMatch(/spec\.observedBy must be the requesting node node-a/);
      const anonymous = await kubectl(
        none,
        ['create', '-f', '-'],
        JSON.stringify(grant('node-c', '10.88.0.9')),
      );
      expect(anonymous.out).toMatch(/names no node/);
      const listed = await kubectl(admin, ['get', 'accessgrants', '-o', 'name']);
      expect(listed.out.trim().split('\n')).toEqual([`accessgrant.knockgate.io/${own.metadata.name}`]);
    } finally {
      await cluster.stop();
    }
  });
});

const run = promisify(execFile);

describe('helm install, upgrade, uninstall into the API emulator', () => {
  it('brings the objects up, upgrades a value, and uninstall (with the pre-delete Job) leaves nothing', async () => {
    const docs = await template();
    const admin: RbacUser = adminUser();
    const users = [admin, ...chartUsers(docs)];
    const cluster = await startEmulatedCluster({ users });
    const kubeconfig = `${home}/admin.kubeconfig`;
    writeFileSync(kubeconfig, cluster.server.kubeconfig('admin'));
    // The CRDs come from the chart's templates this time.
    const crdType = cluster.server.api.type('apiextensions.k8s.io', 'v1', 'customresourcedefinitions')!;
    for (const crd of cluster.server.api.list(crdType, undefined, {}).items)
      cluster.server.api.delete(crdType, undefined, crd.metadata.name, {}, { dryRun: false } as never);
    const jobType = cluster.server.api.type('batch', 'v1', 'jobs')!;
    const ran: string[] = [];
    // The kubelet for Jobs: run the container's args as the Job's ServiceAccount, report the outcome.
    let stopped = false;
    const kubelet = (async () => {
      const seen = new Set<string>();
      while (!stopped) {
        for (const job of cluster.server.api.list(jobType, NS, {}).items) {
          if (seen.has(job.metadata.uid!)) continue;
          seen.add(job.metadata.uid!);
          const spec = (job as unknown as Pod).spec.template.spec;
          const sa = `system:serviceaccount:${NS}:${spec.serviceAccountName}`;
          const kc = `${home}/${spec.serviceAccountName}.kubeconfig`;
          writeFileSync(kc, cluster.server.kubeconfig(sa));
          const args = [...(spec.containers[0].args as string[]), `--kubeconfig=${kc}`];
          const outcome = await run('node', [`${ROOT}dist/cmd/knockgate.js`, ...args], {
            timeout: 60_000,
          }).then(
            () => 'Complete',
            (e: { stderr?: string }) => {
              ran.push(`failed: ${e.stderr}`);
              return 'Failed';
            },
          );
          ran.push(`${job.metadata.name}: ${args.slice(0, 2).join(' ')} → ${outcome}`);
          const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
          cluster.server.api.patch(
            jobType,
            NS,
            job.metadata.name,
            'application/merge-patch+json',
            {
              status: {
                ...(outcome === 'Complete' ? { succeeded: 1 } : { failed: 1 }),
                conditions: [{ type: outcome, status: 'True', lastTransitionTime: now, lastProbeTime: now }],
              },
            },
            'status',
            { fieldValidation: 'Ignore', dryRun: false },
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const h = (args: string[]) => helm([...args, '--kubeconfig', kubeconfig], { home, timeoutMs: 120_000 });
    const kubectl = async (args: string[]) =>
      (await run('kubectl', ['--kubeconfig', kubeconfig, ...args], { timeout: 30_000 })).stdout;
    try {
      const install = await h(['install', 'kg', CHART, '-n', NS, '--create-namespace', '--timeout', '60s']);
      const lastRequests = cluster.server.requests.slice(-12).map((r) => `${r.status} ${r.method} ${r.url}`);
      expect(install.status, `${install.stderr}\n${lastRequests.join('\n')}`).toBe(0);
      expect(install.stdout).toMatch(/kubectl get accessgrants -w/);
      const names = (
        await kubectl(['get', 'daemonsets,deployments,serviceaccounts,configmaps', '-n', NS, '-o', 'name'])
      ).split('\n');
      expect(names).toEqual(
        expect.arrayContaining([
          'daemonset.apps/kg-knockgate-sniffer',
          'daemonset.apps/kg-knockgate-agent',
          'deployment.apps/kg-knockgate-controller',
          'serviceaccount/kg-knockgate-uninstall',
        ]),
      );
      expect(await kubectl(['get', 'crd', '-o', 'name'])).toMatch(/accessgrants\.knockgate\.io/);
      const agentYaml = async () =>
        await kubectl([
          'get',
          'configmap',
          'kg-knockgate-agent',
          '-n',
          NS,
          '-o',
          'jsonpath={.data.agent\\.yaml}',
        ]);
      expect(await agentYaml()).toMatch(/mode: Audit/);

      // An upgrade changes a value, and keeps the Audit mode the install chose.
      const up = await h([
        'upgrade',
        'kg',
        CHART,
        '-n',
        NS,
        '--reuse-values',
        '--set',
        'agent.protectedPorts[0]=2200/tcp',
      ]);
      expect(up.status, up.stderr).toBe(0);
      expect(await agentYaml()).toMatch(/protectedPorts: \["2200\/tcp"\]/);
      expect(await agentYaml()).toMatch(/mode: Audit/);
      const image = await kubectl([
        'get',
        'ds',
        'kg-knockgate-agent',
        '-n',
        NS,
        '-o',
        'jsonpath={.spec.template.spec.containers[0].image}',
      ]);
      expect(image).toMatch(/knockgate:/);

      const un = await h(['uninstall', 'kg', '-n', NS, '--wait', '--timeout', '90s']);
      expect(un.status, `${un.stderr}\n${ran.join('\n')}`).toBe(0);
      expect(
        ran.some((l) => /kg-knockgate-uninstall: uninstall --namespace=knockgate → Complete/.test(l)),
        ran.join('\n'),
      ).toBe(true);
      const left = await kubectl([
        'get',
        'daemonsets,deployments,serviceaccounts,configmaps,secrets,jobs,roles,rolebindings',
        '-n',
        NS,
        '-o',
        'name',
      ]);
      expect(left.trim()).toBe('');
      expect(await kubectl(['get', 'clusterroles,clusterrolebindings', '-o', 'name'])).not.toMatch(
        /knockgate/,
      );
      // crds.keep: the CRDs (and the audit history in them) stay.
      expect(await kubectl(['get', 'crd', '-o', 'name'])).toMatch(/accessgrants\.knockgate\.io/);
    } finally {
      stopped = true;
      await kubelet;
      await cluster.stop();
    }
  }, 240_000);
});
