// Every subcommand module, registered in the order `knockgate --help` lists them.
// A module exports `register(program)`; add one line per module.
//
// Every module is imported here, so a module's own imports are paid by every command: register()
// defines options only, and a command whose action needs heavy modules (the Kubernetes client, the
// daemon, the firewall) loads them in the action with `await import()` from its cmd/*-run.ts. A
// standalone daemon that loaded the Kubernetes client it never uses held ~70 MiB more (bench/README).

import type { Command } from 'commander';
import { register as spa } from './spa.js';
import { register as keygen } from './keygen.js';
import { register as importConfig } from './import.js';
import { register as knock } from './knock.js';
import { register as standalone } from './standalone.js';
import { register as grants } from './grants.js';
import { register as sniffer } from './sniffer.js';
import { register as agent } from './agent.js';
import { register as controller } from './controller.js';
import { register as sweep } from './sweep.js';
import { register as doctor } from './doctor.js';
import { register as uninstall } from './uninstall.js';

type Register = (program: Command) => void;

const modules: Register[] = [
  standalone,
  grants,
  knock,
  spa,
  keygen,
  importConfig,
  sniffer,
  agent,
  controller,
  sweep,
  doctor,
  uninstall,
];

export function registerCommands(program: Command): void {
  for (const register of modules) register(program);
}
