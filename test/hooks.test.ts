import { describe, expect, it } from 'vitest';
import { HookError, renderCommand, runCommand } from '../controller/hooks.js';

describe('command templates', () => {
  it("substitutes knockd's %IP% and fwknop's variables", () => {
    expect(
      renderCommand('/sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT', { ip: '10.1.2.3' }),
    ).toBe('/sbin/iptables -A INPUT -s 10.1.2.3 -p tcp --dport 22 -j ACCEPT');
    expect(
      renderCommand('/conf/ssh $SRC $PORT $PROTO $TIMEOUT $CLIENT_TIMEOUT $PKT_SRC $DST', {
        ip: 'fd00::7',
        pktSrc: '10.0.0.9',
        dst: '10.0.0.1',
        port: 22,
        proto: 'tcp',
        expiresAtSeconds: 1700000000,
        clientTimeout: 0,
      }),
    ).toBe('/conf/ssh fd00::7 22 tcp 1700000000 0 10.0.0.9 10.0.0.1');
  });

  it('leaves unrelated shell variables alone and refuses unknown knockgate values', () => {
    expect(renderCommand('echo $HOME %IP%', { ip: '10.0.0.1' })).toBe('echo $HOME 10.0.0.1');
    expect(() => renderCommand('open $PORT', { ip: '10.0.0.1' })).toThrow(HookError);
  });

  it('never substitutes anything but a validated address, port or protocol', () => {
    expect(() => renderCommand('x %IP%', { ip: '10.0.0.1; rm -rf /' })).toThrow(HookError);
    expect(() => renderCommand('x %IP%', { ip: '$(id)' })).toThrow(HookError);
    expect(() => renderCommand('x $PORT', { ip: '10.0.0.1', port: 70000 })).toThrow(HookError);
    expect(() => renderCommand('x $PROTO', { ip: '10.0.0.1', proto: 'tcp;id' as 'tcp' })).toThrow(HookError);
  });
});

describe('running commands', () => {
  it('reports exit status and output', async () => {
    const ok = await runCommand('echo hello; echo oops >&2');
    expect(ok).toMatchObject({ ok: true, exitCode: 0, stdout: 'hello', stderr: 'oops', timedOut: false });
    const bad = await runCommand('exit 3');
    expect(bad).toMatchObject({ ok: false, exitCode: 3 });
  });

  it('kills a command that outlives its time limit and counts it as failed', async () => {
    const r = await runCommand('sleep 30', { timeLimitMs: 200 });
    expect(r.ok).toBe(false);
    expect(r.timedOut).toBe(true);
  });
});
