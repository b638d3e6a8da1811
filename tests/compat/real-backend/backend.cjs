#!/usr/bin/env node
// OPTIONAL high-fidelity tier: a REAL Backstage backend (createBackend from
// @backstage/backend-defaults@0.19.0) with
//   * the real permission backend (@backstage/plugin-permission-backend@0.7.18) at /api/permission,
//     with a tiny deterministic test policy (below);
//   * a tiny catalog-like plugin "catalog" that registers `catalog-entity` with the real
//     permissionsRegistry (rules IS_ENTITY_OWNER, IS_ENTITY_KIND; getResources over in-memory
//     entities) plus GET /entities, GET /entities/by-name/:kind/:namespace/:name.
// No database is needed: the plugin key store is static (a PEM pair) and nothing else asks for one.
// Real auth everywhere: credentials barrier, token verification, apply-conditions guard,
// /.backstage/auth/v1/jwks.json, error envelopes, helmet headers.
//
// It is a differential oracle for stagedoor's drop-in /api/permission/authorize (§2): send the
// same request to both and compare.
//
// Env:
//   PORT            listen port (unset or 0: a free port picked at start; must be known up front because
//                   Backstage's discovery derives its own URLs from backend.listen.port)
//   MINT_URL        base URL of ../mint.js (required): serves /api/auth/... (user JWKS + userinfo) and
//                   the JWKS of "foreign" plugins (stagedoor, scaffolder) whose tokens we accept
//   PLUGIN_KEY_PRIVATE / PLUGIN_KEY_PUBLIC   PEM files for this backend's plugin tokens
//                   (default ../../fixtures/ec-private.pem / ec-public.pem)
//   STATIC_TOKEN    an external static token (default "static-ci-token-123", subject "ci-bot")
//   EXTERNAL_CATALOG_URL  if set, discovery sends "catalog" traffic (apply-conditions!) to
//                   <EXTERNAL_CATALOG_URL>/api/catalog instead of the in-process catalog plugin
//   DISABLE_DEFAULT_AUTH_POLICY=1  → backend.auth.dangerouslyDisableDefaultAuthPolicy: true
//   PERMISSION_ENABLED=0            → permission.enabled: false
// Prints ONE JSON line {"ready":true,"port","url","permissionUrl","catalogUrl"} once listening.
//
// Test policy (handle(request, user)):
//   name ends with ".delete"                 → DENY
//   basic permission                         → ALLOW
//   resource type "catalog-entity"           → CONDITIONAL {anyOf:[IS_ENTITY_OWNER {claims: user.info.ownershipEntityRefs}]}
//                                              (claims [] when there is no user)
//   other resource permission                → ALLOW
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(url, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > end) throw new Error(`timeout waiting for ${url}`);
    await new Promise(r => setTimeout(r, 100));
  }
}

(async () => {
  const mintUrl = process.env.MINT_URL?.replace(/\/+$/, '');
  if (!mintUrl) {
    process.stderr.write('MINT_URL is required (start ../mint.js first)\n');
    process.exit(2);
  }
  const port = Number(process.env.PORT) || (await freePort()); // unset or "0" → pick a free port now
  const base = `http://127.0.0.1:${port}`;
  const fixtures = path.resolve(__dirname, '../../fixtures');
  const config = {
    backend: {
      baseUrl: base,
      listen: { port, host: '127.0.0.1' },
      auth: {
        ...(process.env.DISABLE_DEFAULT_AUTH_POLICY === '1' ? { dangerouslyDisableDefaultAuthPolicy: true } : {}),
        pluginKeyStore: {
          type: 'static',
          static: {
            keys: [
              {
                publicKeyFile: process.env.PLUGIN_KEY_PUBLIC ?? path.join(fixtures, 'ec-public.pem'),
                privateKeyFile: process.env.PLUGIN_KEY_PRIVATE ?? path.join(fixtures, 'ec-private.pem'),
                keyId: 'real-backend-static',
                algorithm: 'ES256',
              },
            ],
          },
        },
        externalAccess: [
          { type: 'static', options: { token: process.env.STATIC_TOKEN ?? 'static-ci-token-123', subject: 'ci-bot' } },
        ],
      },
    },
    permission: { enabled: process.env.PERMISSION_ENABLED !== '0' },
    // auth + foreign plugins live in mint.js; catalog and permission are served by this backend.
    discovery: {
      endpoints: [
        { target: `${mintUrl}/api/{{pluginId}}`, plugins: ['auth', 'stagedoor', 'scaffolder'] },
        // Route the permission backend's apply-conditions calls (and any other catalog traffic) to an
        // external catalog, e.g. ../plugin-backend.js, to record what the real permission backend sends.
        ...(process.env.EXTERNAL_CATALOG_URL
          ? [{ target: `${process.env.EXTERNAL_CATALOG_URL.replace(/\/+$/, '')}/api/{{pluginId}}`, plugins: ['catalog'] }]
          : []),
      ],
    },
  };
  const configFile = path.join(os.tmpdir(), `stagedoor-real-backend-${process.pid}.json`);
  fs.writeFileSync(configFile, JSON.stringify(config));
  process.on('exit', () => fs.rmSync(configFile, { force: true }));
  process.argv.push('--config', configFile);
  // backend-defaults looks for a package.json upwards from cwd.
  process.chdir(__dirname);

  const { createBackend } = require('@backstage/backend-defaults');
  const { createBackendPlugin, createBackendModule, coreServices } = require('@backstage/backend-plugin-api');
  const { createPermissionResourceRef, createPermissionRule } = require('@backstage/plugin-permission-node');
  const { policyExtensionPoint } = require('@backstage/plugin-permission-node/alpha');
  const { createPermission, isResourcePermission } = require('@backstage/plugin-permission-common');
  const { z } = require('zod/v3');
  const express = require('express');

  const entityRef = createPermissionResourceRef().with({ pluginId: 'catalog', resourceType: 'catalog-entity' });
  const mk = (kind, name, owner) => ({
    apiVersion: 'backstage.io/v1alpha1',
    kind,
    metadata: { namespace: 'default', name, uid: `uid-${kind.toLowerCase()}-${name}` },
    spec: owner ? { owner } : {},
    relations: owner ? [{ type: 'ownedBy', targetRef: owner }] : [],
  });
  const entities = [
    mk('Component', 'payments', 'group:default/team-a'),
    mk('Component', 'search', 'group:default/team-b'),
    mk('Component', 'orphan'),
    mk('API', 'payments-api', 'user:default/jane'),
  ];
  const refOf = e => `${e.kind}:${e.metadata.namespace}/${e.metadata.name}`.toLowerCase();
  const find = ref => entities.find(e => refOf(e) === String(ref).toLowerCase());

  const catalogPlugin = createBackendPlugin({
    pluginId: 'catalog',
    register(env) {
      env.registerInit({
        deps: { permissionsRegistry: coreServices.permissionsRegistry, httpRouter: coreServices.httpRouter },
        async init({ permissionsRegistry, httpRouter }) {
          permissionsRegistry.addResourceType({
            resourceRef: entityRef,
            permissions: [
              createPermission({ name: 'catalog.entity.read', attributes: { action: 'read' }, resourceType: 'catalog-entity' }),
              createPermission({ name: 'catalog.entity.delete', attributes: { action: 'delete' }, resourceType: 'catalog-entity' }),
            ],
            rules: [
              createPermissionRule({
                name: 'IS_ENTITY_OWNER',
                description: 'Allow entities owned by a specified claim',
                resourceRef: entityRef,
                paramsSchema: z.object({ claims: z.array(z.string()).describe('List of claims to match at least one on within ownedBy') }),
                apply: (r, { claims }) => (r.relations ?? []).some(x => x.type === 'ownedBy' && claims.includes(x.targetRef)),
                toQuery: ({ claims }) => ({ key: 'relations.ownedBy', values: claims }),
              }),
              createPermissionRule({
                name: 'IS_ENTITY_KIND',
                description: 'Allow entities matching a specified kind',
                resourceRef: entityRef,
                paramsSchema: z.object({ kinds: z.array(z.string()).describe('List of kinds to match at least one of') }),
                apply: (r, { kinds }) => kinds.some(k => k.toLowerCase() === r.kind.toLowerCase()),
                toQuery: ({ kinds }) => ({ key: 'kind', values: kinds.map(k => k.toLowerCase()) }),
              }),
            ],
            getResources: async refs => refs.map(find),
          });
          const router = express.Router();
          router.get('/entities', (_req, res) => res.json(entities));
          router.get('/entities/by-name/:kind/:namespace/:name', (req, res) => {
            const e = find(`${req.params.kind}:${req.params.namespace}/${req.params.name}`);
            if (!e) return res.status(404).json({ error: { name: 'NotFoundError', message: 'not found' } });
            return res.json(e);
          });
          httpRouter.use(router);
        },
      });
    },
  });

  const testPolicy = {
    async handle(request, user) {
      const { permission } = request;
      if (permission.name.endsWith('.delete')) return { result: 'DENY' };
      if (!isResourcePermission(permission)) return { result: 'ALLOW' };
      if (permission.resourceType === 'catalog-entity') {
        return {
          result: 'CONDITIONAL',
          pluginId: 'catalog',
          resourceType: 'catalog-entity',
          conditions: {
            anyOf: [{ rule: 'IS_ENTITY_OWNER', resourceType: 'catalog-entity', params: { claims: user?.info.ownershipEntityRefs ?? [] } }],
          },
        };
      }
      return { result: 'ALLOW' };
    },
  };
  const policyModule = createBackendModule({
    pluginId: 'permission',
    moduleId: 'stagedoor-test-policy',
    register(env) {
      env.registerInit({
        deps: { policy: policyExtensionPoint },
        async init({ policy }) {
          policy.setPolicy(testPolicy);
        },
      });
    },
  });

  const backend = createBackend();
  backend.add(catalogPlugin);
  backend.add(require('@backstage/plugin-permission-backend'));
  backend.add(policyModule);
  await backend.start();
  await waitFor(`${base}/api/permission/health`);
  process.stdout.write(
    `${JSON.stringify({ ready: true, port, url: base, permissionUrl: `${base}/api/permission`, catalogUrl: `${base}/api/catalog` })}\n`,
  );
  const stop = () => backend.stop().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (process.env.EXIT_ON_STDIN_EOF !== '0' && !process.stdin.isTTY) {
    process.stdin.on('end', stop);
    process.stdin.resume();
  }
})().catch(e => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
