// make demo-kube: knockgate on a two-node Kubernetes cluster made of processes in network namespaces
// (test/helpers/cluster-harness.ts, run with vite-node): the Kubernetes API emulator and `knockgate
// controller` in an api namespace, `knockgate sniffer` + `knockgate agent` (nftables) on node-a and
// node-b. The chart (charts/knockgate) is rendered by the real Helm (`helm template`) and its
// manifests applied with the real kubectl: CRDs, ServiceAccounts and RBAC (which the emulator
// enforces, one token per role), the agent's and controller's ConfigMaps, the SPA key Secret, the
// KnockPolicies, the DaemonSets and the Deployment. No kubelet runs them here, so the demo plays the
// kubelet: it starts each role as the rendered pod would (its ConfigMap as --config, NODE_NAME).
// Then the real `knock` and `fwknop` clients open a node, `kubectl get accessgrants -w` is printed as
// it happens, and the chart's pre-delete Job (`knockgate uninstall`) removes every grant and rule.
// Everything is removed at the end (Cluster.destroy: processes by PID, namespaces), also on Ctrl-C.
// Needs root; `make demo-kube` has built knockgate.

import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import { renderChart, type Doc } from '../test/helpers/chart-render.js';
import { Cluster, RELEASE_NS } from '../test/helpers/cluster-harness.js';
import { keygen } from '../test/helpers/standalone-harness.js';

const PORT = 2222;
const SPA_PORT = 62201;
const GRANT_SECONDS = 15;
const tty = process.stdout.isTTY;
const bold = tty ? '\x1b[1m' : '';
const dim = tty ? '\x1b[2m' : '';
const off = tty ? '\x1b[0m' : '';
const step = (text) => console.log(`\n${bold}==> ${text}${off}`);
const say = (text) => console.log(`    ${text}`);

let cluster;
let cleaning;
async function cleanup(status) {
  cleaning ??= (async () => {
    step('Cleaning up');
    await cluster?.destroy();
    say('stopped every process by PID, removed the namespaces and their firewall rules');
  })();
  await cleaning;
  process.exit(status);
}
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => void cleanup(130));

async function main() {
  step('A cluster of processes: API emulator + controller, node-a and node-b (sniffer + agent), a client');
  cluster = await Cluster.create();
  const c = cluster;
  const keys = await keygen();
  await c.startApi();
  say(`API emulator on ${c.addr('api')}; every role has its own token holding the chart's RBAC`);

  step('helm template charts/knockgate with the demo values (real Helm 3.17)');
  const values = {
    namespace: { create: false },
    agent: { mode: 'Enforce', protectedPorts: [`${PORT}/tcp`] },
    policies: [
      {
        name: 'ssh-knock',
        spec: {
          knock: {
            sequence: ['7001/tcp', '7002/tcp', '7003/tcp'],
            sequenceTimeoutSeconds: 10,
            tcpFlags: ['syn'],
          },
          grant: {
            ports: [`${PORT}/tcp`],
            durationSeconds: GRANT_SECONDS,
            targets: { node: { mode: 'Local' } },
          },
          nodeSelector: { role: 'edge' },
        },
      },
      {
        name: 'ssh-spa',
        spec: {
          spa: { keySecretRef: { name: 'ssh-spa' }, port: `${SPA_PORT}/udp`, maxPacketAgeSeconds: 120 },
          grant: { ports: [`${PORT}/tcp`], durationSeconds: GRANT_SECONDS },
          nodeSelector: { role: 'edge' },
        },
      },
    ],
    spaKeys: [{ name: 'ssh-spa', key: keys.key, hmacKey: keys.hmac }],
  };
  const docs = await renderChart(RELEASE_NS, ['-f', c.write('values.yaml', stringify(values))]);
  // Hooks (the pre-delete uninstall Job) are Helm's to run, not kubectl's: applied, it would uninstall.
  const hook = (d: Doc) => d.metadata.annotations?.['helm.sh/hook'] !== undefined;
  const crds = docs.filter((d) => d.kind === 'CustomResourceDefinition');
  const rest = docs.filter((d) => d.kind !== 'CustomResourceDefinition' && !hook(d));
  say(`${docs.length} manifests: ${[...new Set(docs.map((d) => d.kind))].join(', ')}`);

  step('kubectl apply of the rendered manifests (the CRDs first, so the KnockPolicies have a kind)');
  const yaml = (list: Doc[]) => list.map((d) => stringify(d)).join('---\n');
  const applied = (out: string) => dim + out.trim().replace(/^/gm, '    ') + off;
  console.log(applied(await c.apply('chart-crds', yaml(crds))));
  console.log(applied(await c.apply('chart', yaml(rest))));
  await c.apply(
    'nodes',
    ['node-a', 'node-b']
      .map((n) => `apiVersion: v1\nkind: Node\nmetadata: {name: ${n}, labels: {role: edge}}\n`)
      .join('---\n'),
  );
  say((await c.kubectlOk(['get', 'knockpolicies'])).trim().replace(/\n/g, '\n    '));

  step('The kubelet part: each role started as its rendered pod says (ConfigMap as --config)');
  const configOf = (name: string, key: string) => {
    const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === name) as
      (Doc & { data: Record<string, string> }) | undefined;
    if (!cm?.data?.[key]) throw new Error(`the rendered chart has no ConfigMap ${name} with ${key}`);
    return cm.data[key];
  };
  const agentConfig = configOf('kg-knockgate-agent', 'agent.yaml');
  // The Deployment's container args, but for what the harness sets itself (config path, log level).
  const controllerArgs = () => {
    const deployment = docs.find((d) => d.kind === 'Deployment') as
      (Doc & { spec: { template: { spec: { containers: { args: string[] }[] } } } }) | undefined;
    if (!deployment) throw new Error('the rendered chart has no controller Deployment');
    return deployment.spec.template.spec.containers[0]!.args.filter(
      (a) => a !== 'controller' && !/^--(config|log-level)=/.test(a),
    ).map((a) => a.replace('$(POD_IP)', c.addr('api')));
  };
  await Promise.all([c.listen('node-a', [PORT]), c.listen('node-b', [PORT])]);
  await Promise.all([
    c.startNode('node-a', agentConfig, { env: { NODE_NAME: 'node-a' } }),
    c.startNode('node-b', agentConfig, { env: { NODE_NAME: 'node-b' } }),
    c.startController(configOf('kg-knockgate-controller', 'controller.yaml'), { args: controllerArgs() }),
  ]);
  for (const s of c.sniffers.values())
    await s.waitLog(
      (l) => (l.event === 'started' || l.event === 'policies') && l.policies.length === 2,
      'both policies',
      60_000,
    );
  say(`sniffers and agents run on node-a and node-b; port ${PORT} is dropped unless granted`);

  step('kubectl get accessgrants -w (its lines appear below as they happen, marked "watch |")');
  const watch = c
    .host('api')
    .spawn('kubectl', ['--kubeconfig', c.kubeconfig('admin'), 'get', 'accessgrants', '-w']);
  createInterface({ input: watch.stdout }).on('line', (l) => console.log(`    ${bold}watch |${off} ${l}`));

  const reach = async (node) => say(`client → ${node}:${PORT}: ${await c.connect('client', node, PORT)}`);
  step('Before any knock');
  await reach('node-a');
  await reach('node-b');

  step('The real knock client knocks node-a: 7001 7002 7003');
  await c.knock('client', 'node-a', ['7001', '7002', '7003']);
  await c.waitReach('client', 'node-a', PORT, 'open', 30_000);
  await reach('node-a');
  await reach('node-b');
  say('(Local target: only the node that saw the knock opens)');

  step(`The real fwknop client sends an SPA packet to node-b (-A tcp/${PORT})`);
  await c.fwknop('client', 'node-b', keys, `tcp/${PORT}`, SPA_PORT);
  await c.waitReach('client', 'node-b', PORT, 'open', 30_000);
  await reach('node-b');

  step(`Each grant expires on its own after ${GRANT_SECONDS} s`);
  await Promise.all(['node-a', 'node-b'].map((n) => c.waitReach('client', n, PORT, 'closed', 60_000)));
  await reach('node-a');
  await reach('node-b');
  await new Promise((r) => setTimeout(r, 2000)); // let the watch print the Expired phase
  say((await c.kubectlOk(['get', 'accessgrants'])).trim().replace(/\n/g, '\n    '));

  step('helm uninstall runs the pre-delete Job: knockgate uninstall (as its ServiceAccount)');
  const job = docs.find((d) => d.kind === 'Job' && hook(d)) as
    (Doc & { spec: { template: { spec: { containers: { args: string[] }[] } } } }) | undefined;
  if (!job) throw new Error('the rendered chart has no pre-delete Job');
  const args = job.spec.template.spec.containers[0]!.args.filter(
    (a) => a !== 'uninstall' && !a.startsWith('--namespace'),
  );
  say(`knockgate uninstall ${args.join(' ')}`);
  const r = await c.uninstall(args);
  if (r.code !== 0) throw new Error(`knockgate uninstall: exit ${r.code}: ${r.stderr.trim()}`);
  if (r.stdout.trim()) console.log(dim + r.stdout.trim().replace(/^/gm, '    ') + off);
  say(`grants left: ${(await c.grants()).length}`);
  for (const node of ['node-a', 'node-b'])
    say(`${node} firewall objects of knockgate: ${(await c.firewallObjects(node)).length}`);
}

main().then(
  () => cleanup(0),
  (err) => {
    console.error(`demo-kube failed: ${err.message}`);
    if (cluster) console.error(cluster.logs());
    return cleanup(1);
  },
);
