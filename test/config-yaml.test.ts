// knockgate YAML for `knockgate standalone`: several KnockPolicy documents, their key Secrets and one
// StandaloneConfig (or none: then the policies' grant ports are protected and the mode is Enforce);
// broken variants refused with FILE:LINE pointing at the offending field.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, detectFormat, loadConfig } from '../api/config/load.js';
import { parseKnockgateYaml } from '../api/config/knockgate-yaml.js';
import { validatePolicy } from '../api/validate.js';

const FIXTURES = join(import.meta.dirname, 'fixtures/config');
const tmp = mkdtempSync(join(tmpdir(), 'kg-config-yaml-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const K3 = 'TjB339RX/gUw8vVBO2NFCt4q+SPxtpSmVOmRYX+Fxys=';
const H3 = '4uwso2ywBux3KD1eYzMrSbI7m5sM1IYvwijDhZsrDf70wcl+ruPf/VGOR5qL32ErWMOxY4TiaOINYmyx87YmUA==';

let count = 0;
function write(text: string): string {
  const dir = join(tmp, String(++count));
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'knockgate.yaml');
  writeFileSync(path, text);
  return path;
}

function errorOf(text: string): ConfigError {
  const path = write(text);
  try {
    loadConfig(path);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.message.startsWith(`${path}:`)).toBe(true);
    expect(e.message).not.toContain('\n');
    expect(e.message).not.toContain(K3);
    expect(e.message).not.toContain(H3);
    return e;
  }
  throw new Error('expected a ConfigError');
}

const KNOCK = `apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata:
  name: ssh
spec:
  knock:
    sequence: ["7000/tcp", "8000/tcp"]
  grant:
    ports: ["22/tcp"]
    durationSeconds: 60
`;
const SPA = `apiVersion: knockgate.io/v1alpha1
kind: KnockPolicy
metadata:
  name: spa
spec:
  spa:
    keySecretRef: {name: spa-keys}
    port: 62201/udp
  grant:
    ports: ["22/tcp"]
    durationSeconds: 30
`;
const SECRET = `apiVersion: v1
kind: Secret
metadata:
  name: spa-keys
stringData:
  KEY_BASE64: ${K3}
  HMAC_KEY_BASE64: ${H3}
`;
const SETTINGS = `apiVersion: knockgate.io/v1alpha1
kind: StandaloneConfig
mode: Audit
`;

describe('knockgate YAML with a StandaloneConfig', () => {
  const file = join(FIXTURES, 'knockgate.yaml');
  const config = loadConfig(file);

  it('holds several policies, each valid', () => {
    expect(config.format).toBe('knockgate');
    expect(config.policies.map((p) => p.metadata.name)).toEqual(['ssh-knock', 'ssh-spa']);
    for (const p of config.policies) expect(validatePolicy(p).errors).toEqual([]);
  });

  it('takes every standalone setting from the StandaloneConfig', () => {
    const { hooks, ...rest } = config.settings;
    expect(rest).toEqual({
      protectedPorts: ['22/tcp', '2222/tcp', '5432/tcp'],
      alwaysAllow: ['10.255.0.0/16', 'fd00:ffff::/32'],
      neverGrant: ['10.0.0.0/24'],
      mode: 'Audit',
      backend: 'ipset',
      maxGrants: 5000,
      conntrackFlush: true,
      interfaces: ['veth-kg2'],
    });
    expect(hooks).toEqual({
      'ssh-knock': {
        start: '/usr/local/bin/notify open %IP%',
        stop: '/usr/local/bin/notify close %IP%',
        timeoutSeconds: 5,
        placeholders: 'knockd',
      },
    });
    expect(config.hooks).toBe(hooks);
  });

  it('resolves the SPA policy keys from its Secret', () => {
    expect(config.keys).toEqual({
      'ssh-spa': { key: Buffer.from(K3, 'base64'), hmacKey: Buffer.from(H3, 'base64') },
    });
    expect(config.warnings).toEqual([]);
  });

  it('warns at the StandaloneConfig about a grant port that protectedPorts does not hold', () => {
    const c = loadConfig(write(`${KNOCK}---\n${SETTINGS}protectedPorts: ["2222/tcp"]\n`));
    expect(c.settingsLine).toBe(12);
    expect(c.warnings).toEqual([
      expect.stringMatching(/:12: policy "ssh" grants 22\/tcp, which protectedPorts does not hold/),
    ]);
  });

  it('reads Secret data (base64 of the value) like stringData', () => {
    const data = SECRET.replace('stringData:', 'data:')
      .replace(K3, Buffer.from(K3).toString('base64'))
      .replace(H3, Buffer.from(H3).toString('base64'));
    const c = loadConfig(write(`${SPA}---\n${data}`));
    expect(c.secrets['spa-keys']).toEqual({ KEY_BASE64: K3, HMAC_KEY_BASE64: H3 });
  });
});

describe('knockgate YAML without a StandaloneConfig', () => {
  const config = loadConfig(join(FIXTURES, 'knockgate-policies-only.yaml'));

  it('protects the policies grant ports, once each, and enforces', () => {
    expect(config.settings.protectedPorts).toEqual(['5432/tcp', '443/tcp']);
    expect(config.settings).toMatchObject({
      mode: 'Enforce',
      backend: 'nftables',
      alwaysAllow: [],
      neverGrant: [],
      interfaces: [],
      hooks: {},
      conntrackFlush: false,
    });
    expect(config.settings.maxGrants).toBeUndefined();
  });

  it('is told apart from the other formats by its content, whatever the file name', () => {
    expect(detectFormat('/etc/knockd.conf', KNOCK)).toBe('knockgate');
    expect(detectFormat('x.yaml', '[ssh]\nsequence = 1\n')).toBe('knockd');
    expect(detectFormat('x.yaml', 'SOURCE: ANY;\n')).toBe('fwknop');
  });
});

describe('broken knockgate YAML: FILE:LINE at the field', () => {
  it('a YAML syntax error', () => {
    const e = errorOf('apiVersion: knockgate.io/v1alpha1\nkind: KnockPolicy\nspec: a: b\n');
    expect(e.line).toBe(3);
    expect(e.what).toBe('YAML: Nested mappings are not allowed in compact mappings');
    expect(errorOf('apiVersion: x\nkind: KnockPolicy\nspec:\n  a: 1\n b: 2\n').line).toBe(5);
  });

  it('a duplicate key', () => {
    const e = errorOf(KNOCK.replace('kind: KnockPolicy\n', 'kind: KnockPolicy\nkind: KnockPolicy\n'));
    expect(e.line).toBe(3);
    expect(e.what).toMatch(/YAML: Map keys must be unique/);
  });

  it('an unknown field, at its own line', () => {
    const e = errorOf(KNOCK.replace('    durationSeconds: 60', '    durationSeconds: 60\n    duration: 5'));
    expect(e.line).toBe(11);
    expect(e.what).toMatch(/^spec\.grant\.duration: unknown field/);
  });

  it('a bad port in a list, at the list entry', () => {
    const e = errorOf(KNOCK.replace('["7000/tcp", "8000/tcp"]', '\n      - 7000/tcp\n      - 8000/icmp'));
    expect(e.line).toBe(9);
    expect(e.what).toMatch(/^spec\.knock\.sequence\[1\]: "8000\/icmp" is not PORT\/PROTO/);
  });

  it('a missing sequence', () => {
    const e = errorOf(
      KNOCK.replace('    sequence: ["7000/tcp", "8000/tcp"]\n', '    sequenceTimeoutSeconds: 5\n'),
    );
    expect(e.line).toBe(6);
    expect(e.what).toMatch(/spec\.knock: must have exactly one of sequence or oneTimeSequences/);
  });

  it('a policy defined twice', () => {
    const e = errorOf(`${KNOCK}---\n${KNOCK}`);
    expect(e.line).toBe(15);
    expect(e.what).toMatch(/KnockPolicy "ssh" is already defined at line 1/);
  });

  it('two StandaloneConfig objects', () => {
    const e = errorOf(`${KNOCK}---\n${SETTINGS}---\n${SETTINGS}`);
    expect(e.line).toBe(16);
    expect(e.what).toMatch(/a second StandaloneConfig \(the first is at line 12\)/);
  });

  it('a bad CIDR in alwaysAllow', () => {
    const e = errorOf(`${KNOCK}---\n${SETTINGS}alwaysAllow:\n  - 10.0.0.0/8\n  - 10.0.0.300/32\n`);
    expect(e.line).toBe(17);
    expect(e.what).toMatch(/^alwaysAllow\[1\]: /);
  });

  it('an unknown mode and an unknown backend', () => {
    expect(errorOf(`${KNOCK}---\n${SETTINGS.replace('Audit', 'Permissive')}`).what).toMatch(
      /^mode: must be one of Enforce, Audit/,
    );
    expect(errorOf(`${KNOCK}---\n${SETTINGS}backend: pf\n`).what).toMatch(
      /^backend: must be one of nftables, ipset, iptables/,
    );
  });

  it('a hook for a policy that does not exist', () => {
    const e = errorOf(`${KNOCK}---\n${SETTINGS}hooks:\n  shh:\n    start: /bin/true %IP%\n`);
    expect(e.line).toBe(16);
    expect(e.what).toMatch(/^hooks\.shh: no KnockPolicy named "shh"/);
  });

  it('an SPA policy without its Secret', () => {
    const e = errorOf(SPA);
    expect(e.line).toBe(7);
    expect(e.what).toMatch(/no Secret "spa-keys" in this file/);
  });

  it('a Secret without an HMAC key for a policy that does not allow it', () => {
    const e = errorOf(`${SPA}---\n${SECRET.replace(/ {2}HMAC_KEY_BASE64: .*\n/, '')}`);
    expect(e.what).toMatch(/has no HMAC_KEY_BASE64 .* does not set spa.allowMissingHmac/);
  });

  it('a key too short, bad base64, or the placeholder, at the Secret field', () => {
    const short = errorOf(`${SPA}---\n${SECRET.replace(K3, 'c2hvcnQ=')}`);
    expect(short.line).toBe(18);
    expect(short.what).toMatch(/^stringData\.KEY_BASE64: KEY_BASE64 is too short/);
    expect(errorOf(`${SPA}---\n${SECRET.replace(H3, 'a$b')}`).what).toMatch(
      /HMAC_KEY_BASE64 is not valid base64/,
    );
    expect(errorOf(`${SPA}---\n${SECRET.replace(H3, '__CHANGEME__')}`).what).toMatch(
      /placeholder __CHANGEME__/,
    );
  });

  it('an unsupported kind and a file without policies', () => {
    expect(errorOf(`${KNOCK}---\napiVersion: v1\nkind: ConfigMap\n`).what).toMatch(
      /unsupported kind "ConfigMap"/,
    );
    expect(errorOf(SETTINGS).what).toMatch(/no KnockPolicy in this file/);
  });

  it('the parser function reports the same without touching the disk', () => {
    expect(() => parseKnockgateYaml('k.yaml', KNOCK.replace('60', '0'))).toThrow(
      'k.yaml:10: spec.grant.durationSeconds: must be from 1 to 604800, got 0',
    );
  });
});
