// Frame decoding: the public surface of sniffer/frames.
export { DecodedFrame, IPPROTO_TCP, IPPROTO_UDP } from './frame.js';
export { decodeFrame, toInboundPacket } from './decode.js';
export { LinkType, linkTypeFromCap } from './link-type.js';
export { formatIpv4, formatIpv6 } from './address.js';
export { portKey, portKeyOf, portOfKey } from './port-key.js';
