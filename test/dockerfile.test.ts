// The image (no Docker engine here, so statically): the Dockerfile is multi-stage, its runtime stage
// installs the package of every program in EXTERNAL_PROGRAMS, and the product runs nothing else —
// Commands refuses an unlisted program, and no spawn in the sources names one outside the list.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../api/clock.js';
import { EXTERNAL_PROGRAMS } from '../controller/external-programs.js';
import { Commands } from '../controller/firewall/command.js';

const ROOT = join(import.meta.dirname, '..');
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

/** Stages of the Dockerfile: the FROM line and the packages its apt-get install lines name. */
function stages(text: string): { from: string; packages: Set<string> }[] {
  const joined = text.replace(/\\\n/g, ' ');
  const out: { from: string; packages: Set<string> }[] = [];
  for (const line of joined.split('\n')) {
    if (/^FROM\s/i.test(line)) out.push({ from: line, packages: new Set() });
    const install = /apt-get install\s+([^&|;]*)/.exec(line);
    if (install && out.length > 0)
      for (const word of install[1]!.trim().split(/\s+/))
        if (!word.startsWith('-')) out[out.length - 1]!.packages.add(word);
  }
  return out;
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

describe('Dockerfile and the external programs', () => {
  const [build, runtime] = [stages(dockerfile)[0]!, stages(dockerfile).at(-1)!];

  it('is multi-stage: the toolchain and headers in the build stage, libraries only at run time', () => {
    expect(stages(dockerfile).length).toBeGreaterThanOrEqual(2);
    expect(build.from).toMatch(/AS build/);
    for (const p of ['python3', 'make', 'g++', 'libpcap-dev']) expect(build.packages).toContain(p);
    expect(runtime.packages).toContain('libpcap0.8');
    for (const p of runtime.packages) expect(p).not.toMatch(/-dev$|^g\+\+$|^make$/);
    expect(dockerfile).toMatch(/npm prune --omit=dev/);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "\/app\/dist\/cmd\/knockgate\.js"\]$/m);
  });

  it("the runtime stage installs every listed program's package", () => {
    const missing = EXTERNAL_PROGRAMS.filter(
      (p) => !p.essential && !runtime.packages.has(p.debianPackage),
    ).map((p) => `${p.program} (${p.debianPackage})`);
    expect(missing).toEqual([]);
  });

  it('every listed program exists on this machine (make test installs the same packages)', () => {
    const absent = EXTERNAL_PROGRAMS.filter((p) => {
      try {
        execFileSync('sh', ['-c', `command -v "${p.program}"`], { stdio: 'ignore' });
        return false;
      } catch {
        return true;
      }
    }).map((p) => p.program);
    expect(absent).toEqual([]);
  });

  it('Commands refuses a program that is not listed, before spawning it', async () => {
    const commands = new Commands([], pino({ level: 'silent' }), systemClock);
    await expect(commands.run('rm', ['-rf', '/nonexistent'])).rejects.toThrow(/rm: not in EXTERNAL_PROGRAMS/);
    expect(() => commands.spawn('sh', [])).toThrow(/sh: not in EXTERNAL_PROGRAMS/);
  });

  it('no spawn, run or execFile in the product names a program outside the list', () => {
    const listed = new Set(EXTERNAL_PROGRAMS.map((p) => p.program));
    const found: string[] = [];
    for (const dir of ['api', 'cmd', 'controller', 'sniffer'])
      for (const file of sources(join(ROOT, dir))) {
        const text = readFileSync(file, 'utf8');
        for (const m of text.matchAll(/\b(?:spawn|spawnSync|execFile|execFileSync|exec|run)\(\s*'([^']+)'/g))
          if (!listed.has(m[1]!)) found.push(`${file.slice(ROOT.length + 1)}: ${m[1]}`);
      }
    expect(found).toEqual([]);
  });

  it('the README shows the multi-arch build', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toMatch(/docker buildx build --platform linux\/amd64,linux\/arm64/);
  });
});
