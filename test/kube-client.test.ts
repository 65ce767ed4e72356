// @kubernetes/client-node 1.x against the Kubernetes API emulator: the CustomObjectsApi calls the
// product makes succeed, and invalid objects, missing RBAC rules, stale updates and existing names are
// refused with the real server's status codes and Status bodies (422 with field paths, 403, 409).

import {
  ApiException,
  AuthorizationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  Watch,
} from '@kubernetes/client-node';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCrdDirectory } from './emulators/kube-apiserver/crds.js';
import { KubeApiServer } from './emulators/kube-apiserver/server.js';

const CRDS = resolve(import.meta.dirname, '..', 'crds');
const G = { group: 'knockgate.io', version: 'v1alpha1' };

let server: KubeApiServer;

function client(user: string) {
  const kc = new KubeConfig();
  kc.loadFromString(server.kubeconfig(user));
  return { custom: kc.makeApiClient(CustomObjectsApi), core: kc.makeApiClient(CoreV1Api), kc };
}

interface StatusBody {
  kind: string;
  code: number;
  reason: string;
  message: string;
  details?: { causes?: { field?: string; message: string; reason: string }[] };
}

/** The ApiException a call rejects with, with its body parsed as a metav1.Status. */
async function refusal(p: Promise<unknown>): Promise<{ code: number; status: StatusBody }> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const body = err.body as unknown;
    const status = (typeof body === 'string' ? JSON.parse(body) : body) as StatusBody;
    return { code: err.code, status };
  }
  throw new Error('the call succeeded; a refusal was expected');
}

const grant = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'knockgate.io/v1alpha1',
  kind: 'AccessGrant',
  metadata: { name },
  spec: {
    source: '198.51.100.4/32',
    ports: ['22/tcp'],
    expiresAt: '2030-01-01T00:00:00Z',
    method: 'manual',
    ...spec,
  },
});

const policy = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'knockgate.io/v1alpha1',
  kind: 'KnockPolicy',
  metadata: { name },
  spec: { grant: { ports: ['22/tcp'], durationSeconds: 60 }, ...spec },
});

beforeAll(async () => {
  server = new KubeApiServer({
    namespaces: ['knockgate'],
    users: [
      {
        name: 'admin',
        token: 'admin-token-client-test',
        rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
      },
      {
        name: 'system:serviceaccount:knockgate:sniffer',
        token: 'sniffer-token-client-test',
        rules: [
          {
            apiGroups: ['knockgate.io'],
            resources: ['accessgrants'],
            verbs: ['get', 'list', 'watch', 'create'],
          },
          { apiGroups: [''], resources: ['secrets'], verbs: ['get'], namespaces: ['knockgate'] },
        ],
      },
    ],
  });
  loadCrdDirectory(server, CRDS);
  await server.start();
});

afterAll(async () => {
  await server?.stop();
});

describe('client-node CustomObjectsApi against the emulator', () => {
  it('creates, gets, lists, merge-patches status and deletes an AccessGrant', async () => {
    const { custom } = client('admin');
    const created = (await custom.createClusterCustomObject({
      ...G,
      plural: 'accessgrants',
      body: grant('client-ok', {}),
    })) as { metadata: { resourceVersion: string; generation: number; uid: string } };
    expect(created.metadata.generation).toBe(1);
    expect(created.metadata.uid).toBeTruthy();
    const got = (await custom.getClusterCustomObject({
      ...G,
      plural: 'accessgrants',
      name: 'client-ok',
    })) as {
      spec: { source: string };
    };
    expect(got.spec.source).toBe('198.51.100.4/32');
    const list = (await custom.listClusterCustomObject({ ...G, plural: 'accessgrants' })) as {
      kind: string;
      items: unknown[];
      metadata: { resourceVersion: string };
    };
    expect(list.kind).toBe('AccessGrantList');
    expect(list.items).toHaveLength(1);
    const patched = (await custom.patchClusterCustomObjectStatus(
      { ...G, plural: 'accessgrants', name: 'client-ok', body: { status: { phase: 'Active' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as { status: { phase: string }; metadata: { generation: number } };
    expect(patched.status.phase).toBe('Active');
    expect(patched.metadata.generation).toBe(1);
    await custom.deleteClusterCustomObject({ ...G, plural: 'accessgrants', name: 'client-ok' });
    const gone = await refusal(
      custom.getClusterCustomObject({ ...G, plural: 'accessgrants', name: 'client-ok' }),
    );
    expect(gone.code).toBe(404);
    expect(gone.status.reason).toBe('NotFound');
  });

  const invalidCases: { name: string; plural: string; body: object; field: string; message: RegExp }[] = [
    {
      name: 'a bad CIDR',
      plural: 'accessgrants',
      body: grant('bad-cidr', { source: '198.51.100.0/33' }),
      field: 'spec.source',
      message: /must be of type cidr/,
    },
    {
      name: 'a /8 source on a policy grant',
      plural: 'accessgrants',
      body: grant('wide', { source: '10.0.0.0/8', method: 'spa', policyRef: { name: 'ssh' } }),
      field: 'spec.source',
      message: /single host/,
    },
    {
      name: 'an IPv6 /64 on a knock grant',
      plural: 'accessgrants',
      body: grant('wide6', { source: 'fd00::/64', method: 'knock', policyRef: { name: 'ssh' } }),
      field: 'spec.source',
      message: /single host/,
    },
    {
      name: 'port 0',
      plural: 'accessgrants',
      body: grant('p0', { ports: ['22/tcp', '0/udp'] }),
      field: 'spec.ports[1]',
      message: /between 1 and 65535/,
    },
    {
      name: 'port 70000',
      plural: 'knockpolicies',
      body: policy('p70000', { knock: { sequence: ['70000/tcp'] } }),
      field: 'spec.knock.sequence[0]',
      message: /between 1 and 65535/,
    },
    {
      name: 'both knock and spa',
      plural: 'knockpolicies',
      body: policy('both', {
        knock: { sequence: ['1000/tcp'] },
        spa: { keySecretRef: { name: 'k' }, port: '62201/udp' },
      }),
      field: 'spec',
      message: /exactly one of knock or spa/,
    },
    {
      name: 'a duration over the maximum',
      plural: 'knockpolicies',
      body: policy('too-long', {
        knock: { sequence: ['1000/tcp'] },
        grant: { ports: ['22/tcp'], durationSeconds: 120, maxDurationSeconds: 60 },
      }),
      field: 'spec.grant.maxDurationSeconds',
      message: /must not be less than durationSeconds/,
    },
    {
      name: 'a repeated port (list-type set)',
      plural: 'accessgrants',
      body: grant('dup-port', { ports: ['22/tcp', '80/tcp', '22/tcp'] }),
      field: 'spec.ports[2]',
      message: /^Duplicate value: "22\/tcp"$/,
    },
    {
      name: 'a policy name that is not a DNS label',
      plural: 'knockpolicies',
      body: policy('ssh.example', { knock: { sequence: ['1000/tcp'] } }),
      field: 'metadata.name',
      message: /should match/,
    },
    {
      name: 'a replay claim not named by a hex digest',
      plural: 'replayclaims',
      body: {
        apiVersion: 'knockgate.io/v1alpha1',
        kind: 'ReplayClaim',
        metadata: { name: 'not-hex' },
        spec: { expiresAt: '2030-01-01T00:00:00Z' },
      },
      field: 'metadata.name',
      message: /should match '\^\[0-9a-f\]\+\$'/,
    },
    {
      name: 'a bad expiresAt',
      plural: 'accessgrants',
      body: grant('bad-time', { expiresAt: '2030-13-01T00:00:00Z' }),
      field: 'spec.expiresAt',
      message: /must be of type date-time/,
    },
  ];
  for (const c of invalidCases) {
    it(`refuses ${c.name} with 422 and the field path`, async () => {
      const { custom } = client('admin');
      const r = await refusal(custom.createClusterCustomObject({ ...G, plural: c.plural, body: c.body }));
      expect(r.code).toBe(422);
      expect(r.status).toMatchObject({ kind: 'Status', code: 422, reason: 'Invalid' });
      const cause = r.status.details?.causes?.find((x) => x.field === c.field);
      expect(cause, JSON.stringify(r.status)).toBeDefined();
      expect(cause!.message).toMatch(c.message);
      expect(r.status.message).toContain(`${c.field}: `);
    });
  }

  it('nothing of a refused object is stored', async () => {
    const { custom } = client('admin');
    const list = (await custom.listClusterCustomObject({ ...G, plural: 'knockpolicies' })) as {
      items: unknown[];
    };
    expect(list.items).toEqual([]);
  });

  it('409 on an existing name and on a stale resourceVersion', async () => {
    const { custom } = client('admin');
    const first = (await custom.createClusterCustomObject({
      ...G,
      plural: 'accessgrants',
      body: grant('client-409', {}),
    })) as { metadata: { resourceVersion: string } };
    const again = await refusal(
      custom.createClusterCustomObject({ ...G, plural: 'accessgrants', body: grant('client-409', {}) }),
    );
    expect(again.code).toBe(409);
    expect(again.status.reason).toBe('AlreadyExists');
    expect(again.status.message).toBe('accessgrants.knockgate.io "client-409" already exists');
    await custom.patchClusterCustomObject(
      { ...G, plural: 'accessgrants', name: 'client-409', body: { spec: { ports: ['2222/tcp'] } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const stale = grant('client-409', {}) as Record<string, unknown> & { metadata: Record<string, unknown> };
    stale.metadata.resourceVersion = first.metadata.resourceVersion;
    const conflict = await refusal(
      custom.replaceClusterCustomObject({ ...G, plural: 'accessgrants', name: 'client-409', body: stale }),
    );
    expect(conflict.code).toBe(409);
    expect(conflict.status.reason).toBe('Conflict');
    expect(conflict.status.message).toContain('the object has been modified');
  });

  it('a component token without the rule for a verb gets 403 in the real server shape', async () => {
    const { custom, core } = client('system:serviceaccount:knockgate:sniffer');
    await custom.createClusterCustomObject({ ...G, plural: 'accessgrants', body: grant('sniffer-made', {}) });
    const del = await refusal(
      custom.deleteClusterCustomObject({ ...G, plural: 'accessgrants', name: 'sniffer-made' }),
    );
    expect(del.code).toBe(403);
    expect(del.status).toMatchObject({ kind: 'Status', reason: 'Forbidden', code: 403 });
    expect(del.status.message).toBe(
      'accessgrants.knockgate.io "sniffer-made" is forbidden: User "system:serviceaccount:knockgate:sniffer" cannot delete resource "accessgrants" in API group "knockgate.io" at the cluster scope',
    );
    const status = await refusal(
      custom.patchClusterCustomObjectStatus(
        { ...G, plural: 'accessgrants', name: 'sniffer-made', body: { status: { phase: 'Active' } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
    expect(status.status.message).toBe(
      'accessgrants.knockgate.io "sniffer-made" is forbidden: User "system:serviceaccount:knockgate:sniffer" cannot patch resource "accessgrants/status" in API group "knockgate.io" at the cluster scope',
    );
    const create = await refusal(
      custom.createClusterCustomObject({ ...G, plural: 'replayclaims', body: {} }),
    );
    expect(create.status.message).toBe(
      'replayclaims.knockgate.io is forbidden: User "system:serviceaccount:knockgate:sniffer" cannot create resource "replayclaims" in API group "knockgate.io" at the cluster scope',
    );
    // A namespaced rule: Secrets in the release namespace only.
    const other = await refusal(core.readNamespacedSecret({ name: 'ssh-spa', namespace: 'default' }));
    expect(other.status.message).toBe(
      'secrets "ssh-spa" is forbidden: User "system:serviceaccount:knockgate:sniffer" cannot get resource "secrets" in API group "" in the namespace "default"',
    );
    const own = await refusal(core.readNamespacedSecret({ name: 'ssh-spa', namespace: 'knockgate' }));
    expect(own.code).toBe(404);
  });

  it('SelfSubjectAccessReview tells a component what its token may do', async () => {
    const kc = new KubeConfig();
    kc.loadFromString(server.kubeconfig('system:serviceaccount:knockgate:sniffer'));
    const authz = kc.makeApiClient(AuthorizationV1Api);
    const ask = async (resourceAttributes: Record<string, string>) =>
      (
        await authz.createSelfSubjectAccessReview({
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectAccessReview',
            spec: { resourceAttributes },
          },
        })
      ).status?.allowed;
    expect(await ask({ verb: 'create', group: 'knockgate.io', resource: 'accessgrants' })).toBe(true);
    expect(await ask({ verb: 'delete', group: 'knockgate.io', resource: 'accessgrants' })).toBe(false);
    expect(
      await ask({ verb: 'get', group: '', resource: 'secrets', namespace: 'knockgate', name: 'ssh-spa' }),
    ).toBe(true);
    expect(
      await ask({ verb: 'get', group: '', resource: 'secrets', namespace: 'default', name: 'ssh-spa' }),
    ).toBe(false);
  });

  it('a Lease written with a Date is refused, as a real server refuses it; six digits are accepted', async () => {
    // client-node serializes V1MicroTime with Date.toISOString() (milliseconds); a real apiserver
    // parses MicroTime with exactly six fractional digits (kubernetes-client/javascript#828). Leader
    // election must send renewTime/acquireTime as strings with microseconds.
    const { kc } = client('admin');
    const leases = kc.makeApiClient(CoordinationV1Api);
    const withDate = await refusal(
      leases.createNamespacedLease({
        namespace: 'knockgate',
        body: {
          metadata: { name: 'controller' },
          spec: { holderIdentity: 'c-0', renewTime: new Date(Date.UTC(2026, 0, 1)) },
        },
      }),
    );
    expect(withDate.code).toBe(400);
    expect(withDate.status.message).toContain('cannot parse ".000Z" as ".000000"');
    const micro = '2026-01-01T00:00:00.000000Z' as unknown as Date;
    const created = await leases.createNamespacedLease({
      namespace: 'knockgate',
      body: {
        metadata: { name: 'controller' },
        spec: { holderIdentity: 'c-0', leaseDurationSeconds: 15, renewTime: micro },
      },
    });
    expect(created.spec?.holderIdentity).toBe('c-0');
  });

  it('an unknown token gets 401', async () => {
    const kc = new KubeConfig();
    kc.loadFromString(server.kubeconfig('admin').replace('admin-token-client-test', 'not-a-known-token'));
    const r = await refusal(
      kc.makeApiClient(CustomObjectsApi).listClusterCustomObject({ ...G, plural: 'accessgrants' }),
    );
    expect(r.code).toBe(401);
  });

  it('client-node Watch streams ADDED and MODIFIED from a resourceVersion', async () => {
    const { custom, kc } = client('admin');
    const list = (await custom.listClusterCustomObject({ ...G, plural: 'accessgrants' })) as {
      metadata: { resourceVersion: string };
    };
    const seen: string[] = [];
    const watch = new Watch(kc);
    const req = await watch.watch(
      '/apis/knockgate.io/v1alpha1/accessgrants',
      { resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: true },
      (type: string, obj: { metadata: { name: string } }) => seen.push(`${type} ${obj.metadata.name}`),
      () => undefined,
    );
    try {
      await custom.createClusterCustomObject({ ...G, plural: 'accessgrants', body: grant('watched', {}) });
      await custom.patchClusterCustomObject(
        { ...G, plural: 'accessgrants', name: 'watched', body: { spec: { ports: ['80/tcp'] } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      const deadline = Date.now() + 10_000;
      while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(seen).toEqual(['ADDED watched', 'MODIFIED watched']);
    } finally {
      req.abort();
    }
  });
});
