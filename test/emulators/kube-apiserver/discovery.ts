// Discovery documents: /version, /api, /apis, /api/v1, /apis/<group>/<version>, in the legacy
// form and in the aggregated form kubectl 1.32 asks for first
// (`Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`).

import { groupsOf, type ResourceType } from './resources.js';

export const AGGREGATED_CONTENT_TYPE = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';

export function wantsAggregated(accept: string | undefined): boolean {
  const first = (accept ?? '').split(',')[0] ?? '';
  return /as=APIGroupDiscoveryList/.test(first) && /v=v2(;|$)/.test(first.replace(/\s/g, ''));
}

export const VERSION_INFO = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-knockgate-emulator',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2026-01-01T00:00:00Z',
  goVersion: 'go1.23.4',
  compiler: 'gc',
  platform: 'linux/amd64',
};

const SUBRESOURCE_VERBS = ['get', 'patch', 'update'];

function apiResources(types: ResourceType[]) {
  const out: Record<string, unknown>[] = [];
  for (const t of types) {
    const r: Record<string, unknown> = {
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: t.verbs,
    };
    if (t.shortNames.length) r.shortNames = t.shortNames;
    if (t.categories.length) r.categories = t.categories;
    out.push(r);
    if (t.statusSubresource)
      out.push({
        name: `${t.plural}/status`,
        singularName: '',
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: SUBRESOURCE_VERBS,
      });
  }
  return out;
}

export function resourceList(group: string, version: string, types: ResourceType[]) {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/${version}` : version,
    resources: apiResources(types.filter((t) => t.group === group && t.version === version)),
  };
}

export function coreVersions(serverAddress: string) {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

export function groupList(types: ResourceType[]) {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: groupsOf(types.filter((t) => t.group !== '')).map(({ group, versions }) => ({
      name: group,
      versions: versions.map((v) => ({ groupVersion: `${group}/${v}`, version: v })),
      preferredVersion: { groupVersion: `${group}/${versions[0]}`, version: versions[0] },
    })),
  };
}

export function group(name: string, types: ResourceType[]) {
  return groupList(types).groups.find((g) => g.name === name);
}

/** apidiscovery.k8s.io/v2 APIGroupDiscoveryList for /api (core) or /apis (every other group). */
export function aggregated(types: ResourceType[], core: boolean) {
  const selected = types.filter((t) => (t.group === '') === core);
  return {
    kind: 'APIGroupDiscoveryList',
    apiVersion: 'apidiscovery.k8s.io/v2',
    metadata: {},
    items: groupsOf(selected).map(({ group: g, versions }) => ({
      metadata: { name: g, creationTimestamp: null },
      versions: versions.map((version) => ({
        version,
        freshness: 'Current',
        resources: selected
          .filter((t) => t.group === g && t.version === version)
          .map((t) => {
            const responseKind = { group: g, version, kind: t.kind };
            const r: Record<string, unknown> = {
              resource: t.plural,
              responseKind,
              scope: t.namespaced ? 'Namespaced' : 'Cluster',
              singularResource: t.singular,
              verbs: t.verbs,
            };
            if (t.shortNames.length) r.shortNames = t.shortNames;
            if (t.categories.length) r.categories = t.categories;
            if (t.statusSubresource)
              r.subresources = [{ subresource: 'status', responseKind, verbs: SUBRESOURCE_VERBS }];
            return r;
          }),
      })),
    })),
  };
}
