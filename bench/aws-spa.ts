// The client side of the AWS benchmark, run inside the client network namespace:
//   node dist/bench/aws-spa.js '<json AwsSpaArgs>'
// Sends one SPA packet from each source address, all at once (a burst of N grants), and prints one
// JSON line: {"sentAt": {"<source>": <epoch ms, sub-ms>}} — each taken right after its packet left.

import { spaFrom } from './lib/spa-send.js';

export interface AwsSpaArgs {
  sources: string[];
  target: string;
  protectedPort: number;
  spa: { port: number; keyBase64: string; hmacKeyBase64: string };
}

/** Wall-clock ms with sub-ms precision, comparable across the bench's processes on this host. */
export const epochMs = () => performance.timeOrigin + performance.now();

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2]!) as AwsSpaArgs;
  const sentAt: Record<string, number> = {};
  await Promise.all(
    args.sources.map(async (source) => {
      await spaFrom(source, args.target, args.protectedPort, args.spa);
      sentAt[source] = epochMs();
    }),
  );
  process.stdout.write(`${JSON.stringify({ sentAt })}\n`);
}

await main();
