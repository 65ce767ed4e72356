// The Grafana dashboard shipped with the chart: every metric an expression names is one a role
// registers (a renamed metric would otherwise leave an empty panel nobody notices).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAgentMetrics, registerAgentGauges } from '../controller/agent/metrics.js';
import { createControllerMetrics, registerControllerGauges } from '../controller/reconciler/metrics.js';
import { createSnifferMetrics } from '../controller/sniffer/metrics.js';
import { createStandaloneMetrics } from '../controller/standalone/metrics.js';

const DASHBOARD = join(import.meta.dirname, '..', 'charts', 'knockgate', 'dashboards', 'knockgate.json');

interface Panel {
  title: string;
  targets?: { expr: string }[];
}

async function registeredNames(): Promise<Set<string>> {
  const agent = createAgentMetrics();
  registerAgentGauges(agent, { applied: () => 0, apiUp: () => true });
  const controller = createControllerMetrics();
  registerControllerGauges(controller, { isLeader: () => true, grants: () => [] });
  const registries = [
    agent.registry,
    controller.registry,
    createSnifferMetrics().registry,
    createStandaloneMetrics().registry,
  ];
  const names = new Set<string>();
  for (const r of registries) for (const m of await r.getMetricsAsJSON()) names.add(m.name);
  return names;
}

describe('Grafana dashboard', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { uid: string; panels: Panel[] };

  it('names only metrics the roles register', async () => {
    const names = await registeredNames();
    const unknown: string[] = [];
    let exprs = 0;
    for (const panel of dashboard.panels)
      for (const t of panel.targets ?? []) {
        exprs++;
        for (const [metric] of t.expr.matchAll(/\bknockgate_[a-z0-9_]+/g)) {
          const base = metric.replace(/_(bucket|sum|count)$/, '');
          if (!names.has(metric) && !names.has(base)) unknown.push(`${panel.title}: ${metric}`);
        }
      }
    expect(exprs).toBeGreaterThan(10);
    expect(unknown).toEqual([]);
  });

  it('every panel has a title and a query on the datasource variable', () => {
    expect(dashboard.uid).toBe('knockgate');
    for (const p of dashboard.panels) {
      expect(p.title).toBeTruthy();
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
  });
});
