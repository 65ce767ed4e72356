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

let cached: TlsIdentity | undefined;

/** One identity per process (generation takes a few tens of milliseconds). */
export function loopbackIdentity(): TlsIdentity {
  if (cached) return cached;
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
        'subjectAltName=IP:127.0.0.1',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 },
    );
    cached = { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
    return cached;
  } catch (err) {
    throw new Error(
      `cannot make the emulator's TLS certificate with openssl: ${(err as Error).message.split('\n')[0]}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
