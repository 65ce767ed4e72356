// Types for the parts of `cap` 0.2.1 (libpcap binding, CommonJS, no types of its own) knockgate uses.
declare module 'cap' {
  import { EventEmitter } from 'node:events';

  export class Cap extends EventEmitter {
    /** Opens `device` with a BPF `filter`; `bufSize` is libpcap's kernel buffer. Returns the link type name. */
    open(device: string, filter: string, bufSize: number, buffer: Buffer): string;
    close(): void;
    on(event: 'packet', listener: (nbytes: number, truncated: boolean) => void): this;
    static findDevice(ip?: string): string | undefined;
    static deviceList(): { name: string; description?: string; addresses: { addr: string }[] }[];
  }

  const cap: { Cap: typeof Cap };
  export default cap;
}
