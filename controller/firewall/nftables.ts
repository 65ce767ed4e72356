// nftables backend: one `table inet knockgate` holding everything, both families.
//
//   chain raw         hook prerouting priority -300 (raw): knock/SPA ports NOTRACK + DROP
//   chain prerouting  hook prerouting priority -150 (mangle; before dstnat at -100, so NodePort
//                     and hostPort services are matched on the port the client used): protected
//                     ports jump to guard
//   chain guard       alwaysAllow → ct established,related → @grants4/@grants6 → drop (or, in
//                     Audit, count and log)
//
// Grants are elements of `flags timeout` sets, each with its own timeout, so the kernel removes
// them at their end even if knockgate is gone. The whole table is replaced in one transaction, and
// each batch of per-grant changes (the firewall coalesces the grants that arrive while one runs) is
// one transaction too. Both go through libnftables in this process when it acts in the right network
// namespace (nft-in-process.ts): no fork, no pipe, no other process to wake — at 10,000 elements
// the fork of `nft -f -` and the text through a pipe were most of the time. Without the library
// (or with a command prefix such as `ip netns exec`) the whole table and bursts of more than
// nftSessionMaxElements go through a one-shot `nft -f -`, smaller changes through a long-lived
// `nft -i`. In-process, changes of up to nftSessionMaxElements skip libnftables too: the same
// transaction as element operations straight over nfnetlink (changeOps, native/nft_elements.c),
// without the library's per-call cache rebuild (a generation check and four dumps).

import type { Clock } from '../../api/clock.js';
import type { Logger } from '../../api/log.js';
import type { PortRef } from '../../api/ports.js';
import { CommandError, excerpt, type Commands } from './command.js';
import type { Backend } from './backend.js';
import type { Element, ElementChange, ElementKey } from './elements.js';
import { destroyOwnSets } from './leftovers.js';
import { removeOwnChains } from './xtables.js';
import { FIREWALL_LIMITS, NAMES } from './limits.js';
import { LineSession } from './session.js';
import { FirewallApplyError, FirewallUnavailableError } from './types.js';
import type { ValidConfig } from './validate.js';

const T = NAMES.nftTable;

function setName(family: 4 | 6): string {
  return family === 4 ? 'grants4' : 'grants6';
}

function keyText(k: ElementKey): string {
  return `${k.address} . ${k.proto} . ${k.port}`;
}

function portItems(ports: PortRef[]): string[] {
  return ports.map((p) => `${p.proto} . ${p.port}`);
}

function elementsClause(items: string[]): string {
  return items.length > 0 ? ` elements = { ${items.join(', ')} };` : '';
}

/** Milliseconds left, or undefined when the element has already ended. */
function remainingMs(e: Element, now: number): number | undefined {
  const ms = Math.floor(e.expiresAt - now);
  return ms > 0 ? ms : undefined;
}

export function renderTable(config: ValidConfig, elements: Element[], now: number): string {
  const grants = { 4: [] as string[], 6: [] as string[] };
  for (const e of elements) {
    const ms = remainingMs(e, now);
    if (ms !== undefined) grants[e.family].push(`${keyText(e)} timeout ${ms}ms`);
  }
  const enforce = config.mode === 'Enforce';
  const deny = enforce
    ? 'counter name denied drop'
    : `counter name denied limit rate ${FIREWALL_LIMITS.auditLogPerSecond}/second burst ` +
      `${FIREWALL_LIMITS.auditLogBurst} packets log prefix "${NAMES.auditLogPrefix}" level info`;
  return [
    // Create-then-delete makes the delete valid whether or not the table exists; all three
    // statements are one transaction, so packets see either the old table or the new one.
    `table inet ${T} {}`,
    `delete table inet ${T}`,
    `table inet ${T} {`,
    `  set protected { type inet_proto . inet_service;${elementsClause(portItems(config.protectedPorts))} }`,
    `  set knock { type inet_proto . inet_service;${elementsClause(portItems(config.knockPorts))} }`,
    `  set allow4 { type ipv4_addr; flags interval; auto-merge;${elementsClause(config.allow4)} }`,
    `  set allow6 { type ipv6_addr; flags interval; auto-merge;${elementsClause(config.allow6)} }`,
    `  set grants4 { type ipv4_addr . inet_proto . inet_service; flags timeout;${elementsClause(grants[4])} }`,
    `  set grants6 { type ipv6_addr . inet_proto . inet_service; flags timeout;${elementsClause(grants[6])} }`,
    `  counter denied {}`,
    `  chain raw {`,
    `    type filter hook prerouting priority -300; policy accept;`,
    `    meta l4proto . th dport @knock notrack${enforce ? ' drop' : ''}`,
    `  }`,
    `  chain prerouting {`,
    `    type filter hook prerouting priority -150; policy accept;`,
    // Connections from this host to itself arrive on lo and are not the network's to knock for.
    `    iif "lo" accept`,
    `    meta l4proto . th dport @protected jump guard`,
    `  }`,
    `  chain guard {`,
    `    ip saddr @allow4 accept`,
    `    ip6 saddr @allow6 accept`,
    `    ct state established,related accept`,
    `    ip saddr . meta l4proto . th dport @grants4 accept`,
    `    ip6 saddr . meta l4proto . th dport @grants6 accept`,
    `    ${deny}`,
    `  }`,
    `}`,
    '',
  ].join('\n');
}

/**
 * One transaction that sets each changed element to exactly its new state. For a key some grant
 * already covered, `add` (a no-op when the element exists) then `delete` then `add` again works
 * whether the element exists, is absent or has just expired, on every kernel: no ENOENT to recover
 * from, and no reliance on the newer kernels' in-place timeout update. A fresh key (no grant
 * covered it, so the kernel holds no live element for it: ElementChange.fresh) is one plain `add`
 * — a third of the text for nft to parse in a burst of new grants.
 */
export function renderChanges(changes: ElementChange[], now: number): string {
  // Counted first, so that the parts list is sized once.
  let touched4 = 0;
  let wanted4 = 0;
  let touched6 = 0;
  let wanted6 = 0;
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i]!;
    const wanted = c.element !== undefined && remainingMs(c.element, now) !== undefined;
    if (c.key.family === 4) {
      if (!c.fresh) touched4++;
      if (wanted) wanted4++;
    } else {
      if (!c.fresh) touched6++;
      if (wanted) wanted6++;
    }
  }
  // The text as parts, joined once at the end: per element its address, the text after it (one
  // string per protocol and port, shared), its timeout and separator; no string of its own (a
  // burst renders 10,000, and each would live until the join).
  const size = (t: number, w: number) => (t > 0 ? 3 + 6 * t : 0) + (w > 0 ? 2 + 4 * w : 0);
  const out: Parts = { list: new Array(size(touched4, wanted4) + size(touched6, wanted6)), n: 0 };
  const tails: Tails = { expire: new Map(), bare: new Map(), timeout: new Map() };
  renderFamily(out, 4, changes, touched4 > 0, wanted4 > 0, tails, now);
  renderFamily(out, 6, changes, touched6 > 0, wanted6 > 0, tails, now);
  return out.list.join('');
}

interface Parts {
  list: (string | number)[];
  n: number;
}

/**
 * What follows the address in an element's text, by protocol and port, made once per render:
 * ` . tcp . 22 timeout 1s` (expire), ` . tcp . 22` (bare) and ` . tcp . 22 timeout ` (timeout).
 */
interface Tails {
  expire: Map<number, string>;
  bare: Map<number, string>;
  timeout: Map<number, string>;
}

function keyTail(tails: Map<number, string>, k: ElementKey, after: string): string {
  const id = k.port * 2 + (k.proto === 'udp' ? 1 : 0);
  let tail = tails.get(id);
  if (tail === undefined) tails.set(id, (tail = ` . ${k.proto} . ${k.port}${after}`));
  return tail;
}

/**
 * One family's commands of renderChanges ("; " between commands). Each element's last part is
 * its separator, ", "; the list's last becomes the list's end.
 */
function renderFamily(
  out: Parts,
  family: 4 | 6,
  changes: ElementChange[],
  touched: boolean,
  wanted: boolean,
  tails: Tails,
  now: number,
): void {
  const set = `inet ${T} ${setName(family)} { `;
  const p = out.list;
  if (touched) {
    p[out.n] = out.n === 0 ? 'add element ' : '; add element ';
    p[out.n + 1] = set;
    out.n += 2;
    touchedKeys(out, family, changes, tails.expire, ' timeout 1s');
    p[out.n - 1] = ' }; delete element ';
    p[out.n++] = set;
    touchedKeys(out, family, changes, tails.bare, '');
    p[out.n - 1] = ' }';
  }
  if (wanted) {
    p[out.n] = out.n === 0 ? 'add element ' : '; add element ';
    p[out.n + 1] = set;
    out.n += 2;
    for (let i = 0; i < changes.length; i++) {
      const c = changes[i]!;
      if (c.key.family !== family) continue;
      const ms = c.element && remainingMs(c.element, now);
      if (ms === undefined) continue;
      p[out.n++] = c.key.address;
      p[out.n++] = keyTail(tails.timeout, c.key, ' timeout ');
      p[out.n++] = ms;
      p[out.n++] = 'ms, ';
    }
    p[out.n - 1] = 'ms }';
  }
}

/** The non-fresh keys of `family`, each as address, tail and ", ". */
function touchedKeys(
  out: Parts,
  family: 4 | 6,
  changes: ElementChange[],
  tails: Map<number, string>,
  after: string,
): void {
  const p = out.list;
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i]!;
    if (c.key.family !== family || c.fresh) continue;
    p[out.n++] = c.key.address;
    p[out.n++] = keyTail(tails, c.key, after);
    p[out.n++] = ', ';
  }
}

/** One set-element operation for InProcessNft.elements (native/nft_elements.c). */
export interface NftElementOp {
  op: 0 | 1; // add, delete
  set: string;
  family: 4 | 6;
  addresses: string[];
  protos: number[]; // 6 tcp, 17 udp
  ports: number[];
  timeoutsMs?: number[]; // add only
}

/** libnftables in this process (the capture addon's nftRun), when it can act where nft would. */
export interface InProcessNft {
  /** "" when usable, else why not. */
  available(): string;
  /** One transaction; "" on success, else nft's error text. */
  run(text: string): string;
  /**
   * Element changes as one transaction straight over nfnetlink (no libnftables cache to rebuild
   * first); "" on success, else the kernel's refusal in one line. Optional: without it every
   * change goes through run().
   */
  elements?(table: string, ops: NftElementOp[]): string;
}

const PROTO_NUMBER = { tcp: 6, udp: 17 } as const;

/**
 * The same transaction as renderChanges, as element operations: per family, touched keys added
 * (1 s, a no-op when present) and deleted, then the wanted ones added with their timeouts.
 */
export function changeOps(changes: ElementChange[], now: number): NftElementOp[] {
  const ops: NftElementOp[] = [];
  for (const f of [4, 6] as const) {
    const touched: ElementKey[] = [];
    const wanted: { key: ElementKey; ms: number }[] = [];
    for (const c of changes) {
      if (c.key.family !== f) continue;
      if (!c.fresh) touched.push(c.key);
      const ms = c.element && remainingMs(c.element, now);
      if (ms !== undefined) wanted.push({ key: c.key, ms });
    }
    const op = (kind: 0 | 1, keys: ElementKey[], timeoutsMs?: number[]): NftElementOp => ({
      op: kind,
      set: setName(f),
      family: f,
      addresses: keys.map((k) => k.address),
      protos: keys.map((k) => PROTO_NUMBER[k.proto]),
      ports: keys.map((k) => k.port),
      ...(timeoutsMs ? { timeoutsMs } : {}),
    });
    if (touched.length > 0) {
      ops.push(
        op(
          0,
          touched,
          touched.map(() => 1000),
        ),
      );
      ops.push(op(1, touched));
    }
    if (wanted.length > 0)
      ops.push(
        op(
          0,
          wanted.map((w) => w.key),
          wanted.map((w) => w.ms),
        ),
      );
  }
  return ops;
}

export class NftablesBackend implements Backend {
  readonly name = 'nftables' as const;
  readonly atomicChanges = true;
  private readonly session: LineSession;
  /** Decided at the first change: libnftables in-process, or the `nft -i` session. */
  private direct: InProcessNft | null | undefined;

  constructor(
    private readonly commands: Commands,
    private readonly logger: Logger,
    clock: Clock,
    private readonly inProcess?: InProcessNft,
  ) {
    this.session = new LineSession(
      commands,
      {
        command: 'nft',
        args: ['-i'],
        // A line nft cannot parse: it answers on stderr with "Error: syntax error ...", the line
        // itself, and a caret line.
        sentinel: (seq) => ({
          line: `knockgate-ack-${seq}`,
          answer: new RegExp(`(?:^|\\n)Error: [^\\n]*\\nknockgate-ack-${seq}\\n[ ^~]*\\n`),
        }),
      },
      logger,
      clock,
    );
  }

  async toolPresent(): Promise<boolean> {
    try {
      await this.commands.run('nft', ['--version']);
      return true;
    } catch (err) {
      if (err instanceof CommandError && err.notFound) return false;
      throw err;
    }
  }

  async preflight(): Promise<void> {
    if (!(await this.toolPresent()))
      throw new FirewallUnavailableError(
        'nftables backend: the nft program is not installed (Debian: nftables)',
      );
    try {
      await this.commands.run('nft', ['list', 'tables']);
    } catch (err) {
      throw new FirewallUnavailableError(
        `nftables backend: the kernel does not answer nft (nf_tables module missing or no CAP_NET_ADMIN): ${(err as Error).message}`,
      );
    }
  }

  async applyAll(config: ValidConfig, elements: Element[], now: number): Promise<void> {
    const text = renderTable(config, elements, now);
    const direct = this.directNft();
    try {
      if (direct) {
        const answer = direct.run(text);
        if (answer !== '') throw new Error(excerpt(answer));
      } else
        await this.commands.run('nft', ['-f', '-'], {
          input: text,
          timeoutMs: FIREWALL_LIMITS.applyTimeoutMs,
        });
    } catch (err) {
      throw new FirewallApplyError(
        `nftables: ruleset not applied, previous one kept: ${(err as Error).message}`,
      );
    }
  }

  async applyChanges(
    _config: ValidConfig,
    changes: ElementChange[],
    _all: () => Element[],
    now: number,
  ): Promise<void> {
    if (changes.length === 0) return;
    const direct = this.directNft();
    if (direct?.elements && changes.length <= FIREWALL_LIMITS.nftSessionMaxElements) {
      // The per-grant path: straight to the kernel (native/nft_elements.c).
      const ops = changeOps(changes, now);
      if (ops.length === 0) return;
      let answer: string;
      try {
        answer = direct.elements(T, ops);
      } catch (err) {
        throw new FirewallApplyError(`nftables: ${(err as Error).message}`);
      }
      if (answer !== '') throw new FirewallApplyError(`nftables: grant change refused: ${excerpt(answer)}`);
      return;
    }
    const text = renderChanges(changes, now);
    if (!direct && changes.length > FIREWALL_LIMITS.nftSessionMaxElements) {
      // A burst: one transaction through `nft -f` (the interactive reader is slow on long lines).
      try {
        await this.commands.run('nft', ['-f', '-'], {
          input: text + '\n',
          timeoutMs: FIREWALL_LIMITS.applyTimeoutMs,
        });
      } catch (err) {
        throw new FirewallApplyError(`nftables: grant change refused: ${(err as Error).message}`);
      }
      return;
    }
    let answer: string;
    try {
      answer = direct ? direct.run(text) : await this.session.request([text]);
    } catch (err) {
      throw new FirewallApplyError(`nftables: ${(err as Error).message}`);
    }
    if (answer !== '') throw new FirewallApplyError(`nftables: grant change refused: ${excerpt(answer)}`);
  }

  /**
   * libnftables in this process when the commands run in this process's network namespace (no
   * command prefix such as `ip netns exec`) and the library loads; else the `nft -i` session.
   */
  private directNft(): InProcessNft | null {
    if (this.direct !== undefined) return this.direct;
    const why = !this.inProcess
      ? 'not configured'
      : !this.commands.local
        ? 'nft runs in another namespace (command prefix)'
        : this.inProcess.available();
    this.direct = why === '' ? this.inProcess! : null;
    this.logger.debug(
      { backend: this.name, inProcess: why === '', why: why || undefined },
      why === ''
        ? 'nftables: ruleset and grant changes through libnftables in-process'
        : 'nftables: ruleset through nft -f, grant changes through nft -i',
    );
    return this.direct;
  }

  async removeOthers(): Promise<string[]> {
    // Chains first: the ipsets cannot be destroyed while a rule references them.
    return [...(await removeOwnChains(this.commands)), ...(await destroyOwnSets(this.commands))];
  }

  async removeOwn(): Promise<void> {
    await this.commands.run('nft', ['-f', '-'], { input: `table inet ${T} {}\ndelete table inet ${T}\n` });
  }

  close(): Promise<void> {
    return this.session.close();
  }
}
