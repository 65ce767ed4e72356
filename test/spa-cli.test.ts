// `knockgate spa`, `knockgate spa decode` and `knockgate keygen` as the command line parses them:
// a packet built with -T -B decodes back to what was asked; every kind of bad input is one line
// (CliError, exit status 2) that names the flag or file and never echoes key material.

import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CliError } from '../cmd/errors.js';
import { register as registerKeygen } from '../cmd/keygen.js';
import { register as registerSpa } from '../cmd/spa.js';

const KEY = Buffer.alloc(32, 0x11).toString('base64');
const HMAC = Buffer.alloc(64, 0x22).toString('base64');
const KEYS = ['--key-base64-rijndael', KEY, '--key-base64-hmac', HMAC];

async function run(argv: string[]): Promise<string> {
  const program = new Command('knockgate').exitOverride();
  registerSpa(program);
  registerKeygen(program);
  const chunks: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => {
    chunks.push(String(c));
    return true;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } finally {
    write.mockRestore();
  }
  return chunks.join('');
}

async function failure(argv: string[]): Promise<CliError> {
  try {
    await run(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    const e = err as CliError;
    expect(e.exitCode).toBe(2);
    expect(e.message).not.toContain('\n');
    return e;
  }
  throw new Error(`expected ${argv.join(' ')} to fail`);
}

describe('knockgate spa / spa decode / keygen on the command line', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kg-spa-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('spa -T -B builds and saves a packet (mode 600) that spa decode reads back', async () => {
    const file = join(dir, 'p1');
    const args = ['spa', '-T', '-B', file, '-A', 'tcp/22,udp/53', '-a', '10.1.2.3', '-D', '10.0.0.1'];
    await run([...args, ...KEYS, '-U', 'alice', '-f', '90', '-m', 'sha512', '--hmac-digest-type', 'sha384']);
    expect(readFileSync(file, 'latin1')).toMatch(/^[A-Za-z0-9+/]+\n$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const out = JSON.parse(await run(['spa', 'decode', '--file', file, ...KEYS])) as Record<string, unknown>;
    expect(out).toMatchObject({
      username: 'alice',
      accessMessage: '10.1.2.3,tcp/22,udp/53',
      messageType: 'client-timeout-access',
      clientTimeout: 90,
      digestType: 'sha512',
      hmacType: 'sha384',
    });
    expect(Math.abs((out.timestamp as number) - Date.now() / 1000)).toBeLessThan(60);
    // Naming the HMAC type works too, and the wrong one is refused.
    await run(['spa', 'decode', '--file', file, '--hmac-digest-type', 'sha384', ...KEYS]);
    const e = await failure(['spa', 'decode', '--file', file, '--hmac-digest-type', 'sha256', ...KEYS]);
    expect(e.message).toBe('spa decode: packet refused: HMAC does not match (bad-hmac)');
  });

  it('-s puts 0.0.0.0 in the packet; passphrase keys work', async () => {
    const file = join(dir, 'p2');
    const keys = ['--key-rijndael', 'pass phrase', '--key-hmac', 'hmac phrase'];
    await run(['spa', '-T', '-B', file, '-A', 'tcp/22', '-s', '-D', 'x', ...keys, '-U', 'bob']);
    const out = JSON.parse(await run(['spa', 'decode', '--file', file, ...keys])) as Record<string, unknown>;
    expect(out).toMatchObject({ username: 'bob', accessMessage: '0.0.0.0,tcp/22', messageType: 'access' });
  });

  it('refuses bad send flags with one line naming the flag', async () => {
    const base = ['spa', '-T', '-D', '10.0.0.1', ...KEYS];
    expect((await failure([...base, '-a', '10.1.2.3'])).message).toMatch(/-A\/--access is required/);
    expect((await failure([...base, '-A', 'tcp/0', '-a', '10.1.2.3'])).message).toMatch(/-A\/--access/);
    expect((await failure([...base, '-A', 'icmp/22', '-a', '10.1.2.3'])).message).toMatch(/-A\/--access/);
    expect((await failure([...base, '-A', 'tcp/22', '-a', '10.1.2.3', '-s'])).message).toMatch(/not both/);
    expect((await failure([...base, '-A', 'tcp/22'])).message).toMatch(/-a\/--allow-ip/);
    expect((await failure([...base, '-A', 'tcp/22', '-a', 'nope'])).message).toMatch(
      /invalid access request/,
    );
    expect((await failure([...base, '-A', 'tcp/22', '-a', '10.1.2.3', '-f', '0'])).message).toMatch(/-f/);
    expect((await failure([...base, '-A', 'tcp/22', '-a', '10.1.2.3', '-p', '70000'])).message).toMatch(/-p/);
    expect((await failure([...base, '-A', 'tcp/22', '-a', '10.1.2.3', '-m', 'crc32'])).message).toMatch(
      /--digest-type/,
    );
    expect((await failure([...base, '-A', 'tcp/22', '-a', '10.1.2.3', '-U', 'a:b'])).message).toMatch(
      /username/,
    );
    expect((await failure(['spa', '-T', '-A', 'tcp/22', '-a', '10.1.2.3', ...KEYS])).message).toMatch(
      /-D\/--destination/,
    );
    const legacy = await failure([...base, '-A', 'tcp/22', '-a', '10.1.2.3', '-M', 'legacy']);
    expect(legacy.message).toMatch(/legacy/);
  });

  it('refuses bad keys without echoing them', async () => {
    const base = ['spa', '-T', '-D', '10.0.0.1', '-A', 'tcp/22', '-a', '10.1.2.3'];
    expect((await failure(base)).message).toMatch(/no SPA key/);
    const bad = await failure([...base, '--key-base64-rijndael', 'sekrit!!']);
    expect(bad.message).toMatch(/--key-base64-rijndael is not valid base64/);
    expect(bad.message).not.toContain('sekrit');
    const long = await failure([...base, '--key-rijndael', 'x'.repeat(40)]);
    expect(long.message).toMatch(/--key-rijndael must be 1-32 bytes/);
    expect(long.message).not.toContain('xxxx');
    const both = await failure([...base, '--key-rijndael', 'a', '--key-base64-rijndael', KEY]);
    expect(both.message).toMatch(/not both/);
  });

  it('spa decode: unreadable, empty, multi-line and junk input each get one line', async () => {
    expect((await failure(['spa', 'decode', '--file', join(dir, 'missing'), ...KEYS])).message).toMatch(
      /cannot read .*missing: ENOENT/,
    );
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    expect((await failure(['spa', 'decode', '--file', empty, ...KEYS])).message).toMatch(/not-spa/);
    const two = join(dir, 'two');
    writeFileSync(two, 'QUJD\nREVG\n');
    expect((await failure(['spa', 'decode', '--file', two, ...KEYS])).message).toMatch(/several lines/);
    const junk = join(dir, 'junk');
    writeFileSync(junk, Buffer.from([0, 1, 2, 255, 254, 13, 9].concat(Array(100).fill(65))));
    const e = await failure(['spa', 'decode', '--file', junk, ...KEYS]);
    expect(e.message).toMatch(/^spa decode: packet refused: /);
  });

  it('keygen: two lines, lengths bounded', async () => {
    const out = await run(['keygen']);
    expect(out).toMatch(/^KEY_BASE64: [A-Za-z0-9+/]{43}=\nHMAC_KEY_BASE64: [A-Za-z0-9+/]{86}==\n$/);
    expect((await failure(['keygen', '--key-len', '33'])).message).toMatch(/--key-len/);
    expect((await failure(['keygen', '--hmac-key-len', '0'])).message).toMatch(/--hmac-key-len/);
  });
});
