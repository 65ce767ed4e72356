// Every subcommand module, registered in the order `knockgate --help` lists them.
// A module exports `register(program)`; add one line per module.

import type { Command } from 'commander';
import { register as importConfig } from './import.js';

type Register = (program: Command) => void;

const modules: Register[] = [importConfig];

export function registerCommands(program: Command): void {
  for (const register of modules) register(program);
}
