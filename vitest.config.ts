import { defineConfig } from 'vitest/config';

// Tests that build network namespaces must not run concurrently with each other on a 2-core
// machine (they share the kernel's netfilter state and veth names are global): files run one at a
// time. `make test` runs two such sequential lanes side by side (scripts/test-lanes.mjs): the files
// that build namespaces, and the rest.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
