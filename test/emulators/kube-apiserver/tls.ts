// A throw-away TLS identity for the emulator. kubectl (client-go's clientcmd) sends a kubeconfig's
// bearer token only over TLS, so the emulator serves HTTPS on 127.0.0.1 with a self-signed
// certificate made by openssl at start-up; the kubeconfig trusts it via certificate-authority-data.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TlsIdentity {
  key: string;
  cert: string;
}

const cached = new Map<string, TlsIdentity>();

/**
 * One identity per process and listen address (generation takes a few tens of milliseconds); the
 * certificate names 127.0.0.1 and, when the emulator listens elsewhere (a test network
 * namespace's address), that address too.
 */
export function loopbackIdentity(host = '127.0.0.1'): TlsIdentity {
  const known = cached.get(host);
  if (known) return known;
  const sans = [...new Set(['127.0.0.1', host])].map((ip) => `IP:${ip}`).join(',');
  const dir = mkdtempSync(join(tmpdir(), 'kube-emulator-tls-'));
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '7',
        '-subj',
        '/CN=knockgate-kube-emulator',
        '-addext',
        `subjectAltName=${sans}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 },
    );
    const identity = { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
    cached.set(host, identity);
    return identity;
  } catch (err) {
    throw new Error(
      `cannot make the emulator's TLS certificate with openssl: ${(err as Error).message.split('\n')[0]}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
