// Validation of the `kind: StandaloneConfig` object of a knockgate YAML file.

import { API_VERSION } from './types.js';
import { LIST_BOUNDS } from './limits.js';
import { Checker, INTERFACE_NAME, join, type FieldError } from './validate-fields.js';
import { FIREWALL_BACKENDS, HOOK_BOUNDS, STANDALONE_MODES, type StandaloneSettings } from './standalone.js';

/** Fields of the object besides apiVersion/kind/metadata: the StandaloneSettings themselves. */
const SETTINGS_FIELDS = [
  'protectedPorts',
  'alwaysAllow',
  'neverGrant',
  'mode',
  'backend',
  'maxGrants',
  'conntrackFlush',
  'interfaces',
  'hooks',
] as const;

/** Most live grants a standalone host may be configured for. */
const MAX_GRANTS_BOUND = 1_000_000;

/**
 * Check a StandaloneConfig object. `policyNames` are the policies of the same file: a hook for a
 * policy that does not exist is a typo, refused.
 */
export function validateSettings(
  obj: unknown,
  policyNames: ReadonlySet<string>,
): { settings?: StandaloneSettings; errors: FieldError[] } {
  const c = new Checker();
  if (!c.isObject(obj, '')) return { errors: c.errors };
  c.knownFields(obj, '', ['apiVersion', 'kind', 'metadata', ...SETTINGS_FIELDS]);
  if (obj.apiVersion !== API_VERSION) c.fail('apiVersion', `must be ${API_VERSION}`);
  const max = LIST_BOUNDS.maxSettingsEntries;
  if (obj.protectedPorts !== undefined) c.portList(obj.protectedPorts, 'protectedPorts', 0, max);
  if (obj.alwaysAllow !== undefined) c.cidrList(obj.alwaysAllow, 'alwaysAllow', 0, max);
  if (obj.neverGrant !== undefined) c.cidrList(obj.neverGrant, 'neverGrant', 0, max);
  if (obj.mode !== undefined) c.oneOf(obj.mode, 'mode', STANDALONE_MODES);
  if (obj.backend !== undefined) c.oneOf(obj.backend, 'backend', FIREWALL_BACKENDS);
  if (obj.maxGrants !== undefined) c.integer(obj.maxGrants, 'maxGrants', 1, MAX_GRANTS_BOUND);
  if (obj.conntrackFlush !== undefined) c.isBoolean(obj.conntrackFlush, 'conntrackFlush');
  if (obj.interfaces !== undefined && c.list(obj.interfaces, 'interfaces', 0, max)) {
    obj.interfaces.forEach((n, i) =>
      c.matches(n, `interfaces[${i}]`, INTERFACE_NAME, 'a network interface name'),
    );
  }
  if (obj.hooks !== undefined && c.isObject(obj.hooks, 'hooks')) {
    for (const [name, hooks] of Object.entries(obj.hooks)) {
      const path = join('hooks', name);
      if (!policyNames.has(name)) c.fail(path, `no KnockPolicy named "${name}" in this file`);
      checkHooks(c, hooks, path);
    }
  }
  if (c.errors.length) return { errors: c.errors };
  const settings: StandaloneSettings = {};
  for (const field of SETTINGS_FIELDS) {
    if (obj[field] !== undefined) (settings as Record<string, unknown>)[field] = obj[field];
  }
  return { settings, errors: [] };
}

function checkHooks(c: Checker, hooks: unknown, path: string): void {
  if (!c.isObject(hooks, path)) return;
  c.knownFields(hooks, path, ['start', 'stop', 'start6', 'stop6', 'timeoutSeconds', 'placeholders']);
  for (const field of ['start', 'stop', 'start6', 'stop6'] as const) {
    const cmd = hooks[field];
    if (cmd === undefined) continue;
    c.printable(cmd, `${path}.${field}`, 'a one-line command', HOOK_BOUNDS.maxCommandLength);
  }
  if (hooks.timeoutSeconds !== undefined) {
    c.integer(hooks.timeoutSeconds, `${path}.timeoutSeconds`, 1, HOOK_BOUNDS.maxTimeoutSeconds);
  }
  if (hooks.placeholders !== undefined)
    c.oneOf(hooks.placeholders, `${path}.placeholders`, ['knockd', 'fwknop']);
}
