// One keep-alive connection pool per KubeConfig. client-node 1.x builds a new https.Agent for every
// request (KubeConfig.applySecurityAuthentication → createAgent), so every API request would open
// a new TCP connection and do a full TLS handshake: about 9 ms of a sniffer's 11 ms grant create
// (bench/README.md, kube-latency). All requests of one KubeConfig share one keep-alive agent,
// rebuilt only when the TLS options (CA, client certificate/key, ...) change; proxy agents are left
// alone. A request cut by its deadline (request.ts) destroys its socket, so a dead connection is
// never reused after a timeout; one reset by a restarted server fails that request, which its
// caller retries like any other.

import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

const TLS_KEYS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

function same(a: unknown, b: unknown): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  return a === b;
}

export function reuseConnections(kc: KubeConfig): KubeConfig {
  let cached: { options: https.AgentOptions; agent: https.Agent } | undefined;
  const shared = <A>(agent: A): A | https.Agent => {
    if (!(agent instanceof https.Agent) || agent.constructor !== https.Agent) return agent;
    const options = (agent as unknown as { options: https.AgentOptions }).options;
    if (cached && TLS_KEYS.every((k) => same(cached!.options[k], options[k]))) return cached.agent;
    cached = { options, agent: new https.Agent({ ...options, keepAlive: true }) };
    return cached.agent;
  };
  const authenticate = kc.applySecurityAuthentication.bind(kc);
  kc.applySecurityAuthentication = async (context) => {
    await authenticate(context);
    const agent = context.getAgent();
    if (agent) context.setAgent(shared(agent));
  };
  const fetchOptions = kc.applyToFetchOptions.bind(kc);
  kc.applyToFetchOptions = async (opts) => {
    const init = await fetchOptions(opts);
    if (init.agent) init.agent = shared(init.agent) as typeof init.agent;
    return init;
  };
  return kc;
}
