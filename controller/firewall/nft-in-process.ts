// libnftables in this process, through the capture addon's nftRun (native/nft_run.c), and set
// element changes straight over nfnetlink (nftElements, native/nft_elements.c): the nftables
// backend's changes without a round trip to another process.

import { pcapAddon } from '../../sniffer/capture/addon.js';
import type { InProcessNft } from './nftables.js';

export const addonNft: InProcessNft = {
  available() {
    try {
      return pcapAddon().nftAvailable();
    } catch (err) {
      return `capture addon not loadable: ${(err as Error).message}`;
    }
  },
  run(text) {
    return pcapAddon().nftRun(text);
  },
  elements(table, ops) {
    return pcapAddon().nftElements(table, ops);
  },
};
