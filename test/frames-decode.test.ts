import { describe, expect, it } from 'vitest';
import {
  DecodedFrame,
  LinkType,
  decodeFrame,
  linkTypeFromCap,
  toInboundPacket,
} from '../sniffer/frames/index.js';
import {
  buildFrame,
  ipv4Packet,
  linkFrame,
  tcpSegment,
  type FrameSpec,
  type Link,
} from './helpers/capture-frames.js';

const LINK_OF: Record<Link['kind'], LinkType> = {
  ethernet: LinkType.Ethernet,
  sll: LinkType.LinuxSll,
  sll2: LinkType.LinuxSll2,
  raw: LinkType.Raw,
};

function decode(spec: FrameSpec) {
  const frame = buildFrame(spec);
  const f = new DecodedFrame();
  const ok = decodeFrame(frame, frame.length, LINK_OF[spec.link?.kind ?? 'ethernet'], f);
  return ok ? toInboundPacket(f, 1234) : undefined;
}

const syn = { proto: 'tcp', srcPort: 40000, dstPort: 7000, flags: 0x02 } as const;
const spa = { proto: 'udp', srcPort: 50000, dstPort: 62201, payload: Buffer.from('hello spa') } as const;

describe('frame decoding', () => {
  it('decodes TCP over IPv4 over Ethernet: addresses, ports, flags, empty payload', () => {
    expect(decode({ ...syn, src: '10.1.2.3', dst: '10.9.8.7' })).toEqual({
      src: '10.1.2.3',
      dst: '10.9.8.7',
      family: 4,
      proto: 'tcp',
      srcPort: 40000,
      dstPort: 7000,
      tcpFlags: 0x02,
      payload: Buffer.alloc(0),
      at: 1234,
    });
  });

  it('decodes UDP payloads as a view into the capture buffer, not a copy', () => {
    const frame = buildFrame({ ...spa, src: '10.0.0.2', dst: '10.0.0.1' });
    const f = new DecodedFrame();
    expect(decodeFrame(frame, frame.length, LinkType.Ethernet, f)).toBe(true);
    const p = toInboundPacket(f, 0);
    expect(p.payload.toString()).toBe('hello spa');
    expect(p.payload.buffer).toBe(frame.buffer);
    expect(p.payload.byteOffset).toBe(frame.byteOffset + 14 + 20 + 8);
  });

  it('reads TCP flags and skips TCP options to the payload', () => {
    const p = decode({
      ...syn,
      flags: 0x18,
      tcpOptions: Buffer.from([2, 4, 5, 0xb4, 1, 1, 4, 2]),
      payload: Buffer.from('data'),
      src: '10.0.0.2',
      dst: '10.0.0.1',
    });
    expect(p?.tcpFlags).toBe(0x18);
    expect(p?.payload.toString()).toBe('data');
  });

  it('skips stacked 802.1ad / 802.1Q VLAN tags, and refuses too deep a stack', () => {
    const base = { ...spa, src: '10.0.0.2', dst: '10.0.0.1' };
    expect(decode({ ...base, link: { kind: 'ethernet', vlanTags: [0x8100] } })?.dstPort).toBe(62201);
    expect(
      decode({ ...base, link: { kind: 'ethernet', vlanTags: [0x88a8, 0x8100] } })?.payload.toString(),
    ).toBe('hello spa');
    expect(
      decode({ ...base, link: { kind: 'ethernet', vlanTags: [0x9100, 0x88a8, 0x8100, 0x8100] } }),
    ).toBeDefined();
    expect(decode({ ...base, link: { kind: 'ethernet', vlanTags: Array(5).fill(0x8100) } })).toBeUndefined();
  });

  it('decodes Linux cooked captures v1 and v2, and drops outgoing packets (packet type 4)', () => {
    const base = { ...syn, src: 'fd00:1::2', dst: 'fd00:1::1' };
    expect(decode({ ...base, link: { kind: 'sll' } })?.src).toBe('fd00:1::2');
    expect(decode({ ...base, link: { kind: 'sll2' } })?.dst).toBe('fd00:1::1');
    expect(decode({ ...base, link: { kind: 'sll', packetType: 1 } })).toBeDefined();
    expect(decode({ ...base, link: { kind: 'sll', packetType: 4 } })).toBeUndefined();
    expect(decode({ ...base, link: { kind: 'sll2', packetType: 4 } })).toBeUndefined();
  });

  it('decodes raw IP frames of both families', () => {
    expect(decode({ ...spa, src: '10.0.0.2', dst: '10.0.0.1', link: { kind: 'raw' } })?.family).toBe(4);
    expect(decode({ ...spa, src: 'fd00::2', dst: 'fd00::1', link: { kind: 'raw' } })?.family).toBe(6);
  });

  it('skips IPv4 options', () => {
    const options = Buffer.from([0x94, 0x04, 0, 0, 0x01, 0x01, 0x01, 0x00]); // router alert, NOPs, EOL
    const p = decode({ ...spa, src: '10.0.0.2', dst: '10.0.0.1', ipv4Options: options });
    expect(p?.payload.toString()).toBe('hello spa');
  });

  it('never decodes an IPv4 fragment: not a non-first one, not a first one with MF', () => {
    const base = { ...syn, src: '10.0.0.2', dst: '10.0.0.1' };
    expect(decode({ ...base, ipv4Fragment: 0x0000 })).toBeDefined(); // not fragmented, DF clear
    expect(decode({ ...base, ipv4Fragment: 0x0010 })).toBeUndefined(); // offset 16*8
    expect(decode({ ...base, ipv4Fragment: 0x2000 })).toBeUndefined(); // first fragment, MF set
    expect(decode({ ...base, ipv4Fragment: 0x2001 })).toBeUndefined();
  });

  it('uses the IPv4 total length, not the frame length (Ethernet padding is not payload)', () => {
    const frame = Buffer.concat([
      buildFrame({ ...spa, payload: Buffer.from('x'), src: '10.0.0.2', dst: '10.0.0.1' }),
      Buffer.alloc(20, 0xee),
    ]);
    const f = new DecodedFrame();
    expect(decodeFrame(frame, frame.length, LinkType.Ethernet, f)).toBe(true);
    expect(toInboundPacket(f, 0).payload.toString()).toBe('x');
  });

  it('refuses IPv4 with a bad version, a short IHL, or a total length beyond the capture', () => {
    const good = buildFrame({ ...syn, src: '10.0.0.2', dst: '10.0.0.1' });
    const f = new DecodedFrame();
    const variant = (mutate: (b: Buffer) => void) => {
      const b = Buffer.from(good);
      mutate(b);
      return decodeFrame(b, b.length, LinkType.Ethernet, f);
    };
    expect(variant(() => undefined)).toBe(true);
    expect(variant((b) => (b[14] = 0x55))).toBe(false); // version 5
    expect(variant((b) => (b[14] = 0x44))).toBe(false); // IHL 4
    expect(variant((b) => b.writeUInt16BE(b.length, 16))).toBe(false); // longer than captured
    expect(variant((b) => b.writeUInt16BE(19, 16))).toBe(false); // shorter than its header
    expect(variant((b) => (b[14 + 9] = 1))).toBe(false); // ICMP
  });

  it('skips IPv6 extension headers: hop-by-hop, routing, destination options, atomic fragment, AH', () => {
    const p = decode({
      ...spa,
      src: 'fd00::2',
      dst: 'fd00::1',
      ipv6Extensions: [
        { type: 0 },
        { type: 43, size: 24 },
        { type: 60, size: 16 },
        { type: 44, fragmentField: 0 },
        { type: 51, size: 24 },
      ],
    });
    expect(p?.payload.toString()).toBe('hello spa');
    expect(p?.srcPort).toBe(50000);
  });

  it('never decodes IPv6 fragments (non-first, or first with M set), nor too many extension headers', () => {
    const base = { ...spa, src: 'fd00::2', dst: 'fd00::1' };
    expect(decode({ ...base, ipv6Extensions: [{ type: 44, fragmentField: 0x0008 }] })).toBeUndefined();
    expect(decode({ ...base, ipv6Extensions: [{ type: 44, fragmentField: 0x0001 }] })).toBeUndefined();
    expect(decode({ ...base, ipv6Extensions: [{ type: 44, fragmentField: 0x0006 }] })).toBeDefined(); // reserved bits
    expect(decode({ ...base, ipv6Extensions: Array(8).fill({ type: 60 }) })).toBeDefined();
    expect(decode({ ...base, ipv6Extensions: Array(9).fill({ type: 60 }) })).toBeUndefined();
  });

  it('formats IPv6 addresses canonically (RFC 5952)', () => {
    const src = (a: string) => decode({ ...syn, src: a, dst: 'fd00::1' })?.src;
    expect(src('fd00:0:0:0:0:0:0:2')).toBe('fd00::2');
    expect(src('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(src('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
    expect(src('0:0:0:0:0:0:0:0')).toBe('::');
    expect(src('fd00:0:0:0:0:0:0:0')).toBe('fd00::');
    expect(src('0:0:0:0:0:ffff:a00:1')).toBe('::ffff:a00:1');
    expect(src('FD00:00AB:0:0:1:0:0:0')).toBe('fd00:ab:0:0:1::');
  });

  it('refuses UDP lengths that do not fit, and TCP data offsets that do not fit', () => {
    const f = new DecodedFrame();
    const udp = buildFrame({ ...spa, src: '10.0.0.2', dst: '10.0.0.1' });
    const udpLen = 14 + 20 + 4;
    const b1 = Buffer.from(udp);
    b1.writeUInt16BE(7, udpLen);
    expect(decodeFrame(b1, b1.length, LinkType.Ethernet, f)).toBe(false);
    b1.writeUInt16BE(8 + 10, udpLen);
    expect(decodeFrame(b1, b1.length, LinkType.Ethernet, f)).toBe(false);
    b1.writeUInt16BE(8 + 5, udpLen); // shorter than the IP packet: payload ends at the UDP length
    expect(decodeFrame(b1, b1.length, LinkType.Ethernet, f)).toBe(true);
    expect(toInboundPacket(f, 0).payload.toString()).toBe('hello');

    const tcp = Buffer.from(buildFrame({ ...syn, src: '10.0.0.2', dst: '10.0.0.1' }));
    tcp[14 + 20 + 12] = 0x60; // data offset 24 > 20-byte segment
    expect(decodeFrame(tcp, tcp.length, LinkType.Ethernet, f)).toBe(false);
    tcp[14 + 20 + 12] = 0x40; // data offset 16 < 20
    expect(decodeFrame(tcp, tcp.length, LinkType.Ethernet, f)).toBe(false);
  });

  it('ignores other EtherTypes (ARP) and bad lengths', () => {
    const f = new DecodedFrame();
    const arp = linkFrame({ kind: 'ethernet' }, 0x0806, Buffer.alloc(28));
    expect(decodeFrame(arp, arp.length, LinkType.Ethernet, f)).toBe(false);
    const good = buildFrame({ ...syn, src: '10.0.0.2', dst: '10.0.0.1' });
    for (const len of [0, -1, 1.5, NaN]) expect(decodeFrame(good, len, LinkType.Ethernet, f)).toBe(false);
    // A length beyond the buffer is clamped to it.
    expect(decodeFrame(good, good.length + 100, LinkType.Ethernet, f)).toBe(true);
    expect(decodeFrame(good, good.length, 9999 as LinkType, f)).toBe(false);
  });

  it('never throws and never decodes a frame truncated at any byte offset', () => {
    const frames: [Buffer, LinkType][] = [
      [
        buildFrame({
          ...syn,
          src: '10.0.0.2',
          dst: '10.0.0.1',
          link: { kind: 'ethernet', vlanTags: [0x88a8, 0x8100] },
        }),
        LinkType.Ethernet,
      ],
      [
        buildFrame({ ...spa, src: '10.0.0.2', dst: '10.0.0.1', ipv4Options: Buffer.alloc(8, 1) }),
        LinkType.Ethernet,
      ],
      [
        buildFrame({
          ...spa,
          src: 'fd00::2',
          dst: 'fd00::1',
          link: { kind: 'sll' },
          ipv6Extensions: [{ type: 0 }, { type: 44 }, { type: 51, size: 16 }],
        }),
        LinkType.LinuxSll,
      ],
      [
        buildFrame({
          ...syn,
          src: 'fd00::2',
          dst: 'fd00::1',
          link: { kind: 'sll2' },
          tcpOptions: Buffer.alloc(12, 1),
        }),
        LinkType.LinuxSll2,
      ],
      [ipv4Packet({ src: '10.0.0.2', dst: '10.0.0.1', protocol: 6 }, tcpSegment(syn)), LinkType.Raw],
    ];
    const f = new DecodedFrame();
    for (const [frame, link] of frames) {
      expect(decodeFrame(frame, frame.length, link, f)).toBe(true);
      for (let cut = 0; cut < frame.length; cut++) {
        // Both ways a frame can be short: a short buffer, and a short length into a full buffer.
        expect(decodeFrame(frame.subarray(0, cut), cut, link, f)).toBe(false);
        expect(decodeFrame(frame, cut, link, f)).toBe(false);
      }
    }
  });

  it("maps cap's link type names, including SLL2 reported as unknown", () => {
    expect(linkTypeFromCap('ETHERNET')).toBe(LinkType.Ethernet);
    expect(linkTypeFromCap('LINKTYPE_LINUX_SLL')).toBe(LinkType.LinuxSll);
    expect(linkTypeFromCap('RAW')).toBe(LinkType.Raw);
    expect(linkTypeFromCap('Unknown linktype 276')).toBe(LinkType.LinuxSll2);
    expect(linkTypeFromCap('Unknown linktype 1000')).toBeUndefined();
    expect(linkTypeFromCap('IEEE802_11_RADIO')).toBeUndefined();
  });
});
