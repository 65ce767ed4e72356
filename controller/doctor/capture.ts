// Whether the capture sees inbound packets on the knock and SPA ports: the capture is opened as the
// sniffer opens it (libpcap, the same filter on this host's addresses), for a few seconds, and what
// arrived is counted per port. libpcap sees packets before netfilter, so knockgate's own drops do
// not hide them; nothing seen means they never reach this interface (a security group, a load
// balancer that does not forward UDP, an upstream firewall) — or nobody sent one meanwhile.

import type { PortRef } from '../../api/ports.js';
import { formatPort } from '../../api/ports.js';
import { openCapture } from '../../sniffer/capture/capture.js';
import { buildCaptureFilter } from '../../sniffer/capture/filter.js';
import { interfaceAddresses } from '../../sniffer/capture/local-addresses.js';
import { DecodedFrame, decodeFrame, toInboundPacket } from '../../sniffer/frames/index.js';
import { fail, ok, warn, type CheckResult } from './report.js';

export interface CaptureSeen {
  interfaces: string[];
  seconds: number;
  /** "62201/udp" → packets seen. */
  perPort: Map<string, number>;
  sources: Set<string>;
}

export async function watchCapture(
  interfaces: readonly string[],
  ports: readonly PortRef[],
  seconds: number,
): Promise<CaptureSeen | CheckResult> {
  const name = 'capture';
  const addresses = interfaceAddresses(interfaces);
  if (addresses.length === 0)
    return fail(
      name,
      `${interfaces.join(', ')}: no address on the capture interface(s), nothing can be sent to it`,
    );
  const perPort = new Map(ports.map((p) => [formatPort(p), 0]));
  const sources = new Set<string>();
  const frame = new DecodedFrame();
  let capture;
  try {
    const filter = buildCaptureFilter({ addresses, ports });
    capture = openCapture({
      interfaces,
      filterFor: () => filter,
      onFrame: (buf, length, link) => {
        if (!decodeFrame(buf, length, link, frame)) return;
        const f = toInboundPacket(frame, 0);
        const key = `${f.dstPort}/${f.proto}`;
        if (perPort.has(key)) perPort.set(key, perPort.get(key)! + 1);
        if (sources.size < 16) sources.add(f.src);
      },
    });
  } catch (err) {
    return fail(
      name,
      `cannot capture on ${interfaces.join(', ')}: ${(err as Error).message} (needs CAP_NET_RAW)`,
    );
  }
  try {
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  } finally {
    capture.close();
  }
  return { interfaces: [...interfaces], seconds, perPort, sources };
}

export function captureCheck(seen: CaptureSeen): CheckResult {
  const name = 'capture';
  const counts = [...seen.perPort].map(([p, n]) => `${p} ${n}`).join(', ');
  const what = `${seen.interfaces.join(', ')} for ${seen.seconds} s: ${counts}`;
  const silent = [...seen.perPort].filter(([, n]) => n === 0).map(([p]) => p);
  if (silent.length < seen.perPort.size)
    return ok(
      name,
      `${what} packets (from ${[...seen.sources].join(', ')}): the capture sees inbound packets` +
        (silent.length > 0 ? `; none on ${silent.join(', ')} meanwhile` : ''),
    );
  return warn(
    name,
    `${what} packets: nothing arrived — send one from outside while doctor runs ` +
      '(knockgate spa / fwknop / knock); if it still shows 0, a security group, load balancer or upstream firewall drops it',
  );
}
