// make demo-kube: knockgate on a two-node Kubernetes cluster made of processes in network namespaces
// (test/helpers/cluster-harness.ts, run with vite-node): the Kubernetes API emulator and `knockgate
// controller` in an api namespace, `knockgate sniffer` + `knockgate agent` (nftables) on node-a and
// node-b, the real kubectl applying the CRDs, the key Secret and the KnockPolicies, the real `knock`
// and `fwknop` clients opening a node, and `kubectl get accessgrants -w` printed as it happens.
// Everything is removed at the end (Cluster.destroy: processes by PID, namespaces), also on Ctrl-C.
// Needs root; `make demo-kube` has built knockgate.

import { createInterface } from 'node:readline';
import { Cluster, RELEASE_NS } from '../test/helpers/cluster-harness.js';
import { keygen, ROOT } from '../test/helpers/standalone-harness.js';

const PORT = 2222;
const SPA_PORT = 62201;
const GRANT_SECONDS = 15;
const tty = process.stdout.isTTY;
const bold = tty ? '\x1b[1m' : '';
const dim = tty ? '\x1b[2m' : '';
const off = tty ? '\x1b[0m' : '';
const step = (text) => console.log(`\n${bold}==> ${text}${off}`);
const say = (text) => console.log(`    ${text}`);
const b64 = (text) => Buffer.from(text).toString('base64');

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
  say(`API emulator on ${c.addr('api')}; every component has its own token and least-privilege RBAC`);

  step('The operator applies the CRDs, the nodes, the SPA key Secret and two KnockPolicies (real kubectl)');
  console.log(dim + (await c.kubectlOk(['apply', '-f', `${ROOT}crds/`])).trim().replace(/^/gm, '    ') + off);
  await c.apply(
    'nodes',
    ['node-a', 'node-b']
      .map((n) => `apiVersion: v1\nkind: Node\nmetadata: {name: ${n}, labels: {role: edge}}\n`)
      .join('---\n'),
  );
  await c.apply(
    'secret',
    `apiVersion: v1\nkind: Secret\nmetadata: {name: ssh-spa, namespace: ${RELEASE_NS}}\n` +
      `data: {KEY_BASE64: "${b64(keys.key)}", HMAC_KEY_BASE64: "${b64(keys.hmac)}"}\n`,
  );
  await c.apply(
    'policies',
    `apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: ssh-knock}
spec:
  knock: {sequence: ["7001/tcp", "7002/tcp", "7003/tcp"], sequenceTimeoutSeconds: 10, tcpFlags: [syn]}
  grant: {ports: ["${PORT}/tcp"], durationSeconds: ${GRANT_SECONDS}, targets: {node: {mode: Local}}}
  nodeSelector: {role: edge}
---
apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata: {name: ssh-spa}
spec:
  spa: {keySecretRef: {name: ssh-spa}, port: "${SPA_PORT}/udp", maxPacketAgeSeconds: 120}
  grant: {ports: ["${PORT}/tcp"], durationSeconds: ${GRANT_SECONDS}}
  nodeSelector: {role: edge}
`,
  );
  say((await c.kubectlOk(['get', 'knockpolicies'])).trim().replace(/\n/g, '\n    '));

  const agentConfig = (node) => `apiVersion: knockgate.io/v1alpha1
kind: AgentConfig
nodeName: ${node}
protectedPorts: ["${PORT}/tcp"]
knockPorts: ["7001/tcp", "7002/tcp", "7003/tcp", "${SPA_PORT}/udp"]
backend: nftables
`;
  await Promise.all([c.listen('node-a', [PORT]), c.listen('node-b', [PORT])]);
  await Promise.all([
    c.startNode('node-a', agentConfig('node-a')),
    c.startNode('node-b', agentConfig('node-b')),
    c.startController(
      `apiVersion: knockgate.io/v1alpha1\nkind: ControllerConfig\nretention: {seconds: 300, maxGrants: 100}\neventsNamespace: ${RELEASE_NS}\n` +
        `leaderElection: {namespace: ${RELEASE_NS}, leaseName: knockgate-controller}\n`,
    ),
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
}

main().then(
  () => cleanup(0),
  (err) => {
    console.error(`demo-kube failed: ${err.message}`);
    if (cluster) console.error(cluster.logs());
    return cleanup(1);
  },
);
