// fwknop access.conf (old `KEY: value;` style and the 2.6 layout) and fwknopd.conf → SPA policies,
// resolved keys, hooks and settings for `knockgate standalone`; broken variants refused with
// FILE:LINE: what is wrong, and no key material in any message.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type LoadedConfig } from '../api/config/load.js';
import { parseAccessConf } from '../api/config/fwknop-access.js';
import { parseFwknopdConf } from '../api/config/fwknopd-conf.js';
import { validatePolicy } from '../api/validate.js';

const FIXTURES = join(import.meta.dirname, 'fixtures/config');
const tmp = mkdtempSync(join(tmpdir(), 'kg-config-fwknop-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const K1 = 'YuQPZQndm1m9Jw8ZmHLcfcCBEQCSArpjPTzYsPzp2Os=';
const H1 = '79VBsIbl/mwvjQVtONZmgo4BdaE9tfgr8/1A+38YmG8xH8tbsPODmVYajttxYec5ACD24DUk97dDzvWvI0eHLA==';
const K2 = 'ihznDHumsGHDdV1hF4ESbKUyQGRJe2CZRyadEtMqWo4=';
const H2 = 'txh0jNA1/2QYe9R9dazazaZnI+OvSR0v5GPQF2D3FiUp6ykTU2bkBPd9SGcOZjzuQGWkTKa8WDIVcqpgFVPigQ==';
/** Every key and passphrase used below: none may appear in an error or a warning. */
const SECRETS = [K1, H1, K2, H2, 'hunter2hunter2', 'secret', 'sekrit-passphrase'];

let count = 0;
function write(text: string, name = 'access.conf'): string {
  const dir = join(tmp, String(++count));
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function noKeysIn(lines: string[]): void {
  for (const l of lines) for (const s of SECRETS) expect(l).not.toContain(s);
}

function errorOf(text: string, fwknopd?: string): ConfigError {
  const path = write(text);
  const fw = fwknopd === undefined ? undefined : write(fwknopd, 'fwknopd.conf');
  try {
    loadConfig(path, fw === undefined ? {} : { fwknopdConf: fw });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.message).not.toContain('\n');
    noKeysIn([e.message]);
    return e;
  }
  throw new Error('expected a ConfigError');
}

describe('the article access.conf (old KEY: value; style)', () => {
  const file = join(FIXTURES, 'access.conf.legacy-example');
  const config = loadConfig(file);
  const [first, second] = config.policies;

  it('becomes one valid SPA policy per SOURCE stanza, each with its own Secret', () => {
    expect(config.format).toBe('fwknop');
    expect(config.policies.map((p) => p.metadata.name)).toEqual([
      'access-conf-legacy-example-1',
      'access-conf-legacy-example-2',
    ]);
    for (const p of config.policies) expect(validatePolicy(p).errors).toEqual([]);
    expect(config.secrets).toEqual({
      'access-conf-legacy-example-1': { KEY: 'secret' },
      'access-conf-legacy-example-2': { KEY: 'key' },
    });
  });

  it('maps SOURCE ANY, OPEN_PORTS and FW_ACCESS_TIMEOUT', () => {
    expect(first!.spec.spa).toMatchObject({
      allowedSources: ['0.0.0.0/0', '::/0'],
      port: '62201/udp',
      maxPacketAgeSeconds: 120,
      requireSourceAddress: false,
    });
    expect(first!.spec.grant).toEqual({ ports: ['22/tcp'], durationSeconds: 30, maxDurationSeconds: 300 });
  });

  it('has no HMAC key: allowMissingHmac is set explicitly and a warning says so, per stanza', () => {
    expect(first!.spec.spa!.allowMissingHmac).toBe(true);
    expect(second!.spec.spa!.allowMissingHmac).toBe(true);
    const noHmac = config.warnings.filter((w) => w.includes('NO HMAC KEY'));
    expect(noHmac.map((w) => w.split(': ')[0])).toEqual([`${file}:1`, `${file}:5`]);
    expect(noHmac[0]).toContain('spa.allowMissingHmac: true');
  });

  it('resolves the passphrase keys to bytes, in memory, without HMAC keys', () => {
    expect(config.keys['access-conf-legacy-example-1']).toEqual({ key: Buffer.from('secret') });
    expect(config.keys['access-conf-legacy-example-2']).toEqual({ key: Buffer.from('key') });
    expect(config.warnings.filter((w) => w.includes('passphrase'))).toHaveLength(2);
  });

  it('turns ENABLE_EXTERNAL_CMDS Y + EXTERNAL_CMD_OPEN/CLOSE into $SRC hooks, instead of a firewall rule', () => {
    expect(second!.spec.grant.targets).toEqual({ node: { mode: 'None' } });
    expect(config.hooks).toEqual({
      'access-conf-legacy-example-2': {
        placeholders: 'fwknop',
        start: '/conf/ssh $SRC',
        stop: '/conf/ssh_del',
        timeoutSeconds: 10,
      },
    });
  });

  it('assumes 22/tcp for the stanza without OPEN_PORTS, unprotected, and says so', () => {
    expect(second!.spec.grant.ports).toEqual(['22/tcp']);
    expect(config.warnings.some((w) => w.startsWith(`${file}:5: stanza has no OPEN_PORTS`))).toBe(true);
    // 22/tcp is protected all the same: the first stanza lists it in OPEN_PORTS.
    expect(config.settings.protectedPorts).toEqual(['22/tcp']);
  });

  it('never puts a key in a warning', () => noKeysIn(config.warnings));
});

describe('the fwknop-server 2.6 access.conf', () => {
  it('is refused for the daemon while its keys are the __CHANGEME__ placeholders', () => {
    const file = join(FIXTURES, 'access.conf.debian-default');
    expect(() => loadConfig(file)).toThrow(`${file}:2: KEY_BASE64 is still the placeholder __CHANGEME__`);
  });

  it('imports with the placeholders left out of the Secret, a warning, and no allowMissingHmac', () => {
    const file = join(FIXTURES, 'access.conf.debian-default');
    const config = loadConfig(file, { placeholderKeys: 'omit' });
    const p = config.policies[0]!;
    expect(validatePolicy(p).errors).toEqual([]);
    expect(p.spec.spa!.allowMissingHmac).toBeUndefined();
    expect(config.secrets[p.metadata.name]).toEqual({});
    expect(config.keys).toEqual({});
    expect(config.warnings[0]).toMatch(
      new RegExp(`^${file}:1: KEY_BASE64 and HMAC_KEY_BASE64 still hold the placeholder __CHANGEME__`),
    );
  });

  it('with keys from fwknop --key-gen: both keys resolved, HMAC required', () => {
    const config = loadConfig(join(FIXTURES, 'access.conf.debian-keyed'));
    const keys = config.keys['access-conf-debian-keyed-1']!;
    expect(keys.key).toHaveLength(32);
    expect(keys.hmacKey).toHaveLength(64);
    expect(config.policies[0]!.spec.spa!.allowMissingHmac).toBeUndefined();
  });
});

describe('the 2.6 layout with every variable the daemon needs, and fwknopd.conf', () => {
  const file = join(FIXTURES, 'access.conf.fwknop26');
  const fwknopdConf = join(FIXTURES, 'fwknopd.conf.example');
  const config: LoadedConfig = loadConfig(file, { fwknopdConf });
  const [one, two] = config.policies;

  it('gives interface and SPA port from fwknopd.conf (PCAP_INTF, PCAP_FILTER, MAX_SPA_PACKET_AGE)', () => {
    expect(config.settings.interfaces).toEqual(['veth-kg1']);
    for (const p of config.policies) {
      expect(p.spec.interface).toBe('veth-kg1');
      expect(p.spec.spa!.port).toBe('40001/udp');
      expect(p.spec.spa!.maxPacketAgeSeconds).toBe(60);
    }
  });

  it('maps SOURCE lists and masks, OPEN_PORTS, REQUIRE_SOURCE_ADDRESS, REQUIRE_USERNAME, timeouts, digest', () => {
    expect(one!.spec.spa).toEqual({
      keySecretRef: { name: 'access-conf-fwknop26-1' },
      port: '40001/udp',
      maxPacketAgeSeconds: 60,
      allowedSources: ['10.1.0.0/16', '192.168.7.0/24'],
      requireSourceAddress: true,
      requireUsername: 'alice',
      hmacDigestType: 'sha512',
    });
    expect(one!.spec.grant).toEqual({
      ports: ['22/tcp', '1194/udp'],
      durationSeconds: 45,
      maxDurationSeconds: 600,
    });
  });

  it('keeps each stanza its own keys, resolved to bytes', () => {
    expect(config.keys['access-conf-fwknop26-1']).toEqual({
      key: Buffer.from(K1, 'base64'),
      hmacKey: Buffer.from(H1, 'base64'),
    });
    expect(config.keys['access-conf-fwknop26-2']).toEqual({
      key: Buffer.from(K2, 'base64'),
      hmacKey: Buffer.from(H2, 'base64'),
    });
    expect(config.secrets['access-conf-fwknop26-2']).toEqual({ KEY_BASE64: K2, HMAC_KEY_BASE64: H2 });
  });

  it('turns CMD_CYCLE_OPEN/CLOSE into $SRC/$PORT/$PROTO hooks and CMD_CYCLE_TIMER into the duration', () => {
    expect(config.hooks['access-conf-fwknop26-2']).toEqual({
      placeholders: 'fwknop',
      start: '/usr/local/bin/rdp-open $SRC $PORT $PROTO',
      stop: '/usr/local/bin/rdp-close $SRC $PORT $PROTO',
      timeoutSeconds: 10,
    });
    expect(two!.spec.grant.durationSeconds).toBe(90);
    expect(config.hooks['access-conf-fwknop26-1']).toBeUndefined();
  });

  it('protects every OPEN_PORTS port, Enforce, nftables by default', () => {
    expect(config.settings).toMatchObject({
      protectedPorts: ['22/tcp', '1194/udp', '3389/tcp'],
      mode: 'Enforce',
      backend: 'nftables',
    });
  });

  it('a stanza with commands and OPEN_PORTS opens its ports and runs its commands', () => {
    expect(two!.spec.grant.targets).toBeUndefined();
    expect(one!.spec.grant.targets).toBeUndefined();
    expect(config.warnings).toEqual([]);
  });

  it('reads fwknopd.conf UDP server mode as the SPA port', () => {
    const s = parseFwknopdConf('f.conf', 'ENABLE_UDP_SERVER Y\nUDPSERV_PORT 12345\nPCAP_FILTER udp port 1\n');
    expect(s.spaPort).toBe('12345/udp');
  });

  it('reads %include and %include_keys', () => {
    const keys = write(`KEY_BASE64 ${K1}\nHMAC_KEY_BASE64 ${H1}\n`, 'keys.conf');
    const more = write(
      'SOURCE 10.9.0.0/16\nOPEN_PORTS tcp/2200\nKEY sekrit-passphrase\nHMAC_KEY hunter2hunter2\n',
      'more.conf',
    );
    const main = write(`SOURCE ANY\nOPEN_PORTS tcp/22\n%include_keys ${keys}\n%include ${more}\n`);
    const c = loadConfig(main);
    expect(c.policies.map((p) => p.spec.grant.ports)).toEqual([['22/tcp'], ['2200/tcp']]);
    expect(c.keys['access-conf-1']!.hmacKey).toEqual(Buffer.from(H1, 'base64'));
    expect(c.keys['access-conf-2']).toEqual({
      key: Buffer.from('sekrit-passphrase'),
      hmacKey: Buffer.from('hunter2hunter2'),
    });
  });
});

describe('broken access.conf variants: FILE:LINE: what is wrong', () => {
  const head = `SOURCE ANY\nOPEN_PORTS tcp/22\nKEY_BASE64 ${K1}\nHMAC_KEY_BASE64 ${H1}\n`;
  const cases: [string, string, number | undefined, RegExp][] = [
    ['unknown variable', head + 'OPEN_PORT tcp/23\n', 5, /unknown variable OPEN_PORT/],
    ['bad port', 'SOURCE ANY\nOPEN_PORTS tcp/99999\n', 2, /"tcp\/99999": port must be 1-65535/],
    ['bad protocol', 'SOURCE ANY\nOPEN_PORTS icmp/22\n', 2, /"icmp\/22" is not PROTO\/PORT/],
    ['bad CIDR', 'SOURCE 10.0.0.0/33\n', 1, /SOURCE "10.0.0.0\/33" is not an address, a CIDR or ANY/],
    ['bad netmask', 'SOURCE 10.0.0.0/255.0.255.0\n', 1, /not a contiguous netmask/],
    ['not an address', 'SOURCE bastion.example\n', 1, /is not an address/],
    ['bad base64', `SOURCE ANY\nKEY_BASE64 not*base64\n`, 2, /KEY_BASE64 is not valid base64/],
    [
      'key too short',
      `SOURCE ANY\nKEY_BASE64 c2hvcnQ=\n`,
      2,
      /KEY_BASE64 is too short: 5 bytes, at least 16/,
    ],
    [
      'HMAC key too short',
      `SOURCE ANY\nKEY_BASE64 ${K1}\nHMAC_KEY_BASE64 c2hvcnRrZXk=\n`,
      3,
      /HMAC_KEY_BASE64 is too short/,
    ],
    ['key too long', `SOURCE ANY\nKEY ${'x'.repeat(33)}\n`, 2, /KEY is too long: 33 bytes, at most 32/],
    [
      'both KEY and KEY_BASE64',
      `SOURCE ANY\nKEY secret\nKEY_BASE64 ${K1}\n`,
      3,
      /both KEY and KEY_BASE64 are set/,
    ],
    ['same key twice', `SOURCE ANY\nKEY hunter2hunter2\nHMAC_KEY hunter2hunter2\n`, 1, /must differ/],
    ['no key at all', 'SOURCE ANY\nOPEN_PORTS tcp/22\n', 1, /no KEY or KEY_BASE64/],
    [
      'duplicate variable in a stanza',
      head + 'OPEN_PORTS tcp/23\n',
      5,
      /OPEN_PORTS is already set for this stanza at .*:2/,
    ],
    ['variable before the first SOURCE', `KEY secret\nSOURCE ANY\n`, 1, /KEY before the first SOURCE line/],
    ['no SOURCE stanza', '# empty\nOPEN_PORTS tcp/22\n', 2, /OPEN_PORTS before the first SOURCE/],
    ['variable without value', 'SOURCE ANY\nOPEN_PORTS\n', 2, /OPEN_PORTS has no value/],
    [
      'bad FW_ACCESS_TIMEOUT',
      head + 'FW_ACCESS_TIMEOUT 1m\n',
      5,
      /FW_ACCESS_TIMEOUT "1m" is not a whole number/,
    ],
    [
      'MAX_FW_TIMEOUT below the timeout',
      head + 'FW_ACCESS_TIMEOUT 60\nMAX_FW_TIMEOUT 30\n',
      6,
      /MAX_FW_TIMEOUT 30 is below/,
    ],
    [
      'unsupported HMAC digest',
      head + 'HMAC_DIGEST_TYPE sha224\n',
      5,
      /HMAC_DIGEST_TYPE "sha224" is unsupported/,
    ],
    ['GPG', head + 'GPG_DECRYPT_ID ABCD1234\n', 5, /GPG is unsupported/],
    ['NAT', head + 'FORCE_NAT 192.168.1.2 22\n', 5, /knockgate does no NAT/],
    ['command execution', head + 'ENABLE_CMD_EXEC Y\n', 5, /refuses SPA command messages/],
    ['DESTINATION', head + 'DESTINATION 10.0.0.1\n', 5, /DESTINATION other than ANY/],
    ['REQUIRE_USERNAME with a space', head + 'REQUIRE_USERNAME al ice\n', 5, /is not a user name/],
    ['RESTRICT_PORTS removes everything', head + 'RESTRICT_PORTS tcp/22\n', 1, /removes every port/],
    [
      'CMD_CYCLE_OPEN without CLOSE',
      head + 'CMD_CYCLE_OPEN /bin/true $SRC\nCMD_CYCLE_TIMER 10\n',
      1,
      /without CMD_CYCLE_CLOSE/,
    ],
    [
      'CMD_CYCLE without TIMER',
      head + 'CMD_CYCLE_OPEN /bin/a\nCMD_CYCLE_CLOSE /bin/b\n',
      1,
      /need CMD_CYCLE_TIMER/,
    ],
    [
      'both command families',
      head + 'CMD_CYCLE_OPEN /bin/a\nEXTERNAL_CMD_CLOSE /bin/b\n',
      6,
      /mixes CMD_CYCLE_\* and EXTERNAL_CMD_\*/,
    ],
    [
      'timer conflicting with FW_ACCESS_TIMEOUT',
      head + 'FW_ACCESS_TIMEOUT 30\nCMD_CYCLE_OPEN /bin/a\nCMD_CYCLE_CLOSE /bin/b\nCMD_CYCLE_TIMER 60\n',
      8,
      /conflicts with FW_ACCESS_TIMEOUT 30/,
    ],
    ['ACCESS_EXPIRE still to come', head + 'ACCESS_EXPIRE 01/01/2999\n', 5, /still to come/],
    ['unknown directive', head + '%includes x\n', 5, /unknown directive %includes/],
    [
      'missing include',
      head + '%include /nonexistent/kg.conf\n',
      5,
      /\/nonexistent\/kg.conf: cannot read: ENOENT/,
    ],
  ];
  for (const [name, text, line, re] of cases) {
    it(name, () => {
      const e = errorOf(text);
      expect(e.line).toBe(line);
      expect(e.what).toMatch(re);
    });
  }

  it('an include that includes itself', () => {
    const path = write('SOURCE ANY\n');
    writeFileSync(path, `%include ${path}\n`);
    expect(() => loadConfig(path)).toThrow(`${path}:1: ${path} includes itself`);
  });

  it('an %include_keys file with something else than keys, at ITS line', () => {
    const keys = write(`KEY_BASE64 ${K1}\nOPEN_PORTS tcp/1\n`, 'keys.conf');
    const main = write(`SOURCE ANY\n%include_keys ${keys}\n`);
    expect(() => loadConfig(main)).toThrow(`${keys}:2: OPEN_PORTS is not a key variable`);
  });

  it('a skipped (expired) stanza is a warning, not an error', () => {
    const path = write(
      `${head}ACCESS_EXPIRE 01/01/2001\nSOURCE ANY\nKEY_BASE64 ${K2}\nHMAC_KEY_BASE64 ${H2}\n`,
    );
    const c = loadConfig(path);
    expect(c.policies.map((p) => p.metadata.name)).toEqual(['access-conf-2']);
    expect(c.warnings[0]).toMatch(/:5: stanza of line 1 expired on 01\/01\/2001/);
  });

  it('the parser function reports the same without touching the disk', () => {
    expect(() => parseAccessConf('a.conf', 'SOURCE ANY\nKEY_BASE64 !!!!\n', { now: 0 })).toThrow(
      'a.conf:2: KEY_BASE64 is not valid base64',
    );
  });
});

describe('broken fwknopd.conf variants', () => {
  const access = `SOURCE ANY\nOPEN_PORTS tcp/22\nKEY_BASE64 ${K1}\nHMAC_KEY_BASE64 ${H1}\n`;
  const cases: [string, string, number, RegExp][] = [
    ['unknown variable', 'PCAP_INTF eth0;\nPCAP_FLITER udp port 1;\n', 2, /unknown variable PCAP_FLITER/],
    ['a filter that is not one port', 'PCAP_FILTER udp port 1 or udp port 2;\n', 1, /needs one SPA port/],
    ['bad port in the filter', 'PCAP_FILTER udp port 70000;\n', 1, /needs one SPA port/],
    ['bad interface', 'PCAP_INTF eth 0;\n', 1, /PCAP_INTF "eth 0" is not an interface name/],
    ['NAT switched on', 'ENABLE_IPT_FORWARDING Y;\n', 1, /does no NAT or forwarding/],
    ['bad packet age', 'MAX_SPA_PACKET_AGE 0;\n', 1, /MAX_SPA_PACKET_AGE "0" must be 1 to/],
  ];
  for (const [name, text, line, re] of cases) {
    it(name, () => {
      const e = errorOf(access, text);
      expect(e.file.endsWith('fwknopd.conf')).toBe(true);
      expect(e.line).toBe(line);
      expect(e.what).toMatch(re);
    });
  }

  it('an fwknopd.conf with a knockd.conf is refused', () => {
    const k = write('[a]\nsequence = 1\n', 'knockd.conf');
    const f = write('PCAP_INTF eth0\n', 'fwknopd.conf');
    expect(() => loadConfig(k, { fwknopdConf: f })).toThrow(
      /an fwknopd.conf only goes with an fwknop access.conf/,
    );
  });
});
