#!/usr/bin/env node
// The knockgate binary. Only the start-up setting is made here, before any other module is resolved
// (cmd/startup.ts: TurboFan off while the program loads); the program itself is cmd/program.ts.

import { beginStartup } from './startup.js';

beginStartup();
await import('./program.js');
