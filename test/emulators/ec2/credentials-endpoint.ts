// A container-credentials endpoint for tests, as ECS and EKS Pod Identity serve it: the SDK's
// default chain reads AWS_CONTAINER_CREDENTIALS_FULL_URI (loopback http is allowed), sends the
// token from AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE) as the Authorization header, and expects
//   {"AccessKeyId":"ASIA...","SecretAccessKey":"...","Token":"...","Expiration":"2026-...Z"}
// Each answer comes from `issue()` (e.g. Ec2Emulator.issueTemporaryCredential), so a test can check
// that the credentials the SDK signed with are the ones this endpoint handed out.

import { createServer, type Server } from 'node:http';
import type { Credential } from './sigv4.js';

export interface ContainerCredentialsEndpoint {
  /** The value for AWS_CONTAINER_CREDENTIALS_FULL_URI. */
  url: string;
  /** How many times credentials were handed out. */
  served(): number;
  /** Requests refused (missing or wrong Authorization). */
  refused(): number;
  stop(): Promise<void>;
}

export async function startContainerCredentialsEndpoint(opts: {
  issue: () => Required<Credential>;
  /** The Authorization header the SDK must send (AWS_CONTAINER_AUTHORIZATION_TOKEN). */
  authToken?: string;
  path?: string;
}): Promise<ContainerCredentialsEndpoint> {
  const path = opts.path ?? '/v1/credentials';
  let served = 0;
  let refused = 0;
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== path) {
      res.writeHead(404).end();
      return;
    }
    if (opts.authToken !== undefined && req.headers.authorization !== opts.authToken) {
      refused++;
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ Code: 'AccessDenied', Message: 'bad authorization token' }));
      return;
    }
    const c = opts.issue();
    served++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        AccessKeyId: c.accessKeyId,
        SecretAccessKey: c.secretAccessKey,
        Token: c.sessionToken,
        Expiration: new Date(c.expiresAt).toISOString(),
      }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    served: () => served,
    refused: () => refused,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
