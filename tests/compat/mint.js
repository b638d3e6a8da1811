#!/usr/bin/env node
// Mints Backstage-format tokens with jose (ES256) and serves the matching public keys, the way
// @backstage/plugin-auth-backend@0.31.0 (user tokens) and @backstage/backend-defaults@0.19.0
// (plugin tokens) do. Byte-level shapes follow:
//   user token:    plugin-auth-backend dist/identity/issueUserToken.cjs.js
//   limited token: backend-defaults dist/entrypoints/auth/user/UserTokenHandler.cjs.js createLimitedUserToken
//   plugin token:  backend-defaults dist/entrypoints/auth/plugin/PluginTokenHandler.cjs.js issueToken
//   JWKs:          {kty, x, y, crv, kid, alg} as produced by exportJWK + `kid`/`alg` assignment in
//                  TokenFactory.getKey / DatabasePluginKeySource.getPrivateSigningKey
//
// Served (127.0.0.1, port from PORT, default 0):
//   GET  /api/auth/.well-known/jwks.json                 user-token public keys  {"keys":[…]}
//   GET  /api/auth/.well-known/openid-configuration      issuer / jwks_uri / userinfo_endpoint
//   GET  /api/auth/v1/userinfo                           {"claims":{"sub","ent"}} for a minted user (Bearer user or limited token)
//   GET  /api/<pluginId>/.backstage/auth/v1/jwks.json    plugin-token public keys; 404 for unknown plugin ids
//   POST /__mint/user    {sub, ent?, ttl?, omitEnt?, claims?}       → {token, limitedToken, header, payload, expiresAt}
//   POST /__mint/plugin  {sub, aud, ttl?, obo?: <user token>}       → {token, header, payload}
//   POST /__mint/raw     {header, payload, key: "user"|"plugin:<id>"} → {token}   (signs anything: for negative tests)
//   GET  /__tokens                                                   the startup token set again
//
// Startup: prints ONE JSON line {"ready":true,"port","url","authBaseUrl","userJwksUrl","pluginIds":[…],"tokens":{…}}
// where tokens holds a ready-made set (see DEFAULT TOKENS below).
//
// Env:
//   PORT                    listen port (default 0 = ephemeral)
//   PLUGIN_IDS              plugins that get a signing key up front (default "catalog,permission,scaffolder,stagedoor");
//                           minting for another id creates its key on the fly.
//   USER_KEY_FILE / USER_KID     optional PKCS#8 PEM for the user-token key (default: generated ES256, random uuid kid)
//   PLUGIN_KEY_FILE              optional PKCS#8 PEM used for EVERY plugin key (kid "<pluginId>-static")
//   TOKEN_TTL               default lifetime in seconds (default 3600, Backstage default)
//   ISSUER                  overrides the `iss` of user tokens (default "<url>/api/auth")
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as jose from 'jose';
import { listenAndAnnounce, log, readBody } from './lib/common.js';

const ALG = 'ES256';
const TTL = Number(process.env.TOKEN_TTL ?? 3600);
const PLUGIN_ID_PATTERN = /^[a-z0-9_-]+$/i;
const TYP = {
  user: 'vnd.backstage.user',
  limitedUser: 'vnd.backstage.limited-user',
  plugin: 'vnd.backstage.plugin',
};

// ---------------------------------------------------------------- keys
async function makeKey(kid, pemFile) {
  const privateKey = pemFile
    ? await jose.importPKCS8(readFileSync(pemFile, 'utf8'), ALG, { extractable: true })
    : (await jose.generateKeyPair(ALG, { extractable: true })).privateKey;
  // Public JWK exactly as Backstage builds it: exportJWK(publicKey), then .kid, then .alg.
  const privateJwk = await jose.exportJWK(privateKey);
  const { d: _d, ...pub } = privateJwk;
  const publicJwk = { ...(await jose.exportJWK(await jose.importJWK(pub, ALG))) };
  publicJwk.kid = kid;
  publicJwk.alg = ALG;
  return { kid, privateKey, publicJwk };
}

const userKey = await makeKey(process.env.USER_KID ?? randomUUID(), process.env.USER_KEY_FILE);
const pluginKeys = new Map();
async function pluginKey(pluginId) {
  if (!PLUGIN_ID_PATTERN.test(pluginId)) throw httpError(400, `invalid plugin id ${pluginId}`);
  if (!pluginKeys.has(pluginId)) {
    const file = process.env.PLUGIN_KEY_FILE;
    pluginKeys.set(pluginId, makeKey(file ? `${pluginId}-static` : randomUUID(), file));
  }
  return pluginKeys.get(pluginId);
}
const initialPlugins = (process.env.PLUGIN_IDS ?? 'catalog,permission,scaffolder,stagedoor')
  .split(',')
  .map(s => s.trim())
  .filter(Boolean);
for (const id of initialPlugins) await pluginKey(id);

// ---------------------------------------------------------------- minting
let issuer; // set once listening
const userInfo = new Map(); // sub → {claims:{sub, ent, ...}}
const now = () => Math.floor(Date.now() / 1000);
const b64json = obj => jose.base64url.encode(JSON.stringify(obj));

/** issueUserToken(): claims order {...additional, iss, sub, ent, aud, iat, exp, uip}. */
async function mintUser({ sub, ent, ttl = TTL, omitEnt = false, claims: additional = {}, iat = now() }) {
  if (typeof sub !== 'string' || !sub) throw httpError(400, 'sub is required');
  const ownership = ent ?? [sub];
  const exp = iat + ttl;
  const header = { typ: TYP.user, alg: ALG, kid: userKey.kid };
  // uip = signature of the JWS {typ: limited-user, alg, kid}.{sub, iat, exp}
  const uipJws = await new jose.GeneralSign(new TextEncoder().encode(JSON.stringify({ sub, iat, exp })))
    .addSignature(userKey.privateKey)
    .setProtectedHeader({ typ: TYP.limitedUser, alg: ALG, kid: userKey.kid })
    .sign();
  const uip = uipJws.signatures[0].signature;
  const payload = { ...additional, iss: issuer, sub, ent: ownership, aud: 'backstage', iat, exp, uip };
  if (omitEnt) delete payload.ent; // auth.omitIdentityTokenOwnershipClaim: true (the default since auth-backend 0.28)
  const token = await new jose.SignJWT(payload).setProtectedHeader(header).sign(userKey.privateKey);
  userInfo.set(sub, { claims: { sub, ent: ownership, ...additional } });
  return { token, limitedToken: limitedUserToken(token), header, payload, expiresAt: new Date(exp * 1000).toISOString() };
}

/** UserTokenHandler.createLimitedUserToken(): header {typ, alg, kid}, payload {sub, iat, exp}, signature = uip. */
function limitedUserToken(userToken) {
  const [h, p] = userToken.split('.');
  const header = JSON.parse(new TextDecoder().decode(jose.base64url.decode(h)));
  const payload = JSON.parse(new TextDecoder().decode(jose.base64url.decode(p)));
  if (header.typ === TYP.limitedUser || !header.typ) return userToken;
  return [b64json({ typ: TYP.limitedUser, alg: header.alg, kid: header.kid }), b64json({ sub: payload.sub, iat: payload.iat, exp: payload.exp }), payload.uip].join('.');
}

/** DefaultPluginTokenHandler.issueToken(): claims {sub, aud, iat, exp, obo?}, exp = min(iat+ttl, obo exp). */
async function mintPlugin({ sub, aud, ttl = TTL, obo, iat = now() }) {
  if (typeof sub !== 'string' || typeof aud !== 'string') throw httpError(400, 'sub and aud are required');
  const key = await pluginKey(sub);
  let oboToken;
  let exp = iat + ttl;
  if (obo) {
    oboToken = limitedUserToken(obo); // a full user token is converted first, like getPluginRequestToken
    exp = Math.min(exp, jose.decodeJwt(oboToken).exp);
  }
  const payload = { sub, aud, iat, exp, obo: oboToken };
  if (!oboToken) delete payload.obo; // JSON.stringify drops undefined anyway
  const header = { typ: TYP.plugin, alg: ALG, kid: key.kid };
  const token = await new jose.SignJWT(payload).setProtectedHeader(header).sign(key.privateKey);
  return { token, header, payload };
}

async function mintRaw({ header, payload, key = 'user' }) {
  const k = key === 'user' ? userKey : await pluginKey(String(key).replace(/^plugin:/, ''));
  const h = { alg: ALG, kid: k.kid, ...header };
  return { token: await new jose.SignJWT(payload).setProtectedHeader(h).sign(k.privateKey) };
}

// ---------------------------------------------------------------- default token set
async function defaultTokens() {
  const jane = await mintUser({ sub: 'user:default/jane', ent: ['user:default/jane', 'group:default/team-a'] });
  const janeNoEnt = await mintUser({ sub: 'user:default/jane', ent: ['user:default/jane', 'group:default/team-a'], omitEnt: true });
  const bob = await mintUser({ sub: 'user:default/bob', ent: ['user:default/bob', 'group:default/team-b'] });
  // NB: like auth-backend's user_info table, /v1/userinfo keeps the claims of the LAST token minted for a sub.
  const expired = await mintUser({ sub: 'user:default/jane', ent: ['user:default/jane', 'group:default/team-a'], iat: now() - 7200, ttl: 3600 });
  return {
    // full user token incl. `ent` (auth.omitIdentityTokenOwnershipClaim: false)
    userJane: jane.token,
    // what auth-backend ≥0.28 issues by default: no `ent`, ownership via /api/auth/v1/userinfo
    userJaneNoEnt: janeNoEnt.token,
    userBob: bob.token,
    userJaneExpired: expired.token,
    limitedJane: jane.limitedToken,
    // service-to-service: catalog calling the permission backend (service principal plugin:catalog)
    pluginCatalogToPermission: (await mintPlugin({ sub: 'catalog', aud: 'permission' })).token,
    // catalog calling permission on behalf of jane (user principal with actor plugin:catalog)
    pluginCatalogToPermissionOboJane: (await mintPlugin({ sub: 'catalog', aud: 'permission', obo: jane.token })).token,
    // the permission backend calling catalog apply-conditions on behalf of jane (what §2.5 sends)
    pluginPermissionToCatalogOboJane: (await mintPlugin({ sub: 'permission', aud: 'catalog', obo: jane.token })).token,
    // stagedoor calling catalog as a plain service
    pluginStagedoorToCatalog: (await mintPlugin({ sub: 'stagedoor', aud: 'catalog' })).token,
  };
}

// ---------------------------------------------------------------- http
function httpError(status, message) {
  return Object.assign(new Error(message), { status });
}
function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

let tokens;
const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://x');
    const path = url.pathname;
    log(`${req.method} ${path}`);
    if (req.method === 'GET' && path === '/api/auth/.well-known/jwks.json') {
      return sendJson(res, 200, { keys: [userKey.publicJwk] });
    }
    if (req.method === 'GET' && path === '/api/auth/.well-known/openid-configuration') {
      return sendJson(res, 200, {
        issuer,
        token_endpoint: `${issuer}/v1/token`,
        userinfo_endpoint: `${issuer}/v1/userinfo`,
        jwks_uri: `${issuer}/.well-known/jwks.json`,
        response_types_supported: ['code', 'id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'EdDSA'],
        scopes_supported: ['openid'],
        claims_supported: ['sub', 'ent'],
      });
    }
    if (req.method === 'GET' && path === '/api/auth/v1/userinfo') {
      const m = req.headers.authorization?.match(/^Bearer[ ]+(\S+)$/i);
      if (!m) {
        return sendJson(res, 401, { error: { name: 'AuthenticationError', message: 'No token provided' }, request: { method: 'GET', url: '/v1/userinfo' }, response: { statusCode: 401 } });
      }
      let sub;
      try {
        const { typ } = jose.decodeProtectedHeader(m[1]);
        if (typ !== TYP.user && typ !== TYP.limitedUser) throw new Error('not a user token');
        ({ payload: { sub } } = await jose.jwtVerify(m[1], jose.createLocalJWKSet({ keys: [userKey.publicJwk] }), { typ, requiredClaims: ['iat', 'exp', 'sub'] }));
      } catch {
        return sendJson(res, 401, { error: { name: 'AuthenticationError', message: 'Failed user token verification' }, request: { method: 'GET', url: '/v1/userinfo' }, response: { statusCode: 401 } });
      }
      const info = userInfo.get(sub);
      if (!info) {
        res.writeHead(404, { 'content-type': 'text/html; charset=utf-8' });
        return res.end('User info not found');
      }
      return sendJson(res, 200, info);
    }
    const jwksMatch = path.match(/^\/api\/([^/]+)\/\.backstage\/auth\/v1\/jwks\.json$/);
    if (req.method === 'GET' && jwksMatch) {
      const id = decodeURIComponent(jwksMatch[1]);
      if (!pluginKeys.has(id)) {
        res.writeHead(404);
        return res.end();
      }
      return sendJson(res, 200, { keys: [(await pluginKeys.get(id)).publicJwk] });
    }
    if (req.method === 'POST' && path.startsWith('/__mint/')) {
      const body = JSON.parse((await readBody(req)) || '{}');
      const kind = path.slice('/__mint/'.length);
      if (kind === 'user') return sendJson(res, 200, await mintUser(body));
      if (kind === 'plugin') return sendJson(res, 200, await mintPlugin(body));
      if (kind === 'raw') return sendJson(res, 200, await mintRaw(body));
    }
    if (req.method === 'GET' && path === '/__tokens') return sendJson(res, 200, tokens);
    res.writeHead(404);
    return res.end();
  } catch (e) {
    return sendJson(res, e.status ?? 500, { error: { name: e.name, message: e.message } });
  }
});

await listenAndAnnounce(server, async url => {
  issuer = process.env.ISSUER ?? `${url}/api/auth`;
  tokens = await defaultTokens();
  return {
    authBaseUrl: `${url}/api/auth`,
    userJwksUrl: `${url}/api/auth/.well-known/jwks.json`,
    userKid: userKey.kid,
    pluginIds: [...pluginKeys.keys()],
    tokens,
  };
});
