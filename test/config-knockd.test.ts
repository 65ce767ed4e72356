// knockd.conf → policies and hooks for `knockgate standalone` and `knockgate import`: the article's
// example as it is, every directive knockgate reads, and broken variants each refused with
// FILE:LINE: what is wrong.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../api/config/load.js';
import { parseKnockdConf } from '../api/config/knockd.js';
import { validatePolicy } from '../api/validate.js';

const FIXTURES = join(import.meta.dirname, 'fixtures/config');
const tmp = mkdtempSync(join(tmpdir(), 'kg-config-knockd-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let count = 0;
function write(text: string, name = 'knockd.conf'): string {
  const dir = join(tmp, String(++count));
  const path = join(dir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path, text);
  return path;
}

/** The error loadConfig throws for `text`, checked to be `FILE:LINE: ...`. */
function errorOf(text: string): { line: number | undefined; message: string; what: string } {
  const path = write(text);
  try {
    loadConfig(path);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.message.startsWith(`${path}:`)).toBe(true);
    expect(e.message).not.toContain('\n');
    return { line: e.line, message: e.message, what: e.what };
  }
  throw new Error('expected a ConfigError');
}

describe('the article knockd.conf', () => {
  const file = join(FIXTURES, 'knockd.conf.example');
  const config = loadConfig(file);

  it('becomes two valid knock policies named after the sections', () => {
    expect(config.format).toBe('knockd');
    expect(config.policies.map((p) => p.metadata.name)).toEqual(['ssh', 'osiris']);
    for (const p of config.policies) expect(validatePolicy(p).errors).toEqual([]);
    const [ssh, osiris] = config.policies;
    expect(ssh!.spec.knock).toEqual({
      sequence: ['26515/tcp', '8924/tcp', '58666/tcp', '32342/tcp', '5427/tcp'],
      sequenceTimeoutSeconds: 15,
    });
    expect(osiris!.spec.knock!.sequence).toEqual([
      '9674/tcp',
      '54190/tcp',
      '25668/tcp',
      '19684/tcp',
      '35056/tcp',
    ]);
  });

  it('opens what the iptables start_command opens, for cmd_timeout seconds', () => {
    const ssh = config.policies[0]!;
    expect(ssh.spec.grant).toEqual({ ports: ['22222/tcp'], durationSeconds: 60 });
  });

  it('keeps start_command/stop_command as hooks with %IP% (the daemon runs them)', () => {
    expect(config.hooks.ssh).toEqual({
      placeholders: 'knockd',
      start: '/sbin/iptables -A INPUT -s %IP% -p tcp --syn --dport 22222 -j ACCEPT',
      stop: '/sbin/iptables -D INPUT -s %IP% -p tcp --syn --dport 22222 -j ACCEPT',
      timeoutSeconds: 10,
    });
    expect(config.hooks.osiris).toMatchObject({ start: '/conf/ssh %IP%', stop: '/conf/ssh_del' });
    expect(config.settings.hooks).toBe(config.hooks);
  });

  it('lets the script door only run its commands: node target None, nothing protected, said so', () => {
    const osiris = config.policies[1]!;
    expect(osiris.spec.grant).toEqual({
      ports: ['22/tcp'],
      durationSeconds: 60,
      targets: { node: { mode: 'None' } },
    });
    expect(config.warnings.some((w) => w.startsWith(`${file}:8: [Osiris]`) && w.includes('mode None'))).toBe(
      true,
    );
    expect(config.settings.protectedPorts).toEqual(['22222/tcp']);
  });

  it('gives the daemon its defaults: Enforce, nftables, default-route interface, no keys', () => {
    expect(config.settings).toMatchObject({
      mode: 'Enforce',
      backend: 'nftables',
      interfaces: [],
      alwaysAllow: [],
      neverGrant: [],
      conntrackFlush: false,
    });
    expect(config.keys).toEqual({});
    expect(config.secrets).toEqual({});
  });
});

describe('every knockd directive knockgate reads', () => {
  const file = join(FIXTURES, 'knockd.conf.full');
  const config = loadConfig(file);
  const [ssh, web] = config.policies;

  it('reads sequences with and without protocols, seq_timeout, tcpflags with negation', () => {
    expect(ssh!.metadata.name).toBe('openssh');
    expect(ssh!.spec.knock).toEqual({
      sequence: ['7000/tcp', '8000/udp', '9000/tcp'],
      sequenceTimeoutSeconds: 5,
      tcpFlags: ['syn', '!ack'],
    });
  });

  it('applies knockd defaults: seq_timeout 25, cmd_timeout 10 (with a warning when a stop_command relies on it)', () => {
    expect(web!.spec.knock!.sequenceTimeoutSeconds).toBe(25);
    expect(web!.spec.grant.durationSeconds).toBe(10);
    expect(config.warnings).toContain(`${file}:16: [web]: no cmd_timeout: knockd's default of 10s applies`);
  });

  it('reads multiport iptables commands as the grant ports and protects them', () => {
    expect(web!.spec.grant.ports).toEqual(['80/tcp', '443/tcp']);
    expect(config.settings.protectedPorts).toEqual(['80/tcp', '443/tcp']);
  });

  it('keeps command/command_6/stop_command_6 as IPv4 and IPv6 hooks', () => {
    expect(config.hooks.openssh).toEqual({
      placeholders: 'knockd',
      start: '/usr/sbin/nft add element inet filter ssh { %IP% }',
      stop: '/usr/sbin/nft delete element inet filter ssh { %IP% }',
      start6: '/usr/sbin/nft add element inet filter ssh6 { %IP% }',
      stop6: '/usr/sbin/nft delete element inet filter ssh6 { %IP% }',
      timeoutSeconds: 10,
    });
    expect(ssh!.spec.grant.durationSeconds).toBe(20);
  });

  it('takes [options] Interface as the capture interface of every door', () => {
    expect(config.settings.interfaces).toEqual(['veth-kg0']);
    expect(config.policies.every((p) => p.spec.interface === 'veth-kg0')).toBe(true);
    expect(config.warnings).toContain(`${file}:3: UseSyslog is ignored: knockgate logs JSON lines to stdout`);
  });

  it('reads one_time_sequences from a file next to the config, skipping used (#) lines', () => {
    const path = write('[once]\none_time_sequences = seqs.txt\ncmd_timeout = 5\n');
    writeFileSync(join(path, '..', 'seqs.txt'), '# 1000,2000\n3000,4000:udp\n5000:tcp,6000\n');
    const c = loadConfig(path);
    expect(c.policies[0]!.spec.knock!.oneTimeSequences).toEqual([
      ['3000/tcp', '4000/udp'],
      ['5000/tcp', '6000/tcp'],
    ]);
  });

  it('accepts CRLF line endings and case-insensitive directive names', () => {
    const c = loadConfig(write('[A]\r\nSEQUENCE = 1,2\r\nSeq_Timeout = 3\r\n'));
    expect(c.policies[0]!.spec.knock).toMatchObject({
      sequence: ['1/tcp', '2/tcp'],
      sequenceTimeoutSeconds: 3,
    });
  });
});

describe("knockd's open/close door pairs", () => {
  // The knockd.conf Debian ships, with a script door added.
  const DEBIAN = `[options]
\tUseSyslog

[openSSH]
\tsequence    = 7000,8000,9000
\tseq_timeout = 5
\tcommand     = /sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
\ttcpflags    = syn

[closeSSH]
\tsequence    = 9000,8000,7000
\tseq_timeout = 5
\tcommand     = /sbin/iptables -D INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
\ttcpflags    = syn

[openHTTPS]
\tsequence    = 12345,54321,24680,13579
\tseq_timeout = 5
\tcommand     = /usr/local/sbin/knock_add -i -c INPUT -p tcp -d 443 -f %IP%
\ttcpflags    = syn
`;

  it('the closing door becomes the stop command of the door it undoes, and is not a policy', () => {
    const path = write(DEBIAN);
    const c = loadConfig(path);
    expect(c.policies.map((p) => p.metadata.name)).toEqual(['openssh', 'openhttps']);
    expect(c.hooks.openssh).toMatchObject({
      start: '/sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT',
      stop: '/sbin/iptables -D INPUT -s %IP% -p tcp --dport 22 -j ACCEPT',
    });
    expect(c.warnings).toContain(
      `${path}:10: [closeSSH] closes what [openSSH] opens: its command becomes [openSSH]'s stop_command, ` +
        'run when that grant expires (cmd_timeout) or is revoked; the door itself is not imported',
    );
  });

  it("the script door opens nothing in knockgate's firewall, so it cannot open the SSH door", () => {
    const c = loadConfig(write(DEBIAN));
    const https = c.policies[1]!;
    expect(https.spec.grant.targets).toEqual({ node: { mode: 'None' } });
    expect(c.policies[0]!.spec.grant).toEqual({ ports: ['22/tcp'], durationSeconds: 10 });
    expect(c.settings.protectedPorts).toEqual(['22/tcp']);
  });

  it('pairs -I with a position, and long option names', () => {
    const c = loadConfig(
      write(
        '[o]\nsequence = 1\ncommand = iptables -I INPUT 1 -s %IP% -p udp --dport 1194 -j ACCEPT\n' +
          '[c]\nsequence = 2\ncommand = iptables --delete INPUT -s %IP% -p udp --dport 1194 -j ACCEPT\n',
      ),
    );
    expect(c.policies.map((p) => p.metadata.name)).toEqual(['o']);
    expect(c.policies[0]!.spec.grant.ports).toEqual(['1194/udp']);
    expect(c.hooks.o!.stop).toBe('iptables --delete INPUT -s %IP% -p udp --dport 1194 -j ACCEPT');
  });

  it('a closing door without a partner is left out with a warning, an opening door without a stop is warned about', () => {
    const path = write(
      '[o]\nsequence = 1\ncommand = iptables -A INPUT -s %IP% -p tcp --dport 80 -j ACCEPT\n' +
        '[c]\nsequence = 2\ncommand = iptables -D INPUT -s %IP% -p tcp --dport 443 -j ACCEPT\n',
    );
    const c = loadConfig(path);
    expect(c.policies.map((p) => p.metadata.name)).toEqual(['o']);
    expect(c.warnings).toContain(
      `${path}:4: [c] only removes a firewall rule: knockgate closes access itself when a grant expires, ` +
        'and "knockgate revoke" closes it at once; the door is not imported',
    );
    expect(
      c.warnings.some((w) =>
        w.startsWith(`${path}:1: [o]: its command adds a firewall rule that no stop_command removes`),
      ),
    ).toBe(true);
  });
});

describe('broken knockd.conf variants: FILE:LINE: what is wrong', () => {
  const base = '[ssh]\nsequence = 7000,8000,9000\nseq_timeout = 5\ncommand = /bin/true %IP%\n';
  const cases: [string, string, number | undefined, RegExp][] = [
    ['unknown keyword', base + 'sequnce = 1,2\n', 5, /unknown directive "sequnce" in \[ssh\]/],
    ['bad port', '[ssh]\nsequence = 7000,70000,9000\n', 2, /sequence: "70000": port must be 1-65535/],
    ['port zero', '[ssh]\nsequence = 0,1\n', 2, /port must be 1-65535/],
    ['bad protocol', '[ssh]\nsequence = 7000:icmp,8000\n', 2, /"7000:icmp" is not PORT\[:PROTO\]/],
    ['empty sequence', '[ssh]\nsequence =\n', 2, /sequence: no ports given|needs a value/],
    ['missing sequence', '[ssh]\nseq_timeout = 5\ncommand = /bin/true\n', 1, /has no sequence/],
    [
      'duplicate section',
      base + '[SSH]\nsequence = 1,2\n',
      5,
      /section \[SSH\] is already defined at line 1/,
    ],
    ['unterminated section header', '[ssh\nsequence = 1,2\n', 1, /unterminated section header/],
    ['empty section name', '[]\nsequence = 1,2\n', 1, /empty section name/],
    ['directive outside any section', 'sequence = 1,2\n[ssh]\n', 1, /outside any section/],
    [
      'duplicate directive',
      base + 'seq_timeout = 9\n',
      5,
      /seq_timeout is already set for \[ssh\] at line 3/,
    ],
    [
      'bad seq_timeout',
      '[ssh]\nsequence = 1,2\nseq_timeout = soon\n',
      3,
      /seq_timeout "soon" is not a whole number/,
    ],
    ['seq_timeout out of range', '[ssh]\nsequence = 1,2\nseq_timeout = 0\n', 3, /out of range/],
    ['bad cmd_timeout', '[ssh]\nsequence = 1,2\ncmd_timeout = -1\n', 3, /cmd_timeout "-1"/],
    ['unknown tcp flag', '[ssh]\nsequence = 1,2\ntcpflags = syn,foo\n', 3, /unknown flag "foo"/],
    ['contradicting tcp flags', '[ssh]\nsequence = 1,2\ntcpflags = syn,!syn\n', 3, /contradicts/],
    ['directive without value', '[ssh]\nsequence\n', 2, /needs a value/],
    [
      'unknown option',
      '[options]\nLogLevel = 3\n[ssh]\nsequence = 1\n',
      2,
      /unknown directive "loglevel" in \[options\]/,
    ],
    ['bad interface', '[options]\nInterface = eth0/1\n[ssh]\nsequence = 1\n', 2, /invalid interface name/],
    ['missing one_time_sequences file', '[ssh]\none_time_sequences = x\n', 2, /x: cannot read: ENOENT/],
    [
      'two sections, one policy name',
      '[a b]\nsequence = 1\n[a-b]\nsequence = 2\n',
      3,
      /both become policy "a-b"/,
    ],
    ['no door at all', '[options]\nUseSyslog\n', undefined, /no door sections/],
    ['an empty file', '\n# nothing\n', undefined, /no door sections|cannot tell the format/],
  ];
  for (const [name, text, line, re] of cases) {
    it(name, () => {
      const e = errorOf(text);
      expect(e.line).toBe(line);
      expect(e.what).toMatch(re);
    });
  }

  it('names the one-time sequence file and its line for a bad sequence inside it', () => {
    const path = write('[once]\none_time_sequences = seqs.txt\n');
    const seqs = join(path, '..', 'seqs.txt');
    writeFileSync(seqs, '1000,2000\n1000,99999\n');
    expect(() => loadConfig(path)).toThrow(`${seqs}:2: one-time sequence: "99999": port must be 1-65535`);
  });

  it('refuses a door with both sequence and one_time_sequences', () => {
    const path = write('[once]\nsequence = 1,2\none_time_sequences = seqs.txt\n');
    writeFileSync(join(path, '..', 'seqs.txt'), '1000,2000\n');
    expect(() => loadConfig(path)).toThrow(
      `${path}:1: section [once] has both sequence and one_time_sequences`,
    );
  });

  it('parser functions report the same way without touching the disk', () => {
    expect(() => parseKnockdConf('x.conf', '[a]\nsequence = 1,2\nfoo = 1\n')).toThrow(
      'x.conf:3: unknown directive "foo" in [a]',
    );
  });

  it('refuses an unreadable file with one line naming it', () => {
    const missing = join(tmp, 'nope', 'knockd.conf');
    expect(() => loadConfig(missing)).toThrow(`${missing}: cannot read: ENOENT`);
  });
});
