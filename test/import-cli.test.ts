// `knockgate import FILE` through the built CLI (dist/, made by `npx tsc -p tsconfig.json`, which
// `make test` runs first): the three reference examples become KnockPolicy YAML that passes both
// api/validate.ts and the CRD's schema, plus Secret YAML holding the keys (and keys nowhere else);
// broken files give one `knockgate: FILE:LINE: what is wrong` line and exit status 2.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../api/config/load.js';
import { validatePolicy } from '../api/validate.js';
import { crdValidator } from './fixtures/config/crd-schema.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist/cmd/knockgate.js');
const FIXTURES = join(import.meta.dirname, 'fixtures/config');
const tmp = mkdtempSync(join(tmpdir(), 'kg-import-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const crd = crdValidator('knockgate.io_knockpolicies.yaml');

beforeAll(() => {
  if (!existsSync(CLI))
    throw new Error(`${CLI} is missing: run "npx tsc -p tsconfig.json" first (make test does)`);
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}
function knockgate(...args: string[]): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

type Doc = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
};
function docs(yaml: string): Doc[] {
  return parseAllDocuments(yaml).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJS() as Doc;
  });
}

/** Every KnockPolicy valid for validate.ts and the CRD; every Secret a v1 Secret in the namespace. */
function checkOutput(out: Doc[], namespace = 'knockgate'): void {
  for (const d of out) {
    if (d.kind === 'KnockPolicy') {
      expect(validatePolicy(d).errors).toEqual([]);
      expect(crd(d)).toEqual([]);
    } else {
      expect(d).toMatchObject({ apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { namespace } });
    }
  }
}

let n = 0;
function write(text: string, name: string): string {
  const dir = join(tmp, String(++n));
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('the three reference examples', () => {
  it('knockd.conf: two knock policies, no Secret, a warning per thing a cluster cannot take', () => {
    const file = join(FIXTURES, 'knockd.conf.example');
    const r = knockgate('import', file);
    expect(r.status).toBe(0);
    const out = docs(r.stdout);
    checkOutput(out);
    expect(out.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual(['KnockPolicy/ssh', 'KnockPolicy/osiris']);
    expect(out[0]!.spec).toEqual({
      knock: {
        sequence: ['26515/tcp', '8924/tcp', '58666/tcp', '32342/tcp', '5427/tcp'],
        sequenceTimeoutSeconds: 15,
      },
      grant: { ports: ['22222/tcp'], durationSeconds: 60 },
    });
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines.every((l) => l.startsWith(`warning: ${file}`))).toBe(true);
    expect(r.stderr).toContain(`warning: ${file}:8: [Osiris]: knockgate cannot tell which port`);
    expect(r.stderr).toContain('commands of ssh, osiris are not imported: a cluster runs no commands');
  });

  it('the article access.conf: two SPA policies with allowMissingHmac: true, said on stderr; keys only in the Secrets', () => {
    const file = join(FIXTURES, 'access.conf.legacy-example');
    const r = knockgate('import', file);
    expect(r.status).toBe(0);
    const out = docs(r.stdout);
    checkOutput(out);
    expect(out.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([
      'KnockPolicy/access-conf-legacy-example-1',
      'Secret/access-conf-legacy-example-1',
      'KnockPolicy/access-conf-legacy-example-2',
      'Secret/access-conf-legacy-example-2',
    ]);
    const spa = (d: Doc) => (d.spec as { spa: Record<string, unknown> }).spa;
    expect(spa(out[0]!)).toMatchObject({
      allowMissingHmac: true,
      keySecretRef: { name: 'access-conf-legacy-example-1' },
    });
    expect(spa(out[2]!).allowMissingHmac).toBe(true);
    expect(out[1]!.stringData).toEqual({ KEY: 'secret' });
    expect(out[3]!.stringData).toEqual({ KEY: 'key' });
    expect(r.stderr).toContain(`warning: ${file}:1: stanza has NO HMAC KEY`);
    expect(r.stderr).toContain(`warning: ${file}:5: stanza has NO HMAC KEY`);
    expect(r.stderr).toContain('spa.allowMissingHmac: true');
    // The passphrases are in the Secrets on stdout and nowhere on stderr.
    expect(r.stderr).not.toMatch(/\bsecret\b|[:= ]key(\s|;|$)/m);
  });

  it('the fwknop-server 2.6 access.conf: a policy and a Secret to fill in, with a warning', () => {
    const file = join(FIXTURES, 'access.conf.debian-default');
    const r = knockgate('import', file);
    expect(r.status).toBe(0);
    const out = docs(r.stdout);
    checkOutput(out);
    expect(out.map((d) => d.kind)).toEqual(['KnockPolicy', 'Secret']);
    expect((out[0]!.spec as { spa: object }).spa).not.toHaveProperty('allowMissingHmac');
    expect(out[1]!.stringData).toEqual({});
    expect(r.stderr).toContain(
      `warning: ${file}:1: KEY_BASE64 and HMAC_KEY_BASE64 still hold the placeholder __CHANGEME__`,
    );
  });

  it('keys from fwknop --key-gen go into the Secret and never to stderr', () => {
    const file = join(FIXTURES, 'access.conf.debian-keyed');
    const text = readFileSync(file, 'utf8');
    const key = /KEY_BASE64\s+(\S+)/.exec(text)![1]!;
    const hmac = /HMAC_KEY_BASE64\s+(\S+)/.exec(text)![1]!;
    const r = knockgate('import', file, '--namespace', 'edge');
    expect(r.status).toBe(0);
    const out = docs(r.stdout);
    checkOutput(out, 'edge');
    expect(out[1]!.stringData).toEqual({ KEY_BASE64: key, HMAC_KEY_BASE64: hmac });
    expect(r.stderr).not.toContain(key);
    expect(r.stderr).not.toContain(hmac);
  });

  it('the output loads back as knockgate YAML to the same policies', () => {
    for (const name of ['knockd.conf.example', 'access.conf.legacy-example', 'access.conf.fwknop26']) {
      const file = join(FIXTURES, name);
      const r = knockgate('import', file);
      expect(r.status).toBe(0);
      const back = loadConfig(write(r.stdout, 'imported.yaml'));
      expect(back.policies).toEqual(loadConfig(file).policies);
    }
  });

  it('knockgate YAML: policies and Secrets kept, the StandaloneConfig and hooks said to stay behind', () => {
    const file = join(FIXTURES, 'knockgate.yaml');
    const r = knockgate('import', file);
    expect(r.status).toBe(0);
    const out = docs(r.stdout);
    checkOutput(out);
    expect(out.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([
      'KnockPolicy/ssh-knock',
      'KnockPolicy/ssh-spa',
      'Secret/ssh-spa-keys',
    ]);
    expect(r.stderr).toContain(`warning: ${file}:36: the StandaloneConfig is not imported`);
    expect(r.stderr).toContain('commands of ssh-knock are not imported');
  });

  it('-o writes the YAML to a 0600 file, and --fwknopd-conf sets port and interface', () => {
    const output = join(tmp, 'out.yaml');
    const r = knockgate(
      'import',
      join(FIXTURES, 'access.conf.fwknop26'),
      '--fwknopd-conf',
      join(FIXTURES, 'fwknopd.conf.example'),
      '-o',
      output,
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(statSync(output).mode & 0o777).toBe(0o600);
    const out = docs(readFileSync(output, 'utf8'));
    checkOutput(out);
    expect(out[0]!.spec).toMatchObject({
      interface: 'veth-kg1',
      spa: { port: '40001/udp', maxPacketAgeSeconds: 60 },
    });
  });
});

describe('broken files through the CLI: one line, FILE:LINE, exit 2, nothing on stdout', () => {
  const K = 'YuQPZQndm1m9Jw8ZmHLcfcCBEQCSArpjPTzYsPzp2Os=';
  const cases: [string, string, string, number, RegExp][] = [
    [
      'knockd: unknown keyword',
      'knockd.conf',
      '[ssh]\nsequence = 1,2\nsquence = 3\n',
      3,
      /unknown directive "squence"/,
    ],
    ['knockd: bad port', 'knockd.conf', '[ssh]\nsequence = 1,65536\n', 2, /port must be 1-65535/],
    ['knockd: bad protocol', 'knockd.conf', '[ssh]\nsequence = 1:sctp\n', 2, /is not PORT\[:PROTO\]/],
    ['knockd: missing sequence', 'knockd.conf', '[ssh]\nseq_timeout = 5\n', 1, /has no sequence/],
    [
      'knockd: duplicate section',
      'knockd.conf',
      '[a]\nsequence = 1\n[a]\nsequence = 2\n',
      3,
      /already defined at line 1/,
    ],
    ['knockd: unterminated stanza', 'knockd.conf', '[a\nsequence = 1\n', 1, /unterminated section header/],
    ['access.conf: bad CIDR', 'access.conf', 'SOURCE: 10.0.0.0/40;\n', 1, /is not an address, a CIDR or ANY/],
    [
      'access.conf: key too short',
      'access.conf',
      'SOURCE ANY\nKEY_BASE64 AAAA\n',
      2,
      /KEY_BASE64 is too short/,
    ],
    [
      'access.conf: bad base64',
      'access.conf',
      'SOURCE ANY\nKEY_BASE64 ####\n',
      2,
      /KEY_BASE64 is not valid base64/,
    ],
    [
      'access.conf: unknown keyword',
      'access.conf',
      `SOURCE ANY\nKEY_BASE64 ${K}\nOPEN_PROTS tcp/22\n`,
      3,
      /unknown variable OPEN_PROTS/,
    ],
    [
      'access.conf: bad protocol',
      'access.conf',
      `SOURCE ANY\nKEY_BASE64 ${K}\nOPEN_PORTS sctp/22\n`,
      3,
      /is not PROTO\/PORT/,
    ],
    [
      'access.conf: duplicate variable',
      'access.conf',
      `SOURCE ANY\nKEY_BASE64 ${K}\nKEY_BASE64 ${K}\n`,
      3,
      /already set for this stanza/,
    ],
    [
      'YAML: bad port',
      'kg.yaml',
      'apiVersion: knockgate.io/v1alpha1\nkind: KnockPolicy\nmetadata: {name: a}\nspec:\n  knock: {sequence: ["1/tcp"]}\n  grant:\n    ports: ["0/tcp"]\n    durationSeconds: 5\n',
      7,
      /spec\.grant\.ports\[0\]/,
    ],
  ];
  for (const [name, file, text, line, re] of cases) {
    it(name, () => {
      const path = write(text, file);
      const r = knockgate('import', path);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(`^knockgate: ${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:${line}: `),
      );
      expect(lines[0]).toMatch(re);
      expect(lines[0]).not.toContain(K);
    });
  }

  it('a missing file, a bad namespace, an fwknopd.conf with a knockd.conf', () => {
    const missing = join(tmp, 'missing.conf');
    let r = knockgate('import', missing);
    expect([r.status, r.stderr]).toEqual([2, `knockgate: ${missing}: cannot read: ENOENT\n`]);
    r = knockgate('import', join(FIXTURES, 'knockd.conf.example'), '--namespace', 'Not_A_Namespace');
    expect([r.status, r.stderr]).toEqual([
      2,
      'knockgate: --namespace "Not_A_Namespace" is not a namespace name\n',
    ]);
    r = knockgate(
      'import',
      join(FIXTURES, 'knockd.conf.example'),
      '--fwknopd-conf',
      join(FIXTURES, 'fwknopd.conf.example'),
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^knockgate: .*fwknopd\.conf\.example: an fwknopd.conf only goes with an fwknop access.conf/,
    );
  });
});
