// openCapture (sniffer/capture/capture.ts) with the real libpcap through knockgate's addon
// (native/pcap_capture.c), on loopback only: a frame sent to the filtered port arrives and decodes;
// a burst arrives whole in batches, counted by pcap_stats; the snap length truncates; the buffer size
// and snap length are checked; when one of several interfaces cannot be opened nothing stays open
// (counted in /proc/net/packet, the packet sockets of this network namespace), and failed handles are
// safe to garbage-collect. Several real interfaces at once are covered live in test/knock-live.test.ts.

import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { CAPTURE_BUFFER, CAPTURE_SNAPLEN, CaptureError, openCapture } from '../sniffer/capture/capture.js';
import { pcapAddon } from '../sniffer/capture/addon.js';
import { decodeFrame } from '../sniffer/frames/decode.js';
import { DecodedFrame } from '../sniffer/frames/frame.js';
import { skipWithoutNetns, waitFor } from './helpers/netns.js';

const PORT = 47_000 + (process.pid % 1000);

function packetSockets(): number {
  return readFileSync('/proc/net/packet', 'utf8').trim().split('\n').length - 1;
}

describe('capture options', () => {
  it('refuses a buffer size out of range with one line, before opening anything', () => {
    for (const bufferBytes of [0, CAPTURE_BUFFER.minBytes - 1, CAPTURE_BUFFER.maxBytes + 1, 1.5]) {
      expect(() =>
        openCapture({ interfaces: ['lo'], filterFor: () => 'udp', bufferBytes, onFrame: () => undefined }),
      ).toThrow(/^capture buffer size .* is out of range/);
    }
    for (const snaplen of [0, CAPTURE_SNAPLEN.minBytes - 1, CAPTURE_SNAPLEN.maxBytes + 1]) {
      expect(() =>
        openCapture({ interfaces: ['lo'], filterFor: () => 'udp', snaplen, onFrame: () => undefined }),
      ).toThrow(/^capture snap length .* is out of range/);
    }
  });

  it('keeps the largest SPA packet whole by default', () => {
    expect(CAPTURE_SNAPLEN.defaultBytes).toBeGreaterThanOrEqual(1500 + 8 + 40 + 4 + 20);
  });
});

describe.skipIf(skipWithoutNetns('capture on loopback'))('capture on loopback (root)', () => {
  it('delivers a frame that matches the filter, with the buffer size given', async () => {
    const before = packetSockets();
    const frame = new DecodedFrame();
    const seen: number[] = [];
    const late: number[] = [];
    const capture = openCapture({
      interfaces: ['lo'],
      filterFor: () => `udp dst port ${PORT}`,
      bufferBytes: CAPTURE_BUFFER.minBytes,
      onFrame: (buf, length, link, _iface, _truncated, _spa, capturedAtMs) => {
        if (decodeFrame(buf, length, link, frame)) seen.push(frame.dstPort);
        // The kernel's receive time: in the past, and not by much (µs precision, wall clock).
        late.push(Date.now() + 1 - capturedAtMs);
      },
    });
    const socket = createSocket('udp4');
    try {
      expect(capture.interfaces).toEqual(['lo']);
      expect(packetSockets()).toBe(before + 1);
      await waitFor(
        async () => {
          await new Promise<void>((r) => socket.send(Buffer.from('x'), PORT, '127.0.0.1', () => r()));
          return seen.length > 0;
        },
        { what: 'the datagram to be captured', intervalMs: 200 },
      );
      expect(seen.every((p) => p === PORT)).toBe(true);
      expect(late.every((ms) => ms >= 0 && ms < 5000)).toBe(true);
      const [drops] = capture.drops();
      expect(drops).toMatchObject({ interface: 'lo', dropped: 0 });
      expect(drops!.received).toBeGreaterThanOrEqual(seen.length);
    } finally {
      socket.close();
      capture.close();
    }
    expect(packetSockets()).toBe(before);
  });

  it('opens every interface or none: a missing one is named and the others are closed again', () => {
    const before = packetSockets();
    expect(() =>
      openCapture({
        interfaces: ['lo', 'kgnosuch0'],
        filterFor: () => 'udp',
        onFrame: () => undefined,
      }),
    ).toThrow(CaptureError);
    try {
      openCapture({ interfaces: ['lo', 'kgnosuch0'], filterFor: () => 'udp', onFrame: () => undefined });
    } catch (err) {
      expect((err as Error).message).toMatch(/^cannot capture on kgnosuch0: /);
      expect((err as Error).message).not.toContain('\n');
    }
    expect(packetSockets()).toBe(before);
  });

  it('refuses an empty filter rather than capturing everything', () => {
    expect(() => openCapture({ interfaces: ['lo'], filterFor: () => ' ', onFrame: () => undefined })).toThrow(
      /without a filter/,
    );
  });

  it('delivers a burst whole in batches, truncates at the snap length and counts it in pcap_stats', async () => {
    const port = PORT + 1;
    const lengths: number[] = [];
    let truncated = 0;
    const capture = openCapture({
      interfaces: ['lo'],
      filterFor: () => `udp dst port ${port}`,
      snaplen: 256,
      onFrame: (_buf, length, _link, iface, trunc) => {
        expect(iface).toBe('lo');
        lengths.push(length);
        if (trunc) truncated++;
      },
    });
    const socket = createSocket('udp4');
    const burst = 600;
    try {
      for (let i = 0; i < burst; i++) {
        await new Promise<void>((r) =>
          socket.send(Buffer.alloc(i % 2 ? 100 : 1000), port, '127.0.0.1', () => r()),
        );
      }
      await waitFor(() => lengths.length >= burst, { what: `all ${burst} datagrams to be captured` });
      expect(lengths.length).toBe(burst);
      expect(truncated).toBe(burst / 2);
      expect(Math.max(...lengths)).toBe(256);
      const [drops] = capture.drops();
      expect(drops).toMatchObject({ interface: 'lo', dropped: 0 });
      expect(drops!.received).toBeGreaterThanOrEqual(burst);
    } finally {
      socket.close();
      capture.close();
      capture.close(); // idempotent
    }
    expect(capture.drops()).toEqual([]);
  });

  it('names the device and the filter error in one line', () => {
    expect(() =>
      openCapture({ interfaces: ['lo'], filterFor: () => 'udp dst port nope', onFrame: () => undefined }),
    ).toThrow(/^cannot capture on lo: bad filter: [^\n]+$/);
  });

  it('survives garbage collection of handles that failed to open, were closed or were left open', async () => {
    const { PcapHandle } = pcapAddon();
    const before = packetSockets();
    for (let i = 0; i < 20; i++) {
      const failed = new PcapHandle();
      expect(() =>
        failed.open('kgnosuch0', 'udp', 2048, 1 << 20, Buffer.alloc(4096), () => undefined),
      ).toThrow(/^cannot capture on kgnosuch0: /);
      const closed = new PcapHandle();
      closed.open('lo', 'udp dst port 9', 2048, 1 << 20, Buffer.alloc(4096), () => undefined);
      closed.close();
      expect(closed.stats()).toBeUndefined();
      new PcapHandle().open('lo', 'udp dst port 9', 2048, 1 << 20, Buffer.alloc(4096), () => undefined);
    }
    // left-open handles are closed by their finalizer
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    {
      await waitFor(
        async () => {
          gc();
          await new Promise((r) => setTimeout(r, 50));
          return packetSockets() === before;
        },
        { what: 'garbage-collected handles to close their sockets' },
      );
    }
  });
});
