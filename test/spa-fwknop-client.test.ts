// Packets made by the real fwknop 2.6 client (`fwknop --no-rc-file --test -B FILE`: built and saved,
// never sent; never -R) decode with `knockgate spa decode` to exactly the fields the client printed,
// for base64 and passphrase keys, every HMAC and message digest type the client offers, -f, -U, -a
// and -s, legacy mode; and any one character changed anywhere in such a packet is refused.

import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CliError } from '../cmd/errors.js';
import { decodePacketFields, register as registerSpa, type DecodeFlags } from '../cmd/spa.js';
import { register as registerKeygen } from '../cmd/keygen.js';
import { DIGEST_TYPES } from '../sniffer/spa/types.js';
import { prng } from './helpers/spa-corpus.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

function haveFwknop(): boolean {
  try {
    execFileSync('fwknop', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.CI === 'true')
      throw new Error('fwknop client not installed, and CI must run these tests');
    console.warn('SKIP spa-fwknop-client: the fwknop client is not installed');
    return false;
  }
}

/** The fields the fwknop client prints in --test mode ("SPA Field Values"). */
interface ClientFields {
  randValue: string;
  username: string;
  timestamp: number;
  messageTypeCode: number;
  message: string;
  clientTimeout: number;
  digestType: string;
  hmacType: string;
  encryptionMode: string;
  digest: string;
}

const MESSAGE_TYPE_NAMES = ['command', 'access', 'nat-access', 'client-timeout-access'];

function parseClientOutput(text: string): ClientFields {
  const field = (name: string): string => {
    const m = new RegExp(`^\\s*${name}: (.*)$`, 'm').exec(text);
    if (!m) throw new Error(`fwknop printed no "${name}"`);
    return m[1]!.trim();
  };
  const typeName = (v: string) => /\((\w+)\)/.exec(v)![1]!.toLowerCase();
  return {
    randValue: field('Random Value'),
    username: field('Username'),
    timestamp: Number(field('Timestamp')),
    messageTypeCode: Number(field('Message Type').split(' ')[0]),
    message: field('Message String'),
    clientTimeout: Number(field('Client Timeout')),
    digestType: typeName(field('Digest Type')),
    hmacType: typeName(field('HMAC Type')),
    encryptionMode: typeName(field('Encryption Mode')),
    digest: field('SPA Data Digest'),
  };
}

/** What `fn` writes to stdout while it runs. */
async function captureStdout(fn: () => Promise<unknown>): Promise<string> {
  const chunks: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  });
  try {
    await fn();
  } finally {
    write.mockRestore();
  }
  return chunks.join('');
}

interface ClientCase {
  name: string;
  /** fwknop key flags (the same names knockgate spa decode takes). */
  keyFlags: Record<string, string>;
  hmacType?: string;
  digestType: string;
  fwTimeout?: number;
  user: string;
  /** -a IP, or undefined for -s. */
  allowIp?: string;
  access: string;
  legacy?: boolean;
}

interface MadePacket {
  c: ClientCase;
  packet: Buffer;
  file: string;
  client: ClientFields;
  flags: DecodeFlags;
}

describe.skipIf(!haveFwknop())('SPA packets from the real fwknop client', () => {
  let dir: string;
  let keyB64: string;
  let hmacB64: string;
  const made: MadePacket[] = [];

  function fwknop(args: string[]): string {
    // HOME points at a scratch dir: --no-rc-file and --no-save-args keep fwknop off ~/.fwknoprc
    // and ~/.fwknop.run, and -D names loopback though --test sends nothing.
    return execFileSync('fwknop', ['--no-rc-file', '--no-save-args', ...args], {
      env: { ...process.env, HOME: dir },
      timeout: 10_000,
    }).toString();
  }

  function make(c: ClientCase): MadePacket {
    const file = join(dir, `pkt-${made.length}`);
    const args = ['-A', c.access, '-D', '127.0.0.1', '--test', '-B', file, '-U', c.user];
    args.push(...(c.allowIp ? ['-a', c.allowIp] : ['-s']));
    for (const [flag, value] of Object.entries(c.keyFlags)) args.push(`--${flag}`, value);
    if (c.hmacType) args.push('--hmac-digest-type', c.hmacType);
    args.push('--digest-type', c.digestType);
    if (c.fwTimeout) args.push('-f', String(c.fwTimeout));
    if (c.legacy) args.push('-M', 'legacy');
    const client = parseClientOutput(fwknop(args));
    const flags: DecodeFlags = { encryptionMode: c.legacy ? 'legacy' : 'cbc' };
    if (c.keyFlags['key-base64-rijndael']) flags.keyBase64Rijndael = c.keyFlags['key-base64-rijndael'];
    if (c.keyFlags['key-rijndael']) flags.keyRijndael = c.keyFlags['key-rijndael'];
    if (c.keyFlags['key-base64-hmac']) flags.keyBase64Hmac = c.keyFlags['key-base64-hmac'];
    if (c.keyFlags['key-hmac']) flags.keyHmac = c.keyFlags['key-hmac'];
    const m = { c, packet: Buffer.from(readFileSync(file, 'latin1').trim(), 'latin1'), file, client, flags };
    made.push(m);
    return m;
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kg-spa-client-'));
    const keys = fwknop(['--key-gen']);
    keyB64 = /^KEY_BASE64: (\S+)$/m.exec(keys)![1]!;
    hmacB64 = /^HMAC_KEY_BASE64: (\S+)$/m.exec(keys)![1]!;
    const rand = prng(20260101);
    const users = ['alice', 'bob', 'svc-deploy', 'r.user_2'];
    let n = 0;
    // Base64 keys: every HMAC type x every message digest type.
    for (const hmacType of DIGEST_TYPES) {
      for (const digestType of DIGEST_TYPES) {
        n++;
        make({
          name: `base64 keys, HMAC ${hmacType}, digest ${digestType}`,
          keyFlags: { 'key-base64-rijndael': keyB64, 'key-base64-hmac': hmacB64 },
          hmacType,
          digestType,
          fwTimeout: n % 2 === 0 ? 1 + Math.floor(rand() * 65_535) : undefined,
          user: users[n % users.length]!,
          allowIp: n % 3 === 0 ? undefined : `10.${n}.${Math.floor(rand() * 255)}.${1 + (n % 250)}`,
          access: n % 2 === 0 ? 'tcp/22' : 'tcp/22,udp/53',
        });
      }
    }
    // Passphrase keys: every HMAC type and every digest type (paired), with and without -f.
    for (const [j, hmacType] of DIGEST_TYPES.entries()) {
      make({
        name: `passphrase keys, HMAC ${hmacType}, digest ${DIGEST_TYPES[(j + 3) % 7]}`,
        keyFlags: { 'key-rijndael': `pass phrase ${j}`, 'key-hmac': `hmac secret ${j}!` },
        hmacType,
        digestType: DIGEST_TYPES[(j + 3) % DIGEST_TYPES.length]!,
        fwTimeout: j % 2 ? 120 : undefined,
        user: users[j % users.length]!,
        allowIp: j % 2 ? '10.20.30.40' : undefined,
        access: 'tcp/2222',
      });
    }
    // No HMAC (an old access.conf), CBC and legacy mode with a short passphrase.
    make({
      name: 'passphrase, no HMAC',
      keyFlags: { 'key-rijndael': 'short' },
      digestType: 'sha256',
      user: 'carol',
      allowIp: '10.9.9.9',
      access: 'tcp/22',
    });
    make({
      name: 'legacy mode, short passphrase, no HMAC',
      keyFlags: { 'key-rijndael': 'short' },
      digestType: 'sha1',
      fwTimeout: 30,
      user: 'carol',
      allowIp: '10.9.9.9',
      access: 'tcp/22',
      legacy: true,
    });
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('knockgate keygen prints the two lines fwknop --key-gen prints', async () => {
    const program = new Command('knockgate').exitOverride();
    registerKeygen(program);
    const ours = await captureStdout(() => program.parseAsync(['keygen'], { from: 'user' }));
    const theirs = fwknop(['--key-gen']);
    const shape = (t: string) =>
      t.split('\n').map((l) => l.replace(/: [A-Za-z0-9+/=]+$/, ': B64').replace(/^$/, ''));
    expect(shape(ours)).toEqual(shape(theirs));
    expect(Buffer.from(/^KEY_BASE64: (\S+)$/m.exec(ours)![1]!, 'base64')).toHaveLength(32);
    expect(Buffer.from(/^HMAC_KEY_BASE64: (\S+)$/m.exec(ours)![1]!, 'base64')).toHaveLength(64);
  });

  it('every packet decodes (via `knockgate spa decode`) to exactly the fields the client put in', async () => {
    expect(made.length).toBe(49 + 7 + 2);
    const nowS = Date.now() / 1000;
    for (const m of made) {
      // The command itself, parsed by commander as on the command line.
      const program = new Command('knockgate').exitOverride();
      registerSpa(program);
      const argv = ['spa', 'decode', '--file', m.file, '-M', m.flags.encryptionMode];
      for (const [flag, value] of Object.entries(m.c.keyFlags)) argv.push(`--${flag}`, value);
      let text: string;
      try {
        text = await captureStdout(() => program.parseAsync(argv, { from: 'user' }));
      } catch (err) {
        throw new Error(`${m.c.name}: ${(err as Error).message}`);
      }
      const out = JSON.parse(text) as Record<string, unknown>;
      const expected = {
        username: m.c.user,
        messageType: MESSAGE_TYPE_NAMES[m.client.messageTypeCode],
        accessMessage: `${m.c.allowIp ?? '0.0.0.0'},${m.c.access}`,
        clientTimeout: m.c.fwTimeout ?? 0,
        digestType: m.c.digestType,
        hmacType: m.c.hmacType ?? 'none',
        encryptionMode: m.c.legacy ? 'legacy' : 'cbc',
        natAccess: null,
        serverAuth: null,
        version: '3.0.0',
        timestamp: m.client.timestamp,
        randValue: m.client.randValue,
        digest: m.client.digest,
      };
      expect(out, m.c.name).toEqual(expected);
      // What the client says it put in agrees with what was asked of it.
      expect(m.client.username, m.c.name).toBe(m.c.user);
      expect(m.client.message, m.c.name).toBe(expected.accessMessage);
      expect(m.client.messageTypeCode, m.c.name).toBe(m.c.fwTimeout ? 3 : 1);
      expect(m.client.clientTimeout, m.c.name).toBe(expected.clientTimeout);
      expect(m.client.digestType, m.c.name).toBe(m.c.digestType);
      expect(m.client.hmacType, m.c.name).toBe(m.c.hmacType ?? 'none');
      expect(m.client.encryptionMode, m.c.name).toBe(m.c.legacy ? 'legacy' : 'cbc');
      expect(Math.abs(m.client.timestamp - nowS), m.c.name).toBeLessThan(120);
    }
  });

  /** One character replaced: `refused` must throw a CliError for every such packet. */
  function expectRefused(m: MadePacket, mutated: Buffer, what: string): void {
    let fields: unknown;
    try {
      fields = decodePacketFields(mutated, m.flags);
    } catch (err) {
      expect(err, `${m.c.name}: ${what}`).toBeInstanceOf(CliError);
      expect((err as Error).message).toMatch(/^spa decode: packet refused: .+ \([a-z-]+\)$/);
      return;
    }
    throw new Error(`${m.c.name}: ${what} was accepted: ${JSON.stringify(fields)}`);
  }

  // Every printable ASCII character and a few bytes outside it.
  const REPLACEMENTS = [...Array.from({ length: 95 }, (_, i) => 0x20 + i), 0x00, 0x0a, 0x7f, 0x80, 0xff];

  it('any one character changed anywhere is refused: every position and replacement, three packets', () => {
    const full = [
      made.find((m) => m.c.hmacType === 'sha256' && m.c.digestType === 'sha256')!,
      made.find((m) => m.c.name.startsWith('passphrase keys, HMAC sha512'))!,
      made.find((m) => m.c.legacy)!,
    ];
    let count = 0;
    for (const m of full) {
      for (let pos = 0; pos < m.packet.length; pos++) {
        for (const byte of REPLACEMENTS) {
          if (m.packet[pos] === byte) continue;
          const mutated = Buffer.from(m.packet);
          mutated[pos] = byte;
          expectRefused(m, mutated, `byte ${pos} -> 0x${byte.toString(16)}`);
          count++;
        }
      }
      // Removing or adding one character is refused too.
      for (let pos = 0; pos < m.packet.length; pos++) {
        expectRefused(
          m,
          Buffer.concat([m.packet.subarray(0, pos), m.packet.subarray(pos + 1)]),
          `byte ${pos} removed`,
        );
      }
      expectRefused(m, Buffer.concat([m.packet, Buffer.from('A')]), 'one more character');
    }
    expect(count).toBeGreaterThan(40_000);
  });

  it('any one character changed is refused: a sample for every other packet', () => {
    const rand = prng(4242);
    for (const m of made) {
      // The unmutated packet still decodes (so the refusals below are the mutation's doing).
      expect(() => decodePacketFields(m.packet, m.flags), m.c.name).not.toThrow();
      for (let k = 0; k < 150; k++) {
        const pos = Math.floor(rand() * m.packet.length);
        const byte = REPLACEMENTS[Math.floor(rand() * REPLACEMENTS.length)]!;
        if (m.packet[pos] === byte) continue;
        const mutated = Buffer.from(m.packet);
        mutated[pos] = byte;
        expectRefused(m, mutated, `byte ${pos} -> 0x${byte.toString(16)}`);
      }
      // The last character of the HMAC and the first of the ciphertext, always.
      for (const pos of [0, m.packet.length - 1]) {
        const mutated = Buffer.from(m.packet);
        mutated[pos] = mutated[pos] === 0x41 ? 0x42 : 0x41;
        expectRefused(m, mutated, `byte ${pos} flipped`);
      }
    }
  });

  it('the knockgate binary: JSON on stdout and exit 0; a changed packet gives one line and exit 2', async () => {
    const m = made[0]!;
    const keyArgs = Object.entries(m.c.keyFlags).flatMap(([f, v]) => [`--${f}`, v]);
    const run = (file: string) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [
            `${ROOT}node_modules/.bin/vite-node`,
            `${ROOT}cmd/knockgate.ts`,
            '--',
            'spa',
            'decode',
            '--file',
            file,
            ...keyArgs,
          ],
          { cwd: ROOT, timeout: 60_000 },
          (err, stdout, stderr) =>
            resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
        );
      });
    const ok = await run(m.file);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ username: m.c.user, randValue: m.client.randValue });
    const bad = Buffer.from(m.packet);
    bad[40] = bad[40] === 0x61 ? 0x62 : 0x61;
    const badFile = join(dir, 'mutated');
    writeFileSync(badFile, bad);
    const refused = await run(badFile);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(
      /^knockgate: spa decode: packet refused: HMAC does not match \(bad-hmac\)\n$/,
    );
  });
});
