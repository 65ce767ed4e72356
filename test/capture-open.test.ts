// openCapture (sniffer/capture/capture.ts) with the real libpcap through cap, on loopback only:
// a frame sent to the filtered port arrives and decodes; the buffer size is checked; when one of
// several interfaces cannot be opened nothing stays open (counted in /proc/net/packet, the packet
// sockets of this network namespace). Several real interfaces at once are covered live in
// test/knock-live.test.ts.

import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CAPTURE_BUFFER, CaptureError, openCapture } from '../sniffer/capture/capture.js';
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
  });
});

describe.skipIf(skipWithoutNetns('capture on loopback'))('capture on loopback (root)', () => {
  it('delivers a frame that matches the filter, with the buffer size given', async () => {
    const before = packetSockets();
    const frame = new DecodedFrame();
    const seen: number[] = [];
    const capture = openCapture({
      interfaces: ['lo'],
      filterFor: () => `udp dst port ${PORT}`,
      bufferBytes: CAPTURE_BUFFER.minBytes,
      onFrame: (buf, length, link) => {
        if (decodeFrame(buf, length, link, frame)) seen.push(frame.dstPort);
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
      const [drops] = capture.drops();
      expect(drops).toMatchObject({ interface: 'lo', estimate: true });
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
});
