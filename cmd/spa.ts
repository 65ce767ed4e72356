// `knockgate spa`: send an SPA packet with the fwknop client's flags and wire format, and
// `knockgate spa decode`: print a packet's fields as JSON (troubleshooting).

import { readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { Command, Option } from 'commander';
import { systemClock } from '../api/clock.js';
import { decodeSpa, type SpaDecodeResult } from '../sniffer/spa/decode.js';
import { encodeSpa, SpaEncodeError } from '../sniffer/spa/encode.js';
import { SpaHmac } from '../sniffer/spa/hmac.js';
import { SPA_LIMITS } from '../sniffer/spa/limits.js';
import { SPA_REFUSALS } from '../sniffer/spa/reasons.js';
import { DIGEST_TYPES } from '../sniffer/spa/types.js';
import { CliError } from './errors.js';
import {
  addKeyOptions,
  keysFromFlags,
  parseDigestType,
  parseEncryptionMode,
  type SpaKeyFlags,
} from './spa-keys.js';
import { resolveDestination, sendSpa, type SpaTransport } from './spa-send.js';

interface SendFlags extends SpaKeyFlags {
  access?: string;
  allowIp?: string;
  sourceIp?: boolean;
  destination?: string;
  serverPort: string;
  serverProto: SpaTransport;
  hmacDigestType: string;
  digestType: string;
  fwTimeout?: string;
  spoofUser?: string;
  savePacket?: string;
  encryptionMode: string;
  test?: boolean;
}

export interface DecodeFlags extends SpaKeyFlags {
  file?: string;
  hmacDigestType?: string;
  encryptionMode: string;
}

function intFlag(flag: string, value: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < min || Number(value) > max)
    throw new CliError(`${flag}: want a whole number ${min}-${max}, got "${value}"`);
  return Number(value);
}

/** The fwknop client's username: SPOOF_USER, LOGNAME, USER, then the account name. */
function defaultUsername(): string {
  const env = process.env.SPOOF_USER || process.env.LOGNAME || process.env.USER;
  if (env) return env;
  try {
    return userInfo().username;
  } catch {
    return 'NO_USER';
  }
}

/** "tcp/22,udp/53" → ["tcp/22", "udp/53"]. */
function parseAccessList(value: string): string[] {
  const list = value.split(',').map((s) => s.trim().toLowerCase());
  for (const item of list) {
    if (
      !/^(tcp|udp)\/[0-9]{1,5}$/.test(item) ||
      Number(item.split('/')[1]) < 1 ||
      Number(item.split('/')[1]) > 65535
    )
      throw new CliError(`-A/--access: want PROTO/PORT[,PROTO/PORT...] such as tcp/22, got "${item}"`);
  }
  return list;
}

async function send(flags: SendFlags): Promise<void> {
  if (!flags.access) throw new CliError('-A/--access is required, e.g. -A tcp/22');
  if (!flags.destination) throw new CliError('-D/--destination is required');
  if (flags.allowIp && flags.sourceIp) throw new CliError('give -a/--allow-ip or -s/--source-ip, not both');
  if (!flags.allowIp && !flags.sourceIp) throw new CliError('give -a/--allow-ip IP (or -s/--source-ip)');
  const access = parseAccessList(flags.access);
  const port = intFlag('-p/--server-port', flags.serverPort, 1, 65535);
  const clientTimeout = flags.fwTimeout
    ? intFlag('-f/--fw-timeout', flags.fwTimeout, 1, SPA_LIMITS.maxClientTimeout)
    : 0;
  const keys = keysFromFlags(flags);
  let packet: string;
  try {
    packet = encodeSpa(
      {
        allowIp: flags.sourceIp ? '0.0.0.0' : flags.allowIp!,
        access,
        username: flags.spoofUser ?? defaultUsername(),
        timestamp: Math.floor(systemClock.now() / 1000),
        clientTimeout,
      },
      {
        key: keys.key,
        hmacKey: keys.hmacKey,
        hmacType: parseDigestType('--hmac-digest-type', flags.hmacDigestType),
        digestType: parseDigestType('--digest-type', flags.digestType),
        encryptionMode: parseEncryptionMode(flags.encryptionMode),
      },
    );
  } catch (err) {
    if (err instanceof SpaEncodeError) throw new CliError(err.message);
    throw err;
  }
  if (flags.savePacket) {
    try {
      writeFileSync(flags.savePacket, `${packet}\n`, { mode: 0o600 });
    } catch (err) {
      throw new CliError(
        `-B/--save-packet: cannot write ${flags.savePacket}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      );
    }
  }
  if (flags.test) return;
  let dest: Awaited<ReturnType<typeof resolveDestination>>;
  try {
    dest = await resolveDestination(flags.destination);
  } catch {
    throw new CliError(`-D/--destination: cannot resolve "${flags.destination}"`);
  }
  try {
    await sendSpa(packet, dest, port, flags.serverProto);
  } catch (err) {
    throw new CliError(
      `sending to ${dest.address} port ${port}/${flags.serverProto}: ${(err as Error).message}`,
      1,
    );
  }
}

function readPacket(file: string | undefined): Buffer {
  let text: string;
  try {
    if (file) text = readFileSync(file, 'latin1');
    else if (process.stdin.isTTY)
      throw new CliError('no packet: give --file FILE or pipe the packet on stdin');
    else text = readFileSync(0, 'latin1');
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot read ${file ?? 'stdin'}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  const packet = text.trim();
  if (packet.includes('\n'))
    throw new CliError(`${file ?? 'stdin'}: expected one packet, found several lines`);
  return Buffer.from(packet, 'latin1');
}

/** The fields `spa decode` prints, as JSON. */
export interface DecodedPacketJson {
  username: string;
  timestamp: number;
  version: string;
  messageType: string;
  accessMessage: string;
  natAccess: string | null;
  serverAuth: string | null;
  clientTimeout: number;
  digestType: string;
  hmacType: string;
  encryptionMode: string;
  digest: string;
  randValue: string;
}

/**
 * What `spa decode` prints for one packet: its fields, authenticated and decrypted with the keys in
 * `flags`. Throws CliError (one line, the refusal reason) when the packet is refused.
 */
export function decodePacketFields(packet: Uint8Array, flags: DecodeFlags): DecodedPacketJson {
  const keys = keysFromFlags(flags);
  const encryptionMode = parseEncryptionMode(flags.encryptionMode);
  // Without --hmac-digest-type every type is tried: the packet does not name its own.
  const hmacTypes = flags.hmacDigestType
    ? [parseDigestType('--hmac-digest-type', flags.hmacDigestType)]
    : DIGEST_TYPES;
  let result: SpaDecodeResult = { ok: false, reason: 'bad-hmac' };
  if (!keys.hmacKey) {
    result = decodeSpa(packet, { key: keys.key, encryptionMode, allowMissingHmac: true });
  } else {
    // A type whose HMAC is longer than the packet allows says "not-spa"; the packet is then only
    // refused for that reason when no type got as far as comparing an HMAC.
    let hmacCompared = false;
    for (const type of hmacTypes) {
      result = decodeSpa(packet, {
        key: keys.key,
        encryptionMode,
        allowMissingHmac: false,
        hmac: new SpaHmac(type, keys.hmacKey),
      });
      if (result.ok || (result.reason !== 'bad-hmac' && result.reason !== 'not-spa')) break;
      if (result.reason === 'bad-hmac') hmacCompared = true;
    }
    if (!result.ok && result.reason === 'not-spa' && hmacCompared) result = { ok: false, reason: 'bad-hmac' };
  }
  if (!result.ok)
    throw new CliError(`spa decode: packet refused: ${SPA_REFUSALS[result.reason]} (${result.reason})`);
  const p = result.packet;
  return {
    username: p.username,
    timestamp: p.timestamp,
    version: p.version,
    messageType: p.messageType,
    accessMessage: p.accessMessage,
    natAccess: p.natAccess ?? null,
    serverAuth: p.serverAuth ?? null,
    clientTimeout: p.clientTimeout,
    digestType: p.digestType,
    hmacType: p.hmacType,
    encryptionMode: p.encryptionMode,
    digest: p.digest,
    randValue: p.randValue,
  };
}

function decode(flags: DecodeFlags): void {
  const out = decodePacketFields(readPacket(flags.file), flags);
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

/**
 * `spa` and `spa decode` share option names. Unless the root program uses positional options,
 * commander hands the options written after `decode` to `spa` itself; whatever the user wrote on
 * the command line, on either, counts for decode.
 */
function decodeFlags(cmd: Command): DecodeFlags {
  const flags: Record<string, unknown> = { ...cmd.opts() };
  const parent = cmd.parent;
  if (parent) {
    for (const [name, value] of Object.entries(parent.opts())) {
      if (parent.getOptionValueSource(name) === 'cli') flags[name] = value;
    }
  }
  return flags as unknown as DecodeFlags;
}

export function register(program: Command): void {
  const spa = addKeyOptions(
    new Command('spa')
      .description('send an SPA packet (fwknop client flags and wire format); `spa decode` prints one')
      .enablePositionalOptions()
      .option('-A, --access <list>', 'ports to open, e.g. tcp/22 or tcp/22,udp/53')
      .option('-a, --allow-ip <ip>', 'address to open for (IPv4 or IPv6)')
      .option('-s, --source-ip', 'let the server use the packet source address (allow IP 0.0.0.0)')
      .option('-D, --destination <host>', 'the SPA server (IPv4, IPv6 or host name)')
      .option('-p, --server-port <port>', 'destination port', String(SPA_LIMITS.defaultPort))
      .addOption(
        new Option('-P, --server-proto <proto>', 'transport').choices(['udp', 'tcp']).default('udp'),
      ),
  )
    .option('--hmac-digest-type <type>', `HMAC digest: ${DIGEST_TYPES.join(', ')}`, 'sha256')
    .option('-m, --digest-type <type>', `message digest: ${DIGEST_TYPES.join(', ')}`, 'sha256')
    .option('-f, --fw-timeout <seconds>', 'ask the server to open for this long')
    .option('-U, --spoof-user <user>', 'username in the packet (default: $SPOOF_USER, $LOGNAME, $USER)')
    .option('-B, --save-packet <file>', 'also write the packet, as sent, to this file')
    .option('-M, --encryption-mode <mode>', 'cbc or legacy (fwknop before 2.5; no HMAC)', 'cbc')
    .option('-T, --test', 'build the packet (and save it with -B) without sending it')
    .action(async (flags: SendFlags) => send(flags));

  addKeyOptions(
    spa
      .command('decode')
      .description('decode and authenticate one SPA packet and print its fields as JSON')
      .option('--file <file>', 'read the packet from this file (default: stdin)'),
  )
    .option('--hmac-digest-type <type>', `HMAC digest (default: try each of ${DIGEST_TYPES.join(', ')})`)
    .option('-M, --encryption-mode <mode>', 'cbc or legacy', 'cbc')
    .action((_flags: DecodeFlags, cmd: Command) => decode(decodeFlags(cmd)));

  program.addCommand(spa);
}
