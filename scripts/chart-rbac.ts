// Writes charts/knockgate/files/rbac.json from the roles' rules (controller/chart-rbac.ts).
//   node_modules/.bin/vite-node scripts/chart-rbac.ts
// test/chart-rbac.test.ts fails until the file matches the code.

import { writeFileSync } from 'node:fs';
import { chartRbacJson } from '../controller/chart-rbac.js';

const file = new URL('../charts/knockgate/files/rbac.json', import.meta.url);
writeFileSync(file, chartRbacJson());
process.stdout.write(`wrote ${file.pathname}\n`);
