// `knockgate standalone` refuses bad input end to end: a missing config, broken configs of each
// format (FILE:LINE), an unknown backend, a missing interface, no root, no NET_ADMIN, and a capture
// that fails after the firewall was installed. Each exits non-zero with one line on stderr naming
// the problem, and leaves no knockgate table in the namespace's ruleset.

import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { skipWithoutNetns } from './helpers/netns.js';
import {
  keygen,
  KNOCKGATE,
  Lab,
  runCommand,
  yamlConfig,
  type CommandResult,
  type SpaKeys,
} from './helpers/standalone-harness.js';

const KNOCKD_OK = [
  '[door]',
  'sequence = 7001:tcp,7002:tcp',
  'start_command = /usr/sbin/iptables -A INPUT -s %IP% -p tcp --dport 2222 -j ACCEPT',
  '',
].join('\n');

describe.skipIf(skipWithoutNetns('standalone e2e (bad input)'))('knockgate standalone: bad input', () => {
  let lab: Lab;
  let keys: SpaKeys;
  /** World-readable: the unprivileged runs must get past reading the config. */
  let publicDir: string;

  beforeAll(async () => {
    lab = await Lab.create();
    keys = await keygen();
    publicDir = mkdtempSync(join(tmpdir(), 'kg-e2e-public-'));
    chmodSync(publicDir, 0o755);
  });

  // Each case starts from a ruleset without knockgate, whatever an earlier failing case left.
  afterEach(async () => {
    await runCommand(lab.srv, 'nft', ['delete', 'table', 'inet', 'knockgate']);
  });

  afterAll(async () => {
    await lab?.destroy();
    if (publicDir) rmSync(publicDir, { recursive: true, force: true });
  });

  /** Run `[wrapper...] node knockgate standalone ARGS` in srv, to its end. */
  function standalone(args: string[], wrapper: string[] = []): Promise<CommandResult> {
    const [cmd, ...rest] = [...wrapper, 'node', KNOCKGATE, 'standalone', ...args];
    return runCommand(lab.srv, cmd!, rest, 30_000);
  }

  function defaults(config: string, extra: string[] = []): string[] {
    return [
      '--config',
      config,
      '--state-dir',
      join(lab.dir, 'state'),
      '--interface',
      lab.srvIf('cli'),
      ...extra,
    ];
  }

  /** Non-zero, one line on stderr matching `problem`, and no knockgate table left. */
  async function expectRefused(r: CommandResult, problem: RegExp | string, code?: number): Promise<void> {
    expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).not.toBe(0);
    if (code !== undefined) expect(r.code).toBe(code);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^knockgate: /);
    if (typeof problem === 'string') expect(lines[0]).toContain(problem);
    else expect(lines[0]).toMatch(problem);
    expect(await lab.ruleset()).not.toContain('knockgate');
  }

  it('a config file that is missing or unreadable names the file', async () => {
    const missing = join(lab.dir, 'no-such.yaml');
    await expectRefused(await standalone(defaults(missing)), missing, 2);
    await expectRefused(await standalone(defaults(lab.dir)), lab.dir, 2);
  });

  it('broken configs name FILE:LINE (YAML syntax, YAML field, knockd.conf, access.conf)', async () => {
    const yamlSyntax = lab.write(
      'syntax.yaml',
      yamlConfig(keys, 40501, 2222).replace('spec:\n', 'spec:\n  - [\n'),
    );
    const syntax = await standalone(defaults(yamlSyntax));
    await expectRefused(syntax, `${yamlSyntax}:`, 2);
    expect(syntax.stderr).toMatch(/\.yaml:\d+: YAML: /);

    const yamlField = lab.write(
      'field.yaml',
      yamlConfig(keys, 40501, 2222).replace(/durationSeconds: \d+}/, 'durationSeconds: -4}'),
    );
    await expectRefused(await standalone(defaults(yamlField)), `${yamlField}:6:`, 2);

    const knockd = lab.write('knockd.conf', KNOCKD_OK.replace('7002:tcp', '70x2:tcp'));
    await expectRefused(await standalone(defaults(knockd)), `${knockd}:2:`, 2);

    const access = lab.write(
      'access.conf',
      ['SOURCE ANY', 'OPEN_PORTS tcp/2222', `KEY_BASE64 ${keys.key}`, 'HMAC_KEY_BASE64 not*base64', ''].join(
        '\n',
      ),
    );
    const r = await standalone(defaults(access));
    await expectRefused(r, `${access}:4:`, 2);
    // The key values never reach the message.
    expect(r.stderr).not.toContain(keys.key);
  });

  it('an unknown backend', async () => {
    const config = lab.write('ok.conf', KNOCKD_OK);
    await expectRefused(await standalone(defaults(config, ['--backend', 'pf'])), 'unknown backend "pf"', 2);
  });

  it('a missing interface', async () => {
    const config = lab.write('ok.conf', KNOCKD_OK);
    const args = ['--config', config, '--state-dir', join(lab.dir, 'state'), '--interface', 'kgnosuch0'];
    await expectRefused(await standalone(args), 'kgnosuch0', 1);
  });

  it('an interface with no address: the capture fails after the firewall was installed, which is removed again (every backend)', async () => {
    // A veth end with no address (and down): nothing for the capture to watch.
    const made = await runCommand(lab.srv, 'ip', [
      'link',
      'add',
      'kgdown0',
      'type',
      'veth',
      'peer',
      'name',
      'kgdown1',
    ]);
    expect(made.code, made.stderr).toBe(0);
    const config = lab.write('ok.conf', KNOCKD_OK);
    for (const backend of ['nftables', 'ipset', 'iptables'] as const) {
      const args = ['--config', config, '--state-dir', join(lab.dir, 'state'), '--interface', 'kgdown0'];
      const r = await standalone([...args, '--backend', backend]);
      await expectRefused(r, 'kgdown0', 1);
      // It did get as far as installing (so "no rule left" means it was removed).
      expect(r.stdout).toContain('firewall installed');
      expect(await lab.firewallState(backend)).not.toMatch(/knockgate/i);
    }
  });

  it('no root: as nobody', async () => {
    const config = join(publicDir, 'ok.conf');
    writeFileSync(config, KNOCKD_OK, { mode: 0o644 });
    const r = await standalone(
      ['--config', config, '--state-dir', join(publicDir, 'state'), '--interface', lab.srvIf('cli')],
      ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'],
    );
    await expectRefused(r, /needs root or CAP_NET_ADMIN/, 1);
  });

  it('root without CAP_NET_ADMIN', async () => {
    const config = lab.write('ok.conf', KNOCKD_OK);
    const r = await standalone(defaults(config), [
      'setpriv',
      '--inh-caps=-net_admin',
      '--bounding-set=-net_admin',
    ]);
    await expectRefused(r, /needs root or CAP_NET_ADMIN \(firewall\)/, 1);
    expect(r.stderr).not.toContain('CAP_NET_RAW');
  });
});
