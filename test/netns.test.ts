import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Topology, skipWithoutNetns } from './helpers/netns.js';

describe.skipIf(skipWithoutNetns('netns topology'))('test topology', () => {
  let net: Topology;
  beforeAll(async () => {
    net = await Topology.create(['srv', 'cli', 'other']);
  });
  afterAll(async () => {
    await net?.destroy();
  });

  it('joins each spoke to the hub over IPv4 and IPv6, and nowhere else', async () => {
    const srv = net.ns('srv');
    const cli = net.ns('cli');
    await cli.run('ping', ['-c1', '-W2', srv.addr4['cli']!]);
    await cli.run('ping', ['-6', '-c1', '-W2', srv.addr6['cli']!]);
    const { stdout } = await cli.run('ip', ['route', 'show', 'default']);
    expect(stdout.trim()).toBe('');
  });
});
