#!/usr/bin/env node
// A tiny stand-in for Backstage's permission backend (`/api/permission`), used ONLY to observe
// the wire format of the real PermissionClient (client-smoke.js). It is not a policy engine.
//
// Request validation is a verbatim copy of the zod schema in
// @backstage/plugin-permission-backend@0.7.18 dist/service/router.cjs.js (zod/v3), so a 400 has
// the same `InputError(zodError.toString())` message as the real backend. Credentials are not
// verified: the Authorization header is only recorded.
//
// Endpoints:
//   GET  /api/permission/health     -> {"status":"ok"}
//   POST /api/permission/authorize  -> {"items":[{id, result, ...}]} (decision table below)
//   GET  /__requests                -> every request received so far (method, url, rawHeaders, headers, body)
//   DELETE /__requests              -> clear the log
//   PUT  /__mode  {"mode": M}       -> switch the answer mode (initial: env FAKE_MODE, default "normal")
//   anything else                   -> 404 with empty body (like Backstage's MiddlewareFactory.notFound())
//
// Decision table (deterministic, so tests can assert on it):
//   * permission name ends with ".delete"                      -> DENY
//   * basic permission                                         -> ALLOW
//   * resource permission, no resourceRef                      -> CONDITIONAL (IS_ENTITY_OWNER claims FAKE_CLAIMS)
//   * resource permission, resourceRef string                  -> ALLOW, or DENY if the ref contains "secret"
//   * resource permission, resourceRef array (batched client)  -> array of the above, one per ref
//   * FAKE_CONDITIONAL_PLUGIN_ID (default "catalog") is the pluginId of CONDITIONAL answers.
// Misbehaving modes (to observe how the client reacts):
//   "always-conditional"  every resource permission is CONDITIONAL, even with a resourceRef
//   "drop-first"          the first response item is omitted
//   "error-403"           403 with a Backstage NotAllowedError envelope
//   "not-json"            200 with a text/plain body
//
// Env: PORT (default 0), FAKE_CLAIMS (comma list, default "user:default/jane,group:default/team-a").
import http from 'node:http';
import { z } from 'zod/v3';
import { InputError, NotAllowedError } from '@backstage/errors';
import { errorEnvelope, listenAndAnnounce, log, readBody } from './lib/common.js';

// ---- verbatim schema from plugin-permission-backend 0.7.18 router ----
const attributesSchema = z.object({
  action: z
    .union([z.literal('create'), z.literal('read'), z.literal('update'), z.literal('delete')])
    .optional(),
});
const basicPermissionSchema = z.object({
  type: z.literal('basic'),
  name: z.string(),
  attributes: attributesSchema,
});
const resourcePermissionSchema = z.object({
  type: z.literal('resource'),
  name: z.string(),
  attributes: attributesSchema,
  resourceType: z.string(),
});
const evaluatePermissionRequestSchema = z.union([
  z.object({
    id: z.string(),
    resourceRef: z.undefined().optional(),
    permission: basicPermissionSchema,
  }),
  z.object({
    id: z.string(),
    resourceRef: z.union([z.string(), z.array(z.string()).nonempty()]).optional(),
    permission: resourcePermissionSchema,
  }),
]);
const evaluatePermissionRequestBatchSchema = z.object({
  items: z.array(evaluatePermissionRequestSchema),
});
// ----------------------------------------------------------------------

const claims = (process.env.FAKE_CLAIMS ?? 'user:default/jane,group:default/team-a')
  .split(',')
  .map(s => s.trim())
  .filter(Boolean);
const conditionalPluginId = process.env.FAKE_CONDITIONAL_PLUGIN_ID ?? 'catalog';

const requests = [];
let mode = process.env.FAKE_MODE ?? 'normal';
const MODES = ['normal', 'always-conditional', 'drop-first', 'error-403', 'not-json'];

function decideRef(permission, ref) {
  if (permission.name.endsWith('.delete')) return 'DENY';
  return ref.includes('secret') ? 'DENY' : 'ALLOW';
}

function decide(item) {
  const { id, permission, resourceRef } = item;
  if (permission.name.endsWith('.delete')) return { id, result: 'DENY' };
  if (permission.type === 'basic') return { id, result: 'ALLOW' };
  if (resourceRef === undefined || mode === 'always-conditional') {
    return {
      id,
      result: 'CONDITIONAL',
      pluginId: conditionalPluginId,
      resourceType: permission.resourceType,
      conditions: {
        anyOf: [{ rule: 'IS_ENTITY_OWNER', resourceType: permission.resourceType, params: { claims } }],
      },
    };
  }
  if (Array.isArray(resourceRef)) {
    return { id, result: resourceRef.map(ref => decideRef(permission, ref)) };
  }
  return { id, result: decideRef(permission, resourceRef) };
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer(async (req, res) => {
  // `url` as Backstage's error handler reports it: relative to the plugin mount point.
  const pluginUrl = req.url.replace(/^\/api\/permission/, '') || '/';
  try {
    const raw = await readBody(req);
    if (req.url === '/__requests') {
      if (req.method === 'DELETE') requests.length = 0;
      return sendJson(res, 200, requests);
    }
    if (req.url === '/__mode' && req.method === 'PUT') {
      const wanted = JSON.parse(raw).mode;
      if (!MODES.includes(wanted)) throw new InputError(`unknown mode ${wanted}; one of ${MODES.join(', ')}`);
      mode = wanted;
      return sendJson(res, 200, { mode });
    }
    let body;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = raw;
    }
    requests.push({
      method: req.method,
      url: req.url,
      httpVersion: req.httpVersion,
      rawHeaders: req.rawHeaders,
      headers: req.headers,
      body,
    });
    log(`${req.method} ${req.url}`);

    if (req.method === 'GET' && req.url === '/api/permission/health') {
      return sendJson(res, 200, { status: 'ok' });
    }
    if (req.method === 'POST' && req.url === '/api/permission/authorize') {
      const parsed = evaluatePermissionRequestBatchSchema.safeParse(body);
      if (!parsed.success) throw new InputError(parsed.error.toString());
      if (mode === 'error-403') throw new NotAllowedError('fake-permission-backend: mode error-403');
      if (mode === 'not-json') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        return res.end('not json');
      }
      const items = parsed.data.items.map(decide);
      return sendJson(res, 200, { items: mode === 'drop-first' ? items.slice(1) : items });
    }
    // Backstage's rootHttpRouter answers unknown routes with a bare 404 (MiddlewareFactory.notFound()).
    res.writeHead(404);
    return res.end();
  } catch (e) {
    const { statusCode, body } = errorEnvelope(e, req.method, pluginUrl);
    return sendJson(res, statusCode, body);
  }
});

await listenAndAnnounce(server, url => ({ permissionUrl: `${url}/api/permission` }));
