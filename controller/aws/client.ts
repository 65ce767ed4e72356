// The EC2 client knockgate uses, one per region: the SDK's default credential chain (environment,
// shared config, web identity for IRSA, container endpoint for EKS Pod Identity, IMDS), adaptive
// retry (client-side rate limiting that backs off on RequestLimitExceeded and 5xx), and an optional
// endpoint (a VPC interface endpoint, or the test emulator).

import { EC2Client, type EC2ClientConfig } from '@aws-sdk/client-ec2';

/** Attempts per call, first one included, before an error reaches the caller (the SDK default is 3). */
export const DEFAULT_MAX_ATTEMPTS = 5;

const REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/;

export interface Ec2ClientConfig {
  /** e.g. https://vpce-0123-abcd.ec2.eu-west-1.vpce.amazonaws.com, or the emulator's URL. */
  endpoint?: string;
  maxAttempts?: number;
  /** Instead of the default chain (tests only). */
  credentials?: EC2ClientConfig['credentials'];
}

/** Null when `region` looks like an AWS region name, else the one-line problem. */
export function regionProblem(region: string): string | null {
  return REGION.test(region) ? null : `region "${region}": not an AWS region name (like eu-west-1)`;
}

/** Null when `url` is a usable --aws-endpoint, else the one-line problem. */
export function endpointProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `--aws-endpoint "${url}": not a URL`;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    return `--aws-endpoint "${url}": want http:// or https://`;
  if (u.username || u.password) return `--aws-endpoint: no credentials in the URL`;
  return null;
}

/** One EC2 client per region, created on first use, all with the same configuration. */
export class Ec2Clients {
  private readonly clients = new Map<string, EC2Client>();

  constructor(private readonly config: Ec2ClientConfig = {}) {
    // The SDK warns on stderr, once per process, that versions after January 2027 will need Node 22.
    // The version package-lock.json pins runs on Node 20 (package.json engines); the warning would be
    // the first line of every `knockgate sweep`. Still shown when the user asks for it.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    if (config.endpoint !== undefined) {
      const problem = endpointProblem(config.endpoint);
      if (problem) throw new Error(problem);
    }
  }

  get(region: string): EC2Client {
    const problem = regionProblem(region);
    if (problem) throw new Error(problem);
    let client = this.clients.get(region);
    if (!client) {
      client = new EC2Client({
        region,
        retryMode: 'adaptive',
        maxAttempts: this.config.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
        ...(this.config.endpoint !== undefined ? { endpoint: this.config.endpoint } : {}),
        ...(this.config.credentials !== undefined ? { credentials: this.config.credentials } : {}),
      });
      this.clients.set(region, client);
    }
    return client;
  }

  /** Close every client's connections. */
  destroy(): void {
    for (const c of this.clients.values()) c.destroy();
    this.clients.clear();
  }
}

/**
 * One line for an error from an EC2 call: the EC2 error code and message ("UnauthorizedOperation:
 * You are not authorized..."), or what failed on the way (no credentials, connection refused).
 * Never the credentials themselves: the SDK's errors do not carry them.
 */
export function awsErrorLine(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = err.name && err.name !== 'Error' ? err.name : ((err as { code?: string }).code ?? '');
  const message = err.message.split('\n')[0]!.trim();
  if (!code || message.startsWith(code)) return message || code || 'unknown error';
  return message ? `${code}: ${message}` : code;
}
