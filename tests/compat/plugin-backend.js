#!/usr/bin/env node
// A real Backstage-style plugin backend for the `catalog-entity` resource type, built with the
// REAL createPermissionIntegrationRouter from @backstage/plugin-permission-node@0.11.6 and
// served by express. Acts as (a) the plugin that answers apply-conditions and (b) an upstream
// that stagedoor can proxy.
//
// Everything is mounted under /api/$PLUGIN_ID (default "catalog"):
//   GET    /.well-known/backstage/permissions/metadata           (real router)
//   POST   /.well-known/backstage/permissions/apply-conditions   (real router)
//   GET    /entities                                  → Entity[]
//   GET    /entities/by-name/:kind/:namespace/:name   → Entity | 404 NotFoundError
//   GET    /entities/by-uid/:uid                      → Entity | 404
//   DELETE /entities/by-uid/:uid                      → 204 | 404 (really removes it; POST /__reset restores)
// Test-only routes at the root (NOT under /api, never behind the auth emulation):
//   GET /__requests   every request seen under /api (method, url, headers, body, principal)
//   DELETE /__requests  clear that log;  POST /__reset  restore the entity list and clear the log
//
// Auth (env AUTH_MODE):
//   "off" (default)  no credential checks at all: exactly what createPermissionIntegrationRouter
//                    does on its own (it has NO auth; in a real backend the checks come from the
//                    framework, see below).
//   "backstage"      emulates what @backstage/backend-defaults@0.19.0 puts in front of a plugin:
//                    the default credentials barrier (user or service required, limited user tokens
//                    refused: 401 AuthenticationError) and permissionsRegistryServiceFactory's guard
//                    on apply-conditions (user principal WITHOUT actor → 403 NotAllowedError with an
//                    empty message). Tokens are verified like DefaultAuthService.authenticate:
//                    plugin token (typ vnd.backstage.plugin, aud = $PLUGIN_ID, JWKS at
//                    $DISCOVERY_URL/api/<sub>/.backstage/auth/v1/jwks.json, obo → user principal with
//                    actor), then user token (typ vnd.backstage.user / limited-user or legacy
//                    aud=backstage, JWKS at $DISCOVERY_URL/api/auth/.well-known/jwks.json), then
//                    static external tokens from STATIC_TOKENS ("token1=subject1,token2=subject2").
//
// Env: PORT (default 0), PLUGIN_ID (default "catalog"), AUTH_MODE, DISCOVERY_URL, STATIC_TOKENS.
// Prints one JSON line when listening: {"ready":true,"port":N,"url":…,"baseUrl":…/api/catalog,…}.
import http from 'node:http';
import express from 'express';
import Router from 'express-promise-router';
import { z } from 'zod/v3';
import * as jose from 'jose';
import { AuthenticationError, NotAllowedError, NotFoundError } from '@backstage/errors';
import { createPermission } from '@backstage/plugin-permission-common';
import { createPermissionIntegrationRouter, createPermissionRule } from '@backstage/plugin-permission-node';
import { expressErrorHandler, listenAndAnnounce, log } from './lib/common.js';

const PLUGIN_ID = process.env.PLUGIN_ID ?? 'catalog';
const AUTH_MODE = process.env.AUTH_MODE ?? 'off';
const DISCOVERY_URL = process.env.DISCOVERY_URL?.replace(/\/+$/, '');
const STATIC_TOKENS = new Map(
  (process.env.STATIC_TOKENS ?? '')
    .split(',')
    .map(s => s.trim())
    .filter(Boolean)
    .map(pair => {
      const i = pair.indexOf('=');
      return i < 0 ? [pair, 'external:static'] : [pair.slice(0, i), pair.slice(i + 1)];
    }),
);
if (!['off', 'backstage'].includes(AUTH_MODE)) {
  process.stderr.write(`AUTH_MODE must be "off" or "backstage", got ${AUTH_MODE}\n`);
  process.exit(2);
}
if (AUTH_MODE === 'backstage' && !DISCOVERY_URL && STATIC_TOKENS.size === 0) {
  process.stderr.write('AUTH_MODE=backstage needs DISCOVERY_URL (JWKS) and/or STATIC_TOKENS\n');
  process.exit(2);
}

// ---------------------------------------------------------------- data
const RESOURCE_TYPE = 'catalog-entity';

function entity(kind, name, { owner, namespace = 'default', uid, spec = {}, labels } = {}) {
  const e = {
    apiVersion: 'backstage.io/v1alpha1',
    kind,
    metadata: { namespace, name, uid: uid ?? `uid-${kind.toLowerCase()}-${name}`, ...(labels ? { labels } : {}) },
    spec: { ...(owner ? { owner } : {}), ...spec },
    relations: [],
  };
  if (owner) {
    // spec.owner may be short ("team-b"); the catalog resolves it to a full ref for the relation.
    const targetRef = owner.includes(':') ? owner : `group:${namespace}/${owner}`;
    e.relations.push({ type: 'ownedBy', targetRef });
  }
  return e;
}

const INITIAL_ENTITIES = [
  entity('Component', 'payments', { owner: 'group:default/team-a', spec: { type: 'service', lifecycle: 'production' } }),
  entity('Component', 'search', { owner: 'team-b', spec: { type: 'website', lifecycle: 'experimental' } }),
  entity('Component', 'orphan', { spec: { type: 'library' } }),
  entity('API', 'payments-api', { owner: 'user:default/jane', spec: { type: 'openapi' } }),
  entity('Group', 'team-a', { spec: { type: 'team', children: [] } }),
  entity('User', 'jane', { spec: { memberOf: ['group:default/team-a'] } }),
];
let entities = structuredClone(INITIAL_ENTITIES);

const refOf = e => `${e.kind}:${e.metadata.namespace ?? 'default'}/${e.metadata.name}`.toLowerCase();
const findByRef = ref => entities.find(e => refOf(e) === String(ref).toLowerCase());

// ---------------------------------------------------------------- permissions + rules
const catalogPermissions = [
  createPermission({ name: 'catalog.entity.read', attributes: { action: 'read' }, resourceType: RESOURCE_TYPE }),
  createPermission({ name: 'catalog.entity.delete', attributes: { action: 'delete' }, resourceType: RESOURCE_TYPE }),
  createPermission({ name: 'catalog.entity.refresh', attributes: { action: 'update' }, resourceType: RESOURCE_TYPE }),
  createPermission({ name: 'catalog.entity.create', attributes: { action: 'create' } }),
  createPermission({ name: 'catalog.location.read', attributes: { action: 'read' } }),
];

// Same zod flavour (zod/v3) and descriptions as plugin-catalog-backend@4.0.5's rules.
const isEntityOwner = createPermissionRule({
  name: 'IS_ENTITY_OWNER',
  description: 'Allow entities owned by a specified claim',
  resourceType: RESOURCE_TYPE,
  paramsSchema: z.object({
    claims: z.array(z.string()).describe('List of claims to match at least one on within ownedBy'),
  }),
  // The catalog itself only looks at relations[type=ownedBy].targetRef; this fixture also
  // accepts a literal spec.owner match (as the test plan asks).
  apply: (resource, { claims }) =>
    (resource.relations ?? []).some(r => r.type === 'ownedBy' && claims.includes(r.targetRef)) ||
    (typeof resource.spec?.owner === 'string' && claims.includes(resource.spec.owner)),
  toQuery: ({ claims }) => ({ key: 'relations.ownedBy', values: claims }),
});

const isEntityKind = createPermissionRule({
  name: 'IS_ENTITY_KIND',
  description: 'Allow entities matching a specified kind',
  resourceType: RESOURCE_TYPE,
  paramsSchema: z.object({
    kinds: z.array(z.string()).describe('List of kinds to match at least one of'),
  }),
  apply: (resource, { kinds }) => kinds.some(k => k.toLowerCase() === resource.kind.toLowerCase()),
  toQuery: ({ kinds }) => ({ key: 'kind', values: kinds.map(k => k.toLowerCase()) }),
});

const permissionIntegrationRouter = createPermissionIntegrationRouter({
  resources: [
    {
      resourceType: RESOURCE_TYPE,
      permissions: catalogPermissions,
      rules: [isEntityOwner, isEntityKind],
      // Must return one slot per ref, in order; undefined = not found (→ DENY).
      getResources: async refs => refs.map(findByRef),
    },
  ],
});

// ---------------------------------------------------------------- auth emulation
const tokenTypes = {
  user: 'vnd.backstage.user',
  limitedUser: 'vnd.backstage.limited-user',
  plugin: 'vnd.backstage.plugin',
};
const jwksCache = new Map();
function jwks(url) {
  let set = jwksCache.get(url);
  if (!set) {
    set = jose.createRemoteJWKSet(new URL(url));
    jwksCache.set(url, set);
  }
  return set;
}

async function verifyUserToken(token) {
  let opts;
  try {
    const { typ } = jose.decodeProtectedHeader(token);
    if (typ === tokenTypes.user || typ === tokenTypes.limitedUser) {
      opts = { requiredClaims: ['iat', 'exp', 'sub'], typ };
    } else if (jose.decodeJwt(token).aud === 'backstage') {
      opts = { audience: 'backstage' };
    }
  } catch {
    /* not a JWT */
  }
  if (!opts) return undefined;
  if (!DISCOVERY_URL) throw new AuthenticationError('Failed user token verification');
  const { payload, protectedHeader } = await jose
    .jwtVerify(token, jwks(`${DISCOVERY_URL}/api/auth/.well-known/jwks.json`), opts)
    .catch(e => {
      log('user token verification failed:', e.message);
      throw new AuthenticationError('Failed user token verification');
    });
  if (!payload.sub) throw new AuthenticationError('No user sub found in token');
  return { userEntityRef: payload.sub, limited: protectedHeader.typ === tokenTypes.limitedUser, payload };
}

async function authenticate(token, { allowLimitedAccess = false } = {}) {
  // 1. plugin token
  let typ;
  try {
    typ = jose.decodeProtectedHeader(token).typ;
  } catch {
    /* fallthrough */
  }
  if (typ === tokenTypes.plugin) {
    const sub = String(jose.decodeJwt(token).sub);
    if (!/^[a-z0-9_-]+$/i.test(sub)) throw new AuthenticationError('Invalid plugin token: forbidden subject format');
    if (!DISCOVERY_URL) throw new AuthenticationError('Failed plugin token verification');
    const { payload } = await jose
      .jwtVerify(token, jwks(`${DISCOVERY_URL}/api/${sub}/.backstage/auth/v1/jwks.json`), {
        typ: tokenTypes.plugin,
        audience: PLUGIN_ID,
        requiredClaims: ['iat', 'exp', 'sub', 'aud'],
      })
      .catch(e => {
        log('plugin token verification failed:', e.message);
        throw new AuthenticationError('Failed plugin token verification');
      });
    if (payload.obo) {
      const user = await verifyUserToken(payload.obo);
      if (!user) throw new AuthenticationError('Invalid user token in plugin token obo claim');
      return { type: 'user', userEntityRef: user.userEntityRef, actor: { type: 'service', subject: `plugin:${sub}` } };
    }
    return { type: 'service', subject: `plugin:${sub}` };
  }
  // 2. user token
  const user = await verifyUserToken(token);
  if (user) {
    if (user.limited && !allowLimitedAccess) throw new AuthenticationError('Illegal limited user token');
    return { type: 'user', userEntityRef: user.userEntityRef };
  }
  // 3. static external token
  if (STATIC_TOKENS.has(token)) return { type: 'service', subject: STATIC_TOKENS.get(token) };
  throw new AuthenticationError('Illegal token');
}

async function credentialsOf(req) {
  if (!req.principalPromise) {
    const m = typeof req.headers.authorization === 'string' ? req.headers.authorization.match(/^Bearer[ ]+(\S+)$/i) : null;
    req.principalPromise = m ? authenticate(m[1]) : Promise.resolve({ type: 'none' });
  }
  return req.principalPromise;
}

// ---------------------------------------------------------------- app
const requests = [];
const app = express();
app.disable('x-powered-by');

app.get('/__requests', (_req, res) => res.json(requests));
app.delete('/__requests', (_req, res) => {
  requests.length = 0;
  res.json([]);
});
app.post('/__reset', (_req, res) => {
  entities = structuredClone(INITIAL_ENTITIES);
  requests.length = 0;
  res.json({ ok: true });
});

const plugin = Router();
// Record every request (body captured after the JSON parser below has run).
plugin.use((req, res, next) => {
  const entry = { method: req.method, url: req.originalUrl, headers: req.headers, rawHeaders: req.rawHeaders };
  requests.push(entry);
  res.on('finish', () => {
    entry.body = req.body;
    entry.status = res.statusCode;
    entry.principal = req.principal;
  });
  next();
});
plugin.use(express.json());

if (AUTH_MODE === 'backstage') {
  // createCredentialsBarrier: every route needs a user or service principal.
  plugin.use(async (req, _res, next) => {
    const credentials = await credentialsOf(req).catch(e => {
      req.principal = { error: { name: e.name, message: e.message } };
      throw e;
    });
    req.principal = credentials;
    if (credentials.type === 'none') throw new AuthenticationError('Missing credentials');
    next();
  });
  // permissionsRegistryServiceFactory: apply-conditions is for the permission backend (obo) or services only.
  plugin.use('/.well-known/backstage/permissions/apply-conditions', async (req, _res, next) => {
    const credentials = await credentialsOf(req);
    if (credentials.type === 'user' && !credentials.actor) throw new NotAllowedError();
    next();
  });
}

plugin.use(permissionIntegrationRouter);

plugin.get('/entities', (_req, res) => res.json(entities));
plugin.get('/entities/by-name/:kind/:namespace/:name', (req, res) => {
  const { kind, namespace, name } = req.params;
  const e = findByRef(`${kind}:${namespace}/${name}`);
  if (!e) throw new NotFoundError(`No entity named '${name}' found, with kind '${kind}' in namespace '${namespace}'`);
  res.json(e);
});
plugin.get('/entities/by-uid/:uid', (req, res) => {
  const e = entities.find(x => x.metadata.uid === req.params.uid);
  if (!e) throw new NotFoundError(`No entity with uid ${req.params.uid}`);
  res.json(e);
});
plugin.delete('/entities/by-uid/:uid', (req, res) => {
  const before = entities.length;
  entities = entities.filter(x => x.metadata.uid !== req.params.uid);
  if (entities.length === before) throw new NotFoundError(`No entity with uid ${req.params.uid}`);
  res.status(204).end();
});

plugin.use(expressErrorHandler());
app.use(`/api/${PLUGIN_ID}`, plugin);
// Like Backstage's MiddlewareFactory.notFound(): bare 404.
app.use((_req, res) => res.status(404).end());

await listenAndAnnounce(http.createServer(app), url => ({
  baseUrl: `${url}/api/${PLUGIN_ID}`,
  pluginId: PLUGIN_ID,
  authMode: AUTH_MODE,
  entities: entities.map(e => ({ ref: refOf(e), uid: e.metadata.uid })),
}));
