// Confab test identity provider: oidc-provider on 127.0.0.1 with one public native client.
//
// stdout carries exactly one line, the ready line; everything else goes to stderr.
// See README.md for modes, environment variables, users and admin routes.

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { format } from 'node:util';

import Provider, { errors, interactionPolicy } from 'oidc-provider';

// oidc-provider reports notices with console.info; keep stdout for the ready line alone.
console.log = (...args) => process.stderr.write(`${format(...args)}\n`);
console.info = console.log;
console.debug = console.log;

const log = (...args) => process.stderr.write(`[idp] ${format(...args)}\n`);

function envInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

const PORT = envInt('IDP_PORT', 0);
const ACCESS_TTL = envInt('IDP_ACCESS_TTL', 300) || 300;
const REFRESH_TTL = envInt('IDP_REFRESH_TTL', 86400) || 86400;
const AUDIENCE = process.env.IDP_CHAT_AUDIENCE || 'confab-chat';
const MODE = process.env.IDP_MODE || 'auto';
const ACCESS_TOKEN_ALG = process.env.IDP_ACCESS_TOKEN_ALG || 'RS256';
if (MODE !== 'auto' && MODE !== 'interactive') {
  throw new Error(`IDP_MODE must be "auto" or "interactive", got ${JSON.stringify(MODE)}`);
}
if (!['RS256', 'ES256'].includes(ACCESS_TOKEN_ALG)) {
  throw new Error(`IDP_ACCESS_TOKEN_ALG must be RS256 or ES256, got ${JSON.stringify(ACCESS_TOKEN_ALG)}`);
}
// Interoperability switches: behave like providers other than oidc-provider's defaults.
const REVOCATION_IN = process.env.IDP_REVOCATION_IN || 'oidc';
if (!['oidc', 'rfc8414', 'rfc8414-foreign', 'none'].includes(REVOCATION_IN)) {
  throw new Error(`IDP_REVOCATION_IN must be oidc, rfc8414, rfc8414-foreign or none, got ${JSON.stringify(REVOCATION_IN)}`);
}
const RESOURCE_HTTPS_ONLY = process.env.IDP_RESOURCE_HTTPS_ONLY === '1';
const ERROR_WITHOUT_ISS = process.env.IDP_ERROR_WITHOUT_ISS === '1';
// Like providers without resource indicators: access tokens are opaque strings, which only
// introspection (RFC 7662) can tell anything about.
const OPAQUE_ACCESS_TOKENS = process.env.IDP_OPAQUE_ACCESS_TOKENS === '1';
// The chat backend's own confidential client, for introspection. A public test fixture.
const BACKEND_CLIENT_ID = 'confab-backend';
const BACKEND_CLIENT_SECRET = process.env.IDP_BACKEND_CLIENT_SECRET || 'confab-backend-test-secret';

// RFC 8707 resource indicators must be absolute URIs. The chat service is addressed by
// `urn:confab:chat` (or by the audience itself when that is already an absolute URI); the
// token's `aud` is always AUDIENCE. Requests without `resource` default to the chat service.
// With IDP_RESOURCE_HTTPS_ONLY=1 (like providers that only take https resource indicators) the
// chat service is an https URL and any other value is refused with invalid_target.
function chatResource() {
  if (RESOURCE_HTTPS_ONLY) return isHttpsUrl(AUDIENCE) ? AUDIENCE : 'https://chat.confab.test/';
  return URL.canParse(AUDIENCE) ? AUDIENCE : 'urn:confab:chat';
}
function isHttpsUrl(value) {
  return URL.canParse(value) && new URL(value).protocol === 'https:';
}
const CHAT_RESOURCE = chatResource();

const CLIENT_ID = 'confab-desktop';

// Test users. Passwords are public test fixtures, not secrets.
const USERS = new Map([
  ['alice', { password: 'alice-password', name: 'Alice Example', email: 'alice@example.test' }],
  ['bob', { password: 'bob-password', name: 'Bob Example', email: 'bob@example.test' }],
]);

// ---------------------------------------------------------------------------------------------
// Storage: a plain Map with expiry. The built-in memory adapter is an LRU that evicts entries
// under load, which would make tokens vanish in long tests.

const store = new Map(); // key `${model}:${id}` -> { payload, expiresAt (ms) | undefined }
const byGrantId = new Map(); // grantId -> Set of store keys
const byUid = new Map(); // uid -> store key (sessions)
const byUserCode = new Map(); // userCode -> store key (device flow, unused but part of the API)

function liveEntry(key) {
  const entry = store.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
    removeKey(key);
    return undefined;
  }
  return entry;
}

function removeKey(key) {
  const entry = store.get(key);
  if (!entry) return;
  store.delete(key);
  const { grantId, uid, userCode } = entry.payload;
  if (grantId) {
    const keys = byGrantId.get(grantId);
    keys?.delete(key);
    if (keys && keys.size === 0) byGrantId.delete(grantId);
  }
  if (uid && byUid.get(uid) === key) byUid.delete(uid);
  if (userCode && byUserCode.get(userCode) === key) byUserCode.delete(userCode);
}

function revokeGrant(grantId) {
  for (const key of [...(byGrantId.get(grantId) ?? [])]) removeKey(key);
  byGrantId.delete(grantId);
  removeKey(`Grant:${grantId}`);
}

class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    removeKey(key);
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
    store.set(key, { payload: structuredClone(payload), expiresAt });
    if (payload.grantId) {
      if (!byGrantId.has(payload.grantId)) byGrantId.set(payload.grantId, new Set());
      byGrantId.get(payload.grantId).add(key);
    }
    if (payload.uid) byUid.set(payload.uid, key);
    if (payload.userCode) byUserCode.set(payload.userCode, key);
  }

  async find(id) {
    const entry = liveEntry(this.key(id));
    return entry ? structuredClone(entry.payload) : undefined;
  }

  async findByUserCode(userCode) {
    const key = byUserCode.get(userCode);
    const entry = key && liveEntry(key);
    return entry ? structuredClone(entry.payload) : undefined;
  }

  async findByUid(uid) {
    const key = byUid.get(uid);
    const entry = key && liveEntry(key);
    return entry ? structuredClone(entry.payload) : undefined;
  }

  async consume(id) {
    const entry = liveEntry(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    removeKey(this.key(id));
  }

  async revokeByGrantId(grantId) {
    revokeGrant(grantId);
  }
}

// Expired entries are also dropped on read; this sweep only bounds memory in long runs.
setInterval(() => {
  for (const key of [...store.keys()]) liveEntry(key);
}, 60_000).unref();

// ---------------------------------------------------------------------------------------------
// Counters for tests (GET /__test/stats).

const stats = {
  token_requests: 0,
  authorization_code_requests: 0,
  refresh_requests: 0,
  revocations: 0,
  authorization_requests: 0,
};
function resetStats() {
  for (const name of Object.keys(stats)) stats[name] = 0;
}

// ---------------------------------------------------------------------------------------------
// Keys: generated at start, never written anywhere.

function signingKey(alg) {
  const { privateKey } = alg === 'RS256'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: `${alg.toLowerCase()}-${randomUUID()}` };
}

// ---------------------------------------------------------------------------------------------
// Provider configuration.

function buildPolicy() {
  const policy = interactionPolicy.base();
  if (MODE === 'auto') {
    // In auto mode an existing session for another user must not silently win over login_hint.
    policy.get('login').checks.add(new interactionPolicy.Check(
      'login_hint_mismatch',
      'login_hint names a different user than the session',
      (ctx) => {
        const hint = ctx.oidc.params.login_hint;
        if (hint && ctx.oidc.session.accountId && ctx.oidc.session.accountId !== hint) {
          return interactionPolicy.Check.REQUEST_PROMPT;
        }
        return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      },
    ));
  }
  return policy;
}

function buildProvider(issuer) {
  const configuration = {
    adapter: MapAdapter,
    clients: [{
      client_id: CLIENT_ID,
      client_name: 'Confab',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      // Loopback redirect URIs match on any port (RFC 8252 §7.3).
      redirect_uris: ['dev.confab.chat:/oauth/callback', 'http://127.0.0.1/callback'],
      post_logout_redirect_uris: [
        'dev.confab.chat:/oauth/logout',
        'dev.confab.chat:/oauth/callback',
        'http://127.0.0.1/logout',
        'http://127.0.0.1/callback',
      ],
    }, {
      client_id: BACKEND_CLIENT_ID,
      client_secret: BACKEND_CLIENT_SECRET,
      client_name: 'Confab chat backend',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    }],
    jwks: { keys: [signingKey('RS256'), signingKey('ES256')] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: {
      openid: ['sub'],
      profile: ['name'],
      email: ['email', 'email_verified'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    // Authorization code only (RFC 9700: no implicit or hybrid flows).
    responseTypes: ['code'],
    // Put profile/email claims into the ID token too: the access token is audience-restricted to
    // the chat service, so the app cannot use it at userinfo.
    conformIdTokenClaims: false,
    async findAccount(_ctx, sub) {
      const user = USERS.get(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { sub, name: user.name, email: user.email, email_verified: true };
        },
      };
    },
    // The display name in access tokens too (as Keycloak, Auth0 or Entra ID can be set up to
    // do): the chat backend writes it into the messages it publishes.
    async extraTokenClaims(_ctx, token) {
      if (token.kind !== 'AccessToken') return undefined;
      const user = USERS.get(token.accountId);
      return user ? { name: user.name } : undefined;
    },
    pkce: { required: () => true },
    // Every refresh rotates; reuse of a rotated token revokes the whole grant.
    rotateRefreshToken: true,
    // First-party client: a refresh token whether or not offline_access survived the request
    // (oidc-provider drops offline_access when `prompt` is sent without `consent`).
    async issueRefreshToken(_ctx, client) {
      return client.clientId === CLIENT_ID && client.grantTypeAllowed('refresh_token');
    },
    // ...and it outlives the browser session (signing out of the IdP does not kill the app's grant).
    async expiresWithSession(_ctx, source) {
      return !(source.clientId === CLIENT_ID || source.scopes.has('offline_access'));
    },
    ttl: {
      AccessToken: ACCESS_TTL,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: REFRESH_TTL,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: Math.max(REFRESH_TTL, 14 * 24 * 3600),
    },
    interactions: {
      policy: buildPolicy(),
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      introspection: {
        enabled: true,
        // The chat backend (a confidential client) may introspect any token; a public client
        // only its own (oidc-provider's default rule, stated here).
        allowedPolicy: async (ctx, client, token) =>
          client.clientAuthMethod !== 'none' || token.clientId === ctx.oidc.client.clientId,
      },
      rpInitiatedLogout: { enabled: true },
      dPoP: { enabled: true },
      userinfo: { enabled: true },
      resourceIndicators: {
        enabled: !OPAQUE_ACCESS_TOKENS,
        defaultResource: async (_ctx, _client, oneOf) => oneOf ?? CHAT_RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          if (RESOURCE_HTTPS_ONLY && !isHttpsUrl(resourceIndicator)) throw new errors.InvalidTarget(`resource ${resourceIndicator} is not an https URL`);
          if (resourceIndicator !== CHAT_RESOURCE) throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}; use ${CHAT_RESOURCE}`);
          return {
            // The OIDC scopes are listed too so the token response and the JWT carry a meaningful
            // `scope` (as Keycloak and Auth0 do) instead of an empty string; `chat` is optional.
            scope: 'openid profile email offline_access chat',
            audience: AUDIENCE,
            accessTokenTTL: ACCESS_TTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: ACCESS_TOKEN_ALG } },
          };
        },
      },
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error', `<h1>Sign-in error</h1><p>${esc(out.error)}: ${esc(out.error_description ?? '')}</p>`);
    },
  };

  const provider = new Provider(issuer, configuration);
  logProviderEvents(provider);
  return provider;
}

// The wire error text is generic; the precise reason only appears here. Never log token values.
function logProviderEvents(provider) {
  const errorEvents = [
    'server_error', 'authorization.error', 'grant.error', 'revocation.error', 'introspection.error',
    'userinfo.error', 'end_session.error', 'discovery.error', 'jwks.error', 'check_session.error',
    'backchannel.error', 'pushed_authorization_request.error', 'registration_create.error',
  ];
  for (const name of errorEvents) {
    provider.on(name, (ctx, err) => {
      const detail = err?.error_detail ? ` detail=${JSON.stringify(err.error_detail)}` : '';
      const description = err?.error_description ? ` description=${JSON.stringify(err.error_description)}` : '';
      log(`${name}: ${err?.name ?? 'Error'} error=${err?.error ?? err?.message}${description}${detail} client=${ctx?.oidc?.client?.clientId ?? '-'}`);
      if (name === 'server_error' && err?.stack) log(err.stack);
    });
  }
  provider.on('grant.success', (ctx) => log(`grant.success grant_type=${ctx.oidc.params?.grant_type} account=${ctx.oidc.account?.accountId ?? '-'}`));
  provider.on('grant.revoked', (_ctx, grantId) => log(`grant.revoked grant=${grantId}`));
  provider.on('authorization.success', (ctx) => log(`authorization.success account=${ctx.oidc.session?.accountId ?? '-'}`));
  provider.on('end_session.success', () => log('end_session.success'));
}

// ---------------------------------------------------------------------------------------------
// Interactions (login and consent) and admin routes, as Koa middleware in front of the provider.

function esc(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)} · Confab test IdP</title>
<style>body{font-family:sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem}label{display:block;margin:.6rem 0}input{width:100%;padding:.4rem}button{margin:.6rem .4rem 0 0;padding:.4rem 1rem}</style>
</head><body>${body}</body></html>`;
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// Grant everything the interaction is missing: scopes, claims and resource scopes.
async function grantAll(provider, details) {
  const { prompt: { details: missing }, params, session, grantId } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  return grant.save();
}

function interactionMiddleware(provider) {
  return async (ctx, next) => {
    const match = /^\/interaction\/([\w-]+)(?:\/(login|confirm|abort))?$/.exec(ctx.path);
    if (!match) return next();
    const [, , action] = match;
    ctx.set('cache-control', 'no-store');
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const { uid, prompt, params } = details;
    const finish = async (result) => {
      await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
      ctx.respond = false;
    };

    if (action === 'abort' && ctx.method === 'POST') {
      return finish({ error: 'access_denied', error_description: 'End-User aborted interaction' });
    }

    if (MODE === 'auto' && ctx.method === 'GET' && !action) {
      if (prompt.name === 'login') {
        const user = params.login_hint || 'alice';
        if (!USERS.has(user)) {
          log(`auto login rejected: unknown user ${JSON.stringify(user)}`);
          return finish({ error: 'access_denied', error_description: `unknown test user ${user}` });
        }
        log(`auto login as ${user}`);
        return finish({ login: { accountId: user } });
      }
      if (prompt.name === 'consent') {
        const grantId = await grantAll(provider, details);
        return finish({ consent: { grantId } });
      }
      return finish({ error: 'access_denied', error_description: `unsupported prompt ${prompt.name}` });
    }

    if (ctx.method === 'GET' && !action) {
      ctx.type = 'html';
      if (prompt.name === 'login') {
        const hint = params.login_hint ?? '';
        ctx.body = page('Sign in', `<h1>Sign in to Confab</h1>
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<label>Username <input name="username" value="${esc(hint)}" autofocus required></label>
<label>Password <input name="password" type="password" required></label>
<button type="submit">Sign in</button></form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button type="submit">Cancel</button></form>`);
        return undefined;
      }
      if (prompt.name === 'consent') {
        const scopes = [...new Set([
          ...(prompt.details.missingOIDCScope ?? []),
          ...Object.values(prompt.details.missingResourceScopes ?? {}).flat(),
        ])];
        ctx.body = page('Allow access', `<h1>Allow Confab access?</h1>
<p>Signed in as <b>${esc(details.session.accountId)}</b>. Confab asks for:</p>
<ul>${scopes.map((s) => `<li>${esc(s)}</li>`).join('')}</ul>
<form method="post" action="/interaction/${esc(uid)}/confirm"><button type="submit" name="decision" value="allow">Allow</button></form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button type="submit">Deny</button></form>`);
        return undefined;
      }
      ctx.status = 400;
      ctx.body = page('Error', `<p>Unsupported prompt ${esc(prompt.name)}</p>`);
      return undefined;
    }

    if (ctx.method === 'POST' && action === 'login' && prompt.name === 'login') {
      const form = await readForm(ctx.req);
      const username = form.get('username') ?? '';
      const user = USERS.get(username);
      if (!user || user.password !== (form.get('password') ?? '')) {
        log(`interactive login failed for ${JSON.stringify(username)}`);
        ctx.status = 401;
        ctx.type = 'html';
        ctx.body = page('Sign in', `<h1>Sign in to Confab</h1><p role="alert">Unknown user or wrong password.</p>
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<label>Username <input name="username" value="${esc(username)}" required></label>
<label>Password <input name="password" type="password" autofocus required></label>
<button type="submit">Sign in</button></form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button type="submit">Cancel</button></form>`);
        return undefined;
      }
      log(`interactive login as ${username}`);
      return finish({ login: { accountId: username } });
    }

    if (ctx.method === 'POST' && action === 'confirm' && prompt.name === 'consent') {
      await readForm(ctx.req);
      const grantId = await grantAll(provider, details);
      return finish({ consent: { grantId } });
    }

    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Error', `<p>Unexpected ${esc(ctx.method)} for prompt ${esc(prompt.name)}</p>`);
    return undefined;
  };
}

function countingMiddleware() {
  return async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === '/auth') stats.authorization_requests += 1;
    if (ctx.method === 'POST' && ctx.path === '/token/revocation') stats.revocations += 1;
    await next();
    if (ctx.method === 'POST' && ctx.path === '/token') {
      stats.token_requests += 1;
      let grantType;
      try {
        grantType = ctx.oidc?.params?.grant_type ?? ctx.oidc?.body?.grant_type;
      } catch {
        grantType = undefined;
      }
      if (grantType === 'authorization_code') stats.authorization_code_requests += 1;
      if (grantType === 'refresh_token') stats.refresh_requests += 1;
    }
  };
}

// oidc-provider serves its metadata at both `/.well-known/openid-configuration` (OIDC discovery)
// and `/.well-known/oauth-authorization-server` (RFC 8414). IDP_REVOCATION_IN trims them:
// `oidc` (default) leaves both whole; `rfc8414` lists revocation and introspection only in the
// RFC 8414 metadata, as some providers do; `rfc8414-foreign` too, but that metadata names another
// issuer (a client must ignore it); `none` lists them nowhere (the endpoints still work).
const OIDC_DISCOVERY = '/.well-known/openid-configuration';
const RFC8414_METADATA = '/.well-known/oauth-authorization-server';
const MOVED_TO_RFC8414 = ['revocation_endpoint', 'introspection_endpoint'];
function metadataMiddleware() {
  return async (ctx, next) => {
    await next();
    if (ctx.method !== 'GET' || !ctx.body || typeof ctx.body !== 'object') return;
    if (ctx.path === OIDC_DISCOVERY && REVOCATION_IN !== 'oidc') {
      for (const name of MOVED_TO_RFC8414) delete ctx.body[name];
    }
    if (ctx.path === RFC8414_METADATA && REVOCATION_IN === 'none') {
      for (const name of MOVED_TO_RFC8414) delete ctx.body[name];
    }
    if (ctx.path === RFC8414_METADATA && REVOCATION_IN === 'rfc8414-foreign') {
      ctx.body.issuer = 'https://other-provider.example';
    }
  };
}

// IDP_ERROR_WITHOUT_ISS=1: error redirects to the client lose their `iss` (RFC 9207), while
// discovery still advertises it, as some providers do. Success redirects keep it.
function errorWithoutIssMiddleware() {
  return async (ctx, next) => {
    await next();
    if (!ERROR_WITHOUT_ISS) return;
    const location = ctx.response.get('location');
    if (!location || !URL.canParse(location)) return;
    const url = new URL(location);
    if (!url.searchParams.has('error') || !url.searchParams.has('iss')) return;
    url.searchParams.delete('iss');
    ctx.redirect(url.href);
    log(`error redirect without iss (error=${url.searchParams.get('error')})`);
  };
}

function adminMiddleware(provider) {
  return async (ctx, next) => {
    if (!ctx.path.startsWith('/__test/')) return next();
    if (MODE !== 'auto') return next();
    ctx.set('cache-control', 'no-store');
    if (ctx.method === 'GET' && ctx.path === '/__test/stats') {
      ctx.body = { ...stats };
      return undefined;
    }
    if (ctx.method === 'POST' && ctx.path === '/__test/reset-stats') {
      resetStats();
      ctx.body = { ...stats };
      return undefined;
    }
    if (ctx.method === 'POST' && ctx.path === '/__test/revoke-grants') {
      const sub = ctx.query.sub;
      if (typeof sub !== 'string' || !sub) {
        ctx.status = 400;
        ctx.body = { error: 'invalid_request', error_description: 'sub query parameter is required' };
        return undefined;
      }
      const grantIds = [];
      for (const [key, entry] of store) {
        if (key.startsWith('Grant:') && entry.payload.accountId === sub) grantIds.push(entry.payload.jti);
      }
      for (const grantId of grantIds) revokeGrant(grantId);
      // Sessions too, so the next login for this user starts fresh.
      for (const [key, entry] of [...store]) {
        if (key.startsWith('Session:') && entry.payload.accountId === sub) removeKey(key);
      }
      log(`admin: revoked ${grantIds.length} grant(s) of ${JSON.stringify(sub)}`);
      ctx.body = { revoked_grants: grantIds.length };
      return undefined;
    }
    ctx.status = 404;
    ctx.body = { error: 'not_found' };
    return undefined;
  };
}

// ---------------------------------------------------------------------------------------------
// Start: bind first (the issuer needs the real port), then build the provider.

let handler = (_req, res) => {
  res.statusCode = 503;
  res.end();
};
const server = http.createServer((req, res) => handler(req, res));

server.on('error', (err) => {
  log(`listen failed: ${err.message}`);
  process.exit(1);
});

// Progress lines for the log: a start that stalls shows how far it got.
log('modules loaded; listening');
server.listen(PORT, '127.0.0.1', () => {
  log('listening; making the signing keys and the provider');
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = buildProvider(issuer);
  provider.use(countingMiddleware());
  provider.use(metadataMiddleware());
  provider.use(errorWithoutIssMiddleware());
  provider.use(adminMiddleware(provider));
  provider.use(interactionMiddleware(provider));
  handler = provider.callback();

  log(`mode=${MODE} access_ttl=${ACCESS_TTL}s refresh_ttl=${REFRESH_TTL}s audience=${AUDIENCE} resource=${CHAT_RESOURCE} access_token_alg=${ACCESS_TOKEN_ALG} revocation_in=${REVOCATION_IN} resource_https_only=${RESOURCE_HTTPS_ONLY} error_without_iss=${ERROR_WITHOUT_ISS} opaque_access_tokens=${OPAQUE_ACCESS_TOKENS}`);
  log(`client_id=${CLIENT_ID} redirect_uris=dev.confab.chat:/oauth/callback, http://127.0.0.1:<any port>/callback`);
  if (MODE === 'interactive') {
    for (const [name, user] of USERS) log(`test user: ${name} / ${user.password} (${user.name}, ${user.email})`);
  } else {
    log('auto mode: login_hint=<user> signs in (default alice) and consents without forms; admin routes under /__test/');
  }
  process.stdout.write(`CONFAB_IDP_READY issuer=${issuer}\n`);
});

function shutdown(signal) {
  log(`${signal}: shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
// A supervising test process holds our stdin open; when it dies (even by SIGKILL) the pipe closes
// and the IdP goes too, instead of lingering on its port.
if (process.env.IDP_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}
process.on('SIGINT', () => shutdown('SIGINT'));
