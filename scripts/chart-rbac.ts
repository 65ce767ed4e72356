// Writes charts/knockgate/files/rbac.json from the roles' rules and files/sniffer-admission-policy.json
// from the sniffer's admission policy (controller/chart-rbac.ts).
//   node_modules/.bin/vite-node scripts/chart-rbac.ts
// test/chart.test.ts fails until the file matches the code.

import { writeFileSync } from 'node:fs';
import { chartAdmissionPolicyJson, chartRbacJson } from '../controller/chart-rbac.js';

for (const [name, text] of [
  ['rbac.json', chartRbacJson()],
  ['sniffer-admission-policy.json', chartAdmissionPolicyJson()],
] as const) {
  const file = new URL(`../charts/knockgate/files/${name}`, import.meta.url);
  writeFileSync(file, text);
  process.stdout.write(`wrote ${file.pathname}\n`);
}
