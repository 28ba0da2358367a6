'use strict';
// Microsoft stand-ins for mailshift's tests: a token service shaped like the
// Microsoft identity platform (v2.0 endpoints), a Microsoft Graph mail subset
// serving the Dovecot Maildirs of the test world, and a loopback control
// port (test switches, counters, and Dovecot's token introspection).
// Listens on 127.0.0.1 only.  Usage: node ms-standin.js DIR/registry.json

const fs = require('node:fs');
const path = require('node:path');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const crypto = require('node:crypto');
const jose = require('jose');

const reg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const HOST = '127.0.0.1';
const OUTLOOK = 'https://outlook.office365.com';
const OUTLOOK_ALT = 'https://outlook.office.com';
const GRAPH = 'https://graph.microsoft.com';
const TOKEN_BASE = `https://${HOST}:${reg.ports.token}`;
const GRAPH_BASE = `https://${HOST}:${reg.ports.graph}`;
const MAX_BODY = 8 * 1024 * 1024;

function log(...a) {
	console.log(new Date().toISOString(), ...a);
}

// ------------------------------------------------------------------ state
const state = {
	mode: 'normal',			// token service: normal | slow:S | error5xx | garbage | close
	tokenLifetime: 3599,
	deviceInterval: 1,
	deviceExpiresIn: 900,
	counters: {},			// "client_id scope" -> n
	tokenRequests: 0,
	introspections: 0,
	devices: new Map(),		// device_code -> {...}
	userCodes: new Map(),		// user_code -> device_code
	refresh: new Map(),		// refresh token -> {...}
	jtis: new Map(),		// client assertion jti -> exp (replay cache)
	graph: {
		fail: null,		// {status, count, retryAfter}
		delayMs: 0,
		requests: {},		// "METHOD kind mailbox" -> n
		total: 0,
		current: {},		// mailbox -> in flight
		maxConcurrent: {},	// mailbox -> max in flight
	},
};

const tenants = reg.tenants;
const users = new Map(reg.users.map((u) => [u.upn.toLowerCase(), u]));
const clients = new Map(reg.clients.map((c) => [c.id, c]));
for (const c of reg.clients) {
	c.mailboxes = new Set(c.mailboxes.map((m) => m.toLowerCase()));
	c.oid = crypto.randomUUID();
	if (c.certificate) {
		const pem = fs.readFileSync(c.certificate, 'utf8');
		const x = new crypto.X509Certificate(pem);
		c.certKey = x.publicKey;
		c.x5t = crypto.createHash('sha1').update(x.raw).digest('base64url');
		c.x5tS256 = crypto.createHash('sha256').update(x.raw).digest('base64url');
	}
}
for (const u of reg.users)
	u.oid = crypto.randomUUID();

function findTenant(t) {
	if (!t)
		return null;
	t = t.toLowerCase();
	return tenants.find((x) => x.id === t || x.domains.includes(t)) || null;
}

function issuerOf(tid) {
	return `https://login.microsoftonline.com/${tid}/v2.0`;
}
const issuers = new Map(tenants.map((t) => [issuerOf(t.id), t]));

// signing key, generated per world
let signKey, publicJwk, kid;

// ------------------------------------------------------------------ helpers
function readBody(req, limit) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		let n = 0;
		req.on('data', (c) => {
			n += c.length;
			if (n > limit) {
				reject(Object.assign(new Error('body too large'), { tooLarge: true }));
				req.destroy();
				return;
			}
			chunks.push(c);
		});
		req.on('end', () => resolve(Buffer.concat(chunks)));
		req.on('error', reject);
	});
}

function send(res, status, obj, headers) {
	const body = typeof obj === 'string' || Buffer.isBuffer(obj) ? obj : JSON.stringify(obj);
	res.writeHead(status, Object.assign({
		'Content-Type': typeof obj === 'string' || Buffer.isBuffer(obj)
			? 'text/plain' : 'application/json; charset=utf-8',
		'Content-Length': Buffer.byteLength(body),
		'Cache-Control': 'no-store',
	}, headers || {}));
	res.end(body);
}

function msTimestamp(d) {
	// "2026-11-28 01:02:03Z" as in error_description; ISO in "timestamp"
	return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

// Microsoft identity platform error body
function aadError(res, status, error, code, text, extra) {
	const now = new Date();
	const trace = crypto.randomUUID();
	const corr = crypto.randomUUID();
	const body = {
		error,
		error_description: `AADSTS${code}: ${text} Trace ID: ${trace} ` +
			`Correlation ID: ${corr} Timestamp: ${msTimestamp(now)}`,
		error_codes: [code],
		timestamp: msTimestamp(now),
		trace_id: trace,
		correlation_id: corr,
	};
	if (code !== 70016 && code !== 70020 && code !== 70000)
		body.error_uri = `${TOKEN_BASE}/error?code=${code}`;
	Object.assign(body, extra || {});
	send(res, status, body);
}

function randToken(n) {
	return crypto.randomBytes(n).toString('base64url');
}

async function issueAccessToken(claims, lifetime) {
	const now = Math.floor(Date.now() / 1000);
	return new jose.SignJWT(Object.assign({
		iat: now, nbf: now, exp: now + lifetime,
		uti: randToken(16), ver: '2.0',
	}, claims))
		.setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid, x5t: kid })
		.sign(signKey);
}

// Which resource (audience) a scope string names; null when malformed.
// ".default" must be alone; delegated scopes may carry offline_access etc.
function parseScope(scope) {
	if (!scope)
		return null;
	const parts = scope.split(/\s+/).filter(Boolean);
	const oidc = new Set(['offline_access', 'openid', 'profile', 'email']);
	const res = parts.filter((p) => !oidc.has(p));
	if (res.length === 0)
		return null;
	let resource = null;
	const names = [];
	let isDefault = false;
	for (const p of res) {
		const m = /^(https:\/\/[^/]+)\/(.+)$/.exec(p);
		if (!m)
			return null;
		if (resource && resource !== m[1])
			return null;	// one resource per request
		resource = m[1];
		if (m[2] === '.default')
			isDefault = true;
		names.push(m[2]);
	}
	if (isDefault && names.length > 1)
		return null;
	if (![OUTLOOK, OUTLOOK_ALT, GRAPH].includes(resource))
		return null;
	return { resource, names, isDefault, offline: parts.includes('offline_access') };
}

// ------------------------------------------------------------------ token service
async function tokenService(req, res) {
	const u = new URL(req.url, TOKEN_BASE);
	const m = /^\/([^/]+)\/(oauth2\/v2\.0\/token|oauth2\/v2\.0\/devicecode|discovery\/v2\.0\/keys|v2\.0\/\.well-known\/openid-configuration)$/.exec(u.pathname);
	if (u.pathname === '/devicelogin') {
		send(res, 200, 'Use "world ctl DIR approve USER_CODE UPN" in the test world.\n');
		return;
	}
	if (!m) {
		send(res, 404, { error: 'not_found' });
		return;
	}
	const tenantName = decodeURIComponent(m[1]);
	const what = m[2];

	if (what === 'discovery/v2.0/keys') {
		send(res, 200, { keys: [publicJwk] });
		return;
	}
	if (what.endsWith('openid-configuration')) {
		const t = findTenant(tenantName);
		if (!t) {
			aadError(res, 400, 'invalid_tenant', 90002, `Tenant '${tenantName}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
			return;
		}
		send(res, 200, {
			token_endpoint: `${TOKEN_BASE}/${t.id}/oauth2/v2.0/token`,
			device_authorization_endpoint: `${TOKEN_BASE}/${t.id}/oauth2/v2.0/devicecode`,
			jwks_uri: `${TOKEN_BASE}/${t.id}/discovery/v2.0/keys`,
			issuer: issuerOf(t.id),
		});
		return;
	}
	if (req.method !== 'POST') {
		aadError(res, 400, 'invalid_request', 900561, 'The endpoint only accepts POST requests. Received a GET request.');
		return;
	}

	// test modes apply to the token and device code endpoints
	const mode = state.mode;
	let body;
	try {
		body = await readBody(req, 64 * 1024);
	} catch (e) {
		send(res, 413, { error: 'invalid_request' });
		return;
	}
	const form = new URLSearchParams(body.toString('utf8'));
	const key = `${form.get('client_id') || '-'} ${form.get('scope') || '-'}`;
	state.counters[key] = (state.counters[key] || 0) + 1;
	state.tokenRequests++;

	if (mode.startsWith('slow:')) {
		const s = Number(mode.slice(5)) || 1;
		await new Promise((r) => setTimeout(r, s * 1000));
	} else if (mode === 'error5xx') {
		aadError(res, 503, 'temporarily_unavailable', 50196, 'The server temporarily throttled the request. Please try again later.');
		return;
	} else if (mode === 'garbage') {
		res.writeHead(200, { 'Content-Type': 'text/html' });
		res.end('<html><body>Sign in to your account \u0000\u00ff{"access_token":</body>');
		return;
	} else if (mode === 'close') {
		req.socket.destroy();
		return;
	}

	const tenant = findTenant(tenantName);
	if (!tenant) {
		aadError(res, 400, 'invalid_tenant', 90002, `Tenant '${tenantName}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`);
		return;
	}
	if (what === 'oauth2/v2.0/devicecode') {
		await deviceCode(res, tenant, form);
		return;
	}
	const grant = form.get('grant_type');
	if (!grant) {
		aadError(res, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'grant_type'.");
		return;
	}
	switch (grant) {
	case 'client_credentials':
		await clientCredentials(res, tenant, form, u);
		return;
	case 'urn:ietf:params:oauth:grant-type:device_code':
		await deviceToken(res, tenant, form);
		return;
	case 'refresh_token':
		await refreshToken(res, tenant, form);
		return;
	default:
		aadError(res, 400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grant}'.`);
	}
}

function lookupClient(res, tenant, form) {
	const id = form.get('client_id');
	if (!id) {
		aadError(res, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
		return null;
	}
	const c = clients.get(id);
	if (!c || c.tenant !== tenant.id) {
		aadError(res, 400, 'unauthorized_client', 700016, `Application with identifier '${id}' was not found in the directory '${tenant.name}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`);
		return null;
	}
	if (c.disabled) {
		aadError(res, 400, 'unauthorized_client', 7000112, `Application '${c.id}'(${c.name}) is disabled.`);
		return null;
	}
	return c;
}

async function verifyAssertion(res, tenant, c, assertion, tokenUrl) {
	const bad = (code, text) => {
		aadError(res, 401, 'invalid_client', code, text);
		return false;
	};
	let header;
	try {
		header = jose.decodeProtectedHeader(assertion);
	} catch (e) {
		return bad(50027, 'JWT token is invalid or malformed.');
	}
	if (!c.certKey)
		return bad(700027, `Client assertion failed signature validation. The application '${c.id}'(${c.name}) has no certificate credential registered.`);
	if (header.alg !== 'PS256' && header.alg !== 'RS256')
		return bad(5002738, `Invalid JWT token. '${header.alg}' is not a supported signature algorithm.`);
	const thumb = header['x5t#S256'] || header.x5t;
	const known = header['x5t#S256'] ? c.x5tS256 : c.x5t;
	if (!thumb)
		return bad(700027, 'Client assertion failed signature validation. The JWT header carries neither x5t nor x5t#S256.');
	if (thumb !== known)
		return bad(700027, `Client assertion failed signature validation. Key was not found. [Reason - The key was not found., Thumbprint of key used by client: '${thumb}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${c.id}'.]`);
	let payload;
	try {
		({ payload } = await jose.jwtVerify(assertion, c.certKey, {
			algorithms: ['PS256', 'RS256'],
			clockTolerance: 0,
		}));
	} catch (e) {
		if (e.code === 'ERR_JWT_EXPIRED' || e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED')
			return bad(700024, 'Client assertion is not within its valid time range.');
		return bad(700027, 'Client assertion failed signature validation.');
	}
	if (payload.iss !== c.id || payload.sub !== c.id)
		return bad(700023, `Client assertion audience claim does not match Realm issuer. The iss and sub claims must both be '${c.id}'.`);
	const auds = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
	const okAud = [tokenUrl, `${TOKEN_BASE}/${tenant.id}/oauth2/v2.0/token`,
		...tenant.domains.map((d) => `${TOKEN_BASE}/${d}/oauth2/v2.0/token`)];
	if (!auds.some((a) => okAud.includes(a)))
		return bad(700212, `The audience claim of the client assertion must be the token endpoint '${tokenUrl}'.`);
	const now = Math.floor(Date.now() / 1000);
	if (typeof payload.exp !== 'number')
		return bad(700024, 'Client assertion contains no exp claim.');
	const start = typeof payload.nbf === 'number' ? payload.nbf : payload.iat;
	if (typeof start !== 'number' || payload.exp - start > 600)
		return bad(700024, 'Client assertion is not within its valid time range: exp - nbf must not exceed 10 minutes.');
	if (!payload.jti)
		return bad(700021, 'Client assertion application identifier doesn\'t match the jti claim requirement: jti is missing.');
	for (const [j, exp] of state.jtis)
		if (exp < now)
			state.jtis.delete(j);
	const jk = `${c.id} ${payload.jti}`;
	if (state.jtis.has(jk))
		return bad(700025, 'Client assertion has already been used (jti replayed).');
	state.jtis.set(jk, payload.exp);
	return true;
}

async function clientCredentials(res, tenant, form, u) {
	const c = lookupClient(res, tenant, form);
	if (!c)
		return;
	const secret = form.get('client_secret');
	const atype = form.get('client_assertion_type');
	const assertion = form.get('client_assertion');
	if (c.public) {
		aadError(res, 401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
		return;
	}
	if (secret) {
		if (!c.secret || !timingSafeEq(secret, c.secret)) {
			aadError(res, 401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${c.id}'.`);
			return;
		}
		if (c.secret_expired) {
			aadError(res, 401, 'invalid_client', 7000222, `The provided client secret keys for app '${c.id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`);
			return;
		}
	} else if (assertion) {
		if (atype !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
			aadError(res, 400, 'invalid_request', 90014, "The request body must contain the following parameter: 'client_assertion_type'.");
			return;
		}
		const tokenUrl = `${TOKEN_BASE}${u.pathname}`;
		if (!await verifyAssertion(res, tenant, c, assertion, tokenUrl))
			return;
	} else {
		aadError(res, 401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
		return;
	}
	const scope = form.get('scope');
	const sc = parseScope(scope);
	if (!sc || !sc.isDefault || sc.offline || scope.trim().split(/\s+/).length !== 1) {
		aadError(res, 400, 'invalid_scope', 70011, `The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope ${scope || ''} is not valid. The .default scope must be the only scope for the client credentials flow.`);
		return;
	}
	const resource = sc.resource === OUTLOOK_ALT ? OUTLOOK : sc.resource;
	const roles = (c.roles && c.roles[resource]) || [];
	if (roles.length === 0) {
		aadError(res, 400, 'invalid_grant', 65001, `The user or administrator has not consented to use the application with ID '${c.id}' named '${c.name}'. Send an interactive authorization request for this user and resource.`);
		return;
	}
	const token = await issueAccessToken({
		aud: resource,
		iss: issuerOf(tenant.id),
		tid: tenant.id,
		appid: c.id,
		azp: c.id,
		appidacr: secret ? '1' : '2',
		azpacr: secret ? '1' : '2',
		idtyp: 'app',
		oid: c.oid,
		sub: c.oid,
		app_displayname: c.name,
		roles: [...roles],
	}, state.tokenLifetime);
	send(res, 200, {
		token_type: 'Bearer',
		expires_in: state.tokenLifetime,
		ext_expires_in: state.tokenLifetime,
		access_token: token,
	});
}

function timingSafeEq(a, b) {
	const x = Buffer.from(a), y = Buffer.from(b);
	return x.length === y.length && crypto.timingSafeEqual(x, y);
}

function userCode() {
	const abc = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
	let s = '';
	for (let i = 0; i < 9; i++)
		s += abc[crypto.randomInt(abc.length)];
	return s;
}

async function deviceCode(res, tenant, form) {
	const c = lookupClient(res, tenant, form);
	if (!c)
		return;
	if (!c.public) {
		aadError(res, 400, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'. The device code flow needs an application registered with 'Allow public client flows'.");
		return;
	}
	const scope = form.get('scope') || '';
	const sc = parseScope(scope);
	if (!sc || sc.isDefault && sc.names.length > 1) {
		aadError(res, 400, 'invalid_scope', 70011, `The provided value for the input parameter 'scope' is not valid. The scope '${scope}' does not exist.`);
		return;
	}
	const dc = randToken(48);
	const code = userCode();
	const d = {
		device_code: dc, user_code: code, client: c.id, tenant: tenant.id,
		resource: sc.resource, names: sc.names, offline: sc.offline,
		expires: Date.now() + state.deviceExpiresIn * 1000,
		interval: state.deviceInterval, lastPoll: 0, status: 'pending', user: null,
	};
	state.devices.set(dc, d);
	state.userCodes.set(code, dc);
	const uri = `${TOKEN_BASE}/devicelogin`;
	send(res, 200, {
		user_code: code,
		device_code: dc,
		verification_uri: uri,
		expires_in: state.deviceExpiresIn,
		interval: state.deviceInterval,
		message: `To sign in, use a web browser to open the page ${uri} and enter the code ${code} to authenticate.`,
	});
}

function scopesToScp(resource, names) {
	if (names.length === 1 && names[0] === '.default') {
		if (resource === GRAPH)
			return 'Mail.ReadWrite Mail.Send User.Read';
		return 'IMAP.AccessAsUser.All POP.AccessAsUser.All SMTP.Send';
	}
	return names.join(' ');
}

async function delegatedTokens(res, tenant, client, user, resource, names, offline) {
	const scp = scopesToScp(resource, names);
	const u = users.get(user);
	const token = await issueAccessToken({
		aud: resource,
		iss: issuerOf(tenant.id),
		tid: tenant.id,
		appid: client.id,
		azp: client.id,
		appidacr: '0',
		azpacr: '0',
		oid: u.oid,
		sub: crypto.createHash('sha256').update(u.oid + client.id).digest('base64url').slice(0, 43),
		upn: u.upn,
		preferred_username: u.upn,
		unique_name: u.upn,
		email: u.upn,
		name: u.name,
		scp,
	}, state.tokenLifetime);
	const out = {
		token_type: 'Bearer',
		scope: scp.split(' ').map((s) => `${resource}/${s}`).join(' '),
		expires_in: state.tokenLifetime,
		ext_expires_in: state.tokenLifetime,
		access_token: token,
	};
	if (offline) {
		const rt = `0.A${randToken(120)}`;
		state.refresh.set(rt, {
			client: client.id, tenant: tenant.id, user, resource, names,
			used: false, expired: false, revoked: false,
		});
		out.refresh_token = rt;
		out.scope += ' offline_access';
	}
	send(res, 200, out);
}

async function deviceToken(res, tenant, form) {
	const c = lookupClient(res, tenant, form);
	if (!c)
		return;
	const dc = form.get('device_code');
	const d = dc && state.devices.get(dc);
	if (!d || d.client !== c.id || d.tenant !== tenant.id) {
		aadError(res, 400, 'invalid_grant', 70000, 'The provided value for the input parameter \'device_code\' is not valid.');
		return;
	}
	const now = Date.now();
	if (now > d.expires || d.status === 'expired') {
		aadError(res, 400, 'expired_token', 70020, 'The provided value for the input parameter \'device_code\' is not valid. This device code has expired.');
		return;
	}
	if (d.status === 'declined') {
		aadError(res, 400, 'authorization_declined', 70000, 'The user denied the authorization request.');
		return;
	}
	if (d.status === 'used') {
		aadError(res, 400, 'invalid_grant', 70000, 'The provided value for the input parameter \'device_code\' is not valid. It was already redeemed.');
		return;
	}
	const tooFast = d.lastPoll && now - d.lastPoll < d.interval * 1000 - 50;
	d.lastPoll = now;
	if (tooFast) {
		aadError(res, 400, 'slow_down', 70016, 'OAuth 2.0 device flow error. The client is polling too quickly.');
		return;
	}
	if (d.status === 'pending') {
		aadError(res, 400, 'authorization_pending', 70016, 'OAuth 2.0 device flow error. Authorization is pending. Continue polling.');
		return;
	}
	d.status = 'used';
	await delegatedTokens(res, tenant, c, d.user, d.resource, d.names, d.offline);
}

async function refreshToken(res, tenant, form) {
	const c = lookupClient(res, tenant, form);
	if (!c)
		return;
	const rt = form.get('refresh_token');
	const r = rt && state.refresh.get(rt);
	if (!r || r.client !== c.id || r.tenant !== tenant.id) {
		aadError(res, 400, 'invalid_grant', 9002313, 'Invalid request. Request is malformed or invalid.');
		return;
	}
	if (r.expired) {
		aadError(res, 400, 'invalid_grant', 700082, `The refresh token has expired due to inactivity. The token was issued on ${new Date(Date.now() - 91 * 86400e3).toISOString()} and was inactive for 90.00:00:00.`);
		return;
	}
	if (r.used || r.revoked) {
		aadError(res, 400, 'invalid_grant', 70008, 'The provided authorization code or refresh token has expired due to inactivity or was revoked. Send a new interactive authorization request for this user and resource.');
		return;
	}
	let resource = r.resource, names = r.names;
	const scope = form.get('scope');
	if (scope) {
		const sc = parseScope(scope);
		if (!sc) {
			aadError(res, 400, 'invalid_scope', 70011, `The provided value for the input parameter 'scope' is not valid. The scope '${scope}' does not exist.`);
			return;
		}
		resource = sc.resource;
		names = sc.names;
	}
	r.used = true;
	await delegatedTokens(res, tenant, c, r.user, resource, names, true);
}

// ------------------------------------------------------------------ bearer checks
// Verifies a bearer token issued here; returns {claims} or {error}.
async function verifyBearer(token, audiences) {
	let payload;
	try {
		({ payload } = await jose.jwtVerify(token, publicKey, {
			algorithms: ['RS256'],
			clockTolerance: 0,
			typ: 'JWT',
		}));
	} catch (e) {
		if (e.code === 'ERR_JWT_EXPIRED')
			return { error: 'expired', message: 'Lifetime validation failed, the token is expired.' };
		return { error: 'invalid', message: 'IDX10511: Signature validation failed.' };
	}
	const t = issuers.get(payload.iss);
	if (!t || payload.tid !== t.id)
		return { error: 'issuer', message: 'Issuer validation failed.' };
	if (!audiences.includes(payload.aud))
		return { error: 'audience', message: 'Invalid audience.' };
	return { claims: payload };
}

function tokenMailboxes(claims) {
	if (claims.idtyp === 'app' || Array.isArray(claims.roles) && !claims.scp) {
		const c = clients.get(claims.appid);
		if (!c || c.disabled || c.tenant !== claims.tid)
			return [];
		return [...c.mailboxes].filter((m) => {
			const u = users.get(m);
			return u && u.tenant === claims.tid;
		});
	}
	return claims.upn ? [claims.upn.toLowerCase()] : [];
}

function hasPermission(claims, appRoles, delegatedScopes) {
	if (claims.scp) {
		const s = claims.scp.split(' ');
		return delegatedScopes.some((x) => s.includes(x));
	}
	const r = claims.roles || [];
	return appRoles.some((x) => r.includes(x));
}

// Dovecot oauth2 passdb, introspection_mode = post
async function introspect(req, res) {
	state.introspections++;
	const body = await readBody(req, 64 * 1024);
	const form = new URLSearchParams(body.toString('utf8'));
	const token = form.get('token') || '';
	const service = (req.headers['x-dovecot-auth-service'] || '').toLowerCase();
	const inactive = (why) => {
		log('introspect: inactive:', why, 'service', service);
		send(res, 200, { active: false });
	};
	const v = await verifyBearer(token, [OUTLOOK, OUTLOOK_ALT]);
	if (v.error)
		return inactive(v.message);
	const c = v.claims;
	const need = {
		imap: [['IMAP.AccessAsApp'], ['IMAP.AccessAsUser.All']],
		pop3: [['POP.AccessAsApp'], ['POP.AccessAsUser.All']],
		smtp: [['SMTP.SendAsApp'], ['SMTP.Send']],
	}[service];
	if (!need)
		return inactive(`unknown service '${service}'`);
	if (!hasPermission(c, need[0], need[1]))
		return inactive(`token lacks ${need[0]} / ${need[1]}`);
	if (c.idtyp === 'app') {
		const cl = clients.get(c.appid);
		if (!cl || cl.disabled)
			return inactive('application disabled or deleted');
	}
	const mbx = tokenMailboxes(c);
	send(res, 200, {
		active: true,
		username: 'mailbox',
		mailboxes: mbx.map((m) => `<${m}>`).join(''),
		client_id: c.appid,
		sub: c.sub,
		exp: c.exp,
	});
}

// ------------------------------------------------------------------ Graph: Maildir access
function mailDir(upn) {
	const [local, domain] = upn.split('@');
	return path.join(reg.dir, 'mail', domain, local, 'Maildir');
}

function listMaildir(upn) {
	const out = [];
	for (const sub of ['new', 'cur']) {
		const d = path.join(mailDir(upn), sub);
		let names = [];
		try {
			names = fs.readdirSync(d);
		} catch (e) {
			continue;
		}
		for (const n of names.slice(0, 100000)) {
			if (n.startsWith('.'))
				continue;
			const file = path.join(d, n);
			let st;
			try {
				st = fs.statSync(file);
			} catch (e) {
				continue;	// raced with Dovecot moving it
			}
			const base = n.split(':')[0];
			out.push({ sub, name: n, base, file, mtime: st.mtime, size: st.size });
		}
	}
	return out;
}

// ImmutableId: stable for the life of the message (the Maildir base name).
// Default ids also name the folder (new/cur) so they change when Dovecot
// moves the file, as Graph's default ids change when a message moves.
function immutableId(base) {
	return 'AAkALg' + Buffer.from(base).toString('base64url');
}
function defaultId(m) {
	return 'AAMkAG' + Buffer.from(`${m.sub}/${m.base}`).toString('base64url');
}
function findMessage(upn, id) {
	let base = null;
	try {
		if (id.startsWith('AAkALg'))
			base = Buffer.from(id.slice(6), 'base64url').toString();
		else if (id.startsWith('AAMkAG')) {
			const s = Buffer.from(id.slice(6), 'base64url').toString();
			base = s.slice(s.indexOf('/') + 1);
		}
	} catch (e) {
		return null;
	}
	if (!base)
		return null;
	return listMaildir(upn).find((m) => m.base === base) || null;
}

// Dovecot may rename a message file (new/ -> cur/, flag changes) between
// our listing and our read: find it again, a few times at most.
function readStable(upn, id, msg, fn) {
	for (let i = 0; i < 3 && msg; i++) {
		try {
			return fn(msg);
		} catch (e) {
			if (e.code !== 'ENOENT')
				throw e;
			msg = findMessage(upn, id);
		}
	}
	return null;
}

function splitHeaderBody(raw) {
	const s = raw.toString('latin1');
	let i = s.indexOf('\r\n\r\n'), sep = 4;
	const j = s.indexOf('\n\n');
	if (i < 0 || j >= 0 && j < i) {
		i = j;
		sep = 2;
	}
	if (i < 0)
		return { head: s, body: '' };
	return { head: s.slice(0, i), body: s.slice(i + sep) };
}

function parseHeaders(head) {
	const h = [];
	for (const line of head.split(/\r?\n/)) {
		if (/^[ \t]/.test(line) && h.length)
			h[h.length - 1][1] += ' ' + line.trim();
		else {
			const k = line.indexOf(':');
			if (k > 0)
				h.push([line.slice(0, k).trim().toLowerCase(), line.slice(k + 1).trim()]);
		}
	}
	return h;
}
function hget(h, name) {
	const x = h.find((e) => e[0] === name);
	return x ? x[1] : null;
}
function hparam(value, name) {
	if (!value)
		return null;
	const re = new RegExp(`;\\s*${name}\\*?=\\s*("([^"]*)"|[^;\\s]+)`, 'i');
	const m = re.exec(value);
	return m ? (m[2] !== undefined ? m[2] : m[1]) : null;
}

function decodeWords(s) {
	if (!s)
		return s;
	return s.replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g, (all, cs, enc, txt) => {
		try {
			const buf = enc.toUpperCase() === 'B'
				? Buffer.from(txt, 'base64')
				: Buffer.from(txt.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g,
					(x, hh) => String.fromCharCode(parseInt(hh, 16))), 'latin1');
			return buf.toString(/utf-?8/i.test(cs) ? 'utf8' : 'latin1');
		} catch (e) {
			return all;
		}
	});
}

function parseAddressList(v) {
	if (!v)
		return [];
	const out = [];
	for (const part of v.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)) {
		const m = /^\s*(?:"?([^"<]*?)"?\s*)?<([^>]+)>\s*$/.exec(part);
		if (m)
			out.push({ emailAddress: { name: decodeWords(m[1] || m[2]), address: m[2] } });
		else if (part.trim())
			out.push({ emailAddress: { name: part.trim(), address: part.trim() } });
	}
	return out;
}

function decodeBody(body, cte) {
	cte = (cte || '').toLowerCase();
	if (cte === 'base64')
		return Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
	if (cte === 'quoted-printable') {
		const s = body.replace(/=\r?\n/g, '').replace(/=([0-9A-Fa-f]{2})/g,
			(x, hh) => String.fromCharCode(parseInt(hh, 16)));
		return Buffer.from(s, 'latin1');
	}
	return Buffer.from(body, 'latin1');
}

// Walks a MIME tree (bounded depth and part count); calls fn for each leaf.
function walkMime(head, body, fn, depth, counter) {
	const h = parseHeaders(head);
	const ct = hget(h, 'content-type') || 'text/plain';
	if (/^multipart\//i.test(ct) && depth < 8) {
		const b = hparam(ct, 'boundary');
		if (!b)
			return;
		const parts = body.split(new RegExp(`\\r?\\n?--${b.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:--)?[ \\t]*\\r?\\n?`));
		for (const p of parts.slice(1, -1)) {
			if (++counter.n > 500)
				return;
			const sb = splitHeaderBody(Buffer.from(p, 'latin1'));
			walkMime(sb.head, sb.body, fn, depth + 1, counter);
		}
		return;
	}
	fn(h, ct, body);
}

function messageFacts(m) {
	const raw = fs.readFileSync(m.file);
	const { head, body } = splitHeaderBody(raw);
	const h = parseHeaders(head);
	const atts = [];
	let text = null;
	walkMime(head, body, (ph, ct, pb) => {
		const disp = hget(ph, 'content-disposition') || '';
		const name = hparam(disp, 'filename') || hparam(ct, 'name');
		if (/^attachment/i.test(disp) || name) {
			const data = decodeBody(pb, hget(ph, 'content-transfer-encoding'));
			atts.push({
				'@odata.type': '#microsoft.graph.fileAttachment',
				id: 'AAMkAtt' + Buffer.from(`${m.base}/${atts.length}`).toString('base64url'),
				lastModifiedDateTime: m.mtime.toISOString().replace(/\.\d+Z$/, 'Z'),
				name: decodeWords(name || 'attachment'),
				contentType: ct.split(';')[0].trim(),
				size: data.length,
				isInline: /^inline/i.test(disp),
				contentId: (hget(ph, 'content-id') || '').replace(/[<>]/g, '') || null,
				contentBytes: data.toString('base64'),
			});
		} else if (text === null && /^text\//i.test(ct)) {
			text = { type: /html/i.test(ct) ? 'html' : 'text',
				content: decodeBody(pb, hget(ph, 'content-transfer-encoding')).toString('utf8') };
		}
	}, 0, { n: 0 });
	return { raw, h, atts, text };
}

function graphMessage(m, immutable, select) {
	const f = messageFacts(m);
	const date = m.mtime.toISOString().replace(/\.\d+Z$/, 'Z');
	const from = parseAddressList(hget(f.h, 'from'));
	const full = {
		'@odata.etag': `W/"${crypto.createHash('md5').update(m.base + m.size).digest('base64')}"`,
		id: immutable ? immutableId(m.base) : defaultId(m),
		createdDateTime: date,
		lastModifiedDateTime: date,
		receivedDateTime: date,
		sentDateTime: (() => {
			const d = new Date(hget(f.h, 'date') || '');
			return isNaN(d) ? date : d.toISOString().replace(/\.\d+Z$/, 'Z');
		})(),
		hasAttachments: f.atts.some((a) => !a.isInline),
		internetMessageId: hget(f.h, 'message-id'),
		subject: decodeWords(hget(f.h, 'subject')) || '',
		bodyPreview: f.text ? f.text.content.replace(/\s+/g, ' ').trim().slice(0, 255) : '',
		importance: 'normal',
		parentFolderId: 'inbox',
		conversationId: crypto.createHash('sha1').update(hget(f.h, 'subject') || '').digest('base64url'),
		isRead: m.name.includes(':2,') && m.name.split(':2,')[1].includes('S'),
		isDraft: false,
		body: f.text ? { contentType: f.text.type, content: f.text.content } : { contentType: 'text', content: '' },
		sender: from[0] || null,
		from: from[0] || null,
		toRecipients: parseAddressList(hget(f.h, 'to')),
		ccRecipients: parseAddressList(hget(f.h, 'cc')),
		bccRecipients: [],
		replyTo: parseAddressList(hget(f.h, 'reply-to')),
	};
	if (!select)
		return full;
	const out = { '@odata.etag': full['@odata.etag'], id: full.id };
	for (const s of select)
		if (s in full)
			out[s] = full[s];
	return out;
}

// ------------------------------------------------------------------ Graph service
function graphError(res, status, code, message, req, headers) {
	const rid = crypto.randomUUID();
	send(res, status, {
		error: {
			code, message,
			innerError: {
				date: new Date().toISOString().replace(/\.\d+Z$/, ''),
				'request-id': rid,
				'client-request-id': (req && req.headers['client-request-id']) || rid,
			},
		},
	}, Object.assign({ 'request-id': rid }, headers || {}));
}

function graphCount(kind, req, mbx) {
	const k = `${req.method} ${kind} ${mbx || '-'}`;
	state.graph.requests[k] = (state.graph.requests[k] || 0) + 1;
}

async function graphService(req, res) {
	const g = state.graph;
	g.total++;
	const u = new URL(req.url, GRAPH_BASE);
	const m = /^\/v1\.0\/users\/([^/]+)(\/.*)?$/.exec(u.pathname);
	let mbx = m ? decodeURIComponent(m[1]).toLowerCase() : null;
	if (mbx && !mbx.includes('@')) {
		// /users/{id}: the user's object id works like the UPN
		const byOid = reg.users.find((x) => x.oid === mbx);
		if (byOid)
			mbx = byOid.upn.toLowerCase();
	}
	if (mbx) {
		g.current[mbx] = (g.current[mbx] || 0) + 1;
		g.maxConcurrent[mbx] = Math.max(g.maxConcurrent[mbx] || 0, g.current[mbx]);
	}
	try {
		if (g.delayMs)
			await new Promise((r) => setTimeout(r, g.delayMs));
		await graphRoute(req, res, u, m, mbx);
	} finally {
		if (mbx)
			g.current[mbx]--;
	}
}

async function graphRoute(req, res, u, m, mbx) {
	const g = state.graph;
	if (g.fail && g.fail.count > 0) {
		g.fail.count--;
		graphCount('failed', req, mbx);
		if (g.fail.status === 429)
			graphError(res, 429, 'TooManyRequests', 'Application is over its MailboxConcurrency limit.', req,
				{ 'Retry-After': String(g.fail.retryAfter) });
		else
			graphError(res, g.fail.status, 'ServiceNotAvailable', 'The service is temporarily unavailable. Please retry later.', req,
				g.fail.retryAfter ? { 'Retry-After': String(g.fail.retryAfter) } : {});
		return;
	}
	const auth = req.headers.authorization || '';
	const bm = /^Bearer\s+(\S+)$/i.exec(auth);
	if (!bm) {
		graphCount('unauthenticated', req, mbx);
		graphError(res, 401, 'InvalidAuthenticationToken', 'Access token is empty.', req,
			{ 'WWW-Authenticate': 'Bearer realm=""' });
		return;
	}
	const v = await verifyBearer(bm[1], [GRAPH, '00000003-0000-0000-c000-000000000000']);
	if (v.error) {
		graphCount('badtoken', req, mbx);
		graphError(res, 401, 'InvalidAuthenticationToken',
			v.error === 'expired' ? 'Lifetime validation failed, the token is expired.'
				: v.error === 'audience' ? 'Access token validation failure. Invalid audience.'
					: 'Access token validation failure.', req);
		return;
	}
	const claims = v.claims;
	if (!m) {
		graphCount('unknown', req, null);
		graphError(res, 400, 'BadRequest', `Resource not found for the segment '${u.pathname.split('/')[2] || ''}'.`, req);
		return;
	}
	const user = users.get(mbx);
	const rest = m[2] || '';
	if (!user || user.tenant !== claims.tid) {
		graphCount('nouser', req, mbx);
		graphError(res, 404, 'ErrorInvalidUser', `The requested user '${decodeURIComponent(m[1])}' is invalid.`, req);
		return;
	}
	const granted = tokenMailboxes(claims).includes(mbx);
	const immutable = /IdType\s*=\s*"?ImmutableId"?/i.test(req.headers.prefer || '');
	const hdr = immutable ? { 'Preference-Applied': 'IdType="ImmutableId"' } : {};
	const denied = () => graphError(res, 403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.', req);

	let mm;
	if (req.method === 'POST' && rest === '/sendMail') {
		graphCount('sendMail', req, mbx);
		if (!hasPermission(claims, ['Mail.Send'], ['Mail.Send']) || !granted)
			return denied();
		return sendMail(req, res, user);
	}
	if (req.method === 'GET' && /^\/(mailFolders\/inbox\/)?messages$/i.test(rest)) {
		graphCount('list', req, mbx);
		if (!hasPermission(claims, ['Mail.Read', 'Mail.ReadWrite'], ['Mail.Read', 'Mail.ReadWrite']) || !granted)
			return denied();
		return listMessages(req, res, u, user, immutable, hdr);
	}
	if ((mm = /^\/(?:mailFolders\/inbox\/)?messages\/([^/]+)(\/\$value|\/attachments)?$/i.exec(rest))) {
		const id = decodeURIComponent(mm[1]);
		const sub = mm[2] || '';
		const kind = req.method === 'DELETE' ? 'delete' : sub === '/$value' ? 'value'
			: sub === '/attachments' ? 'attachments' : 'get';
		graphCount(kind, req, mbx);
		const perms = kind === 'delete' ? ['Mail.ReadWrite'] : ['Mail.Read', 'Mail.ReadWrite'];
		if (!hasPermission(claims, perms, perms) || !granted)
			return denied();
		if (!['GET', 'DELETE'].includes(req.method) || (kind === 'delete' && sub))
			return graphError(res, 405, 'ErrorInvalidRequest', 'The OData request is not supported.', req);
		const msg = findMessage(mbx, id);
		if (!msg)
			return graphError(res, 404, 'ErrorItemNotFound', 'The specified object was not found in the store.', req);
		if (kind === 'delete') {
			try {
				fs.unlinkSync(msg.file);
			} catch (e) {
				// Dovecot moved it new -> cur meanwhile: find it again
				const again = findMessage(mbx, id);
				if (again)
					fs.unlinkSync(again.file);
			}
			res.writeHead(204, hdr);
			res.end();
			return;
		}
		if (kind === 'value') {
			const raw = readStable(mbx, id, msg, (x) => fs.readFileSync(x.file));
			if (!raw)
				return graphError(res, 404, 'ErrorItemNotFound', 'The specified object was not found in the store.', req);
			res.writeHead(200, Object.assign({ 'Content-Type': 'text/plain', 'Content-Length': raw.length }, hdr));
			res.end(raw);
			return;
		}
		if (kind === 'attachments') {
			const f = readStable(mbx, id, msg, messageFacts);
			if (!f)
				return graphError(res, 404, 'ErrorItemNotFound', 'The specified object was not found in the store.', req);
			send(res, 200, {
				'@odata.context': `${GRAPH_BASE}/v1.0/$metadata#users('${mbx}')/messages('${id}')/attachments`,
				value: f.atts,
			}, hdr);
			return;
		}
		const sel = u.searchParams.get('$select');
		const one = readStable(mbx, id, msg, (x) => graphMessage(x, immutable, sel ? sel.split(',').map((s) => s.trim()) : null));
		if (!one)
			return graphError(res, 404, 'ErrorItemNotFound', 'The specified object was not found in the store.', req);
		send(res, 200, one, hdr);
		return;
	}
	graphCount('unsupported', req, mbx);
	graphError(res, 400, 'BadRequest', `Unsupported request: ${req.method} ${u.pathname}`, req);
}

function listMessages(req, res, u, user, immutable, hdr) {
	const top = Math.min(Number(u.searchParams.get('$top') || 10), 1000);
	const skip = Math.max(Number(u.searchParams.get('$skip') || 0), 0);
	if (!Number.isInteger(top) || top < 1)
		return graphError(res, 400, 'BadRequest', "Invalid value for '$top'.", req);
	const filter = u.searchParams.get('$filter');
	let pred = () => true;
	if (filter) {
		const fm = /^\s*receivedDateTime\s+(ge|gt|le|lt)\s+(\S+)\s*$/i.exec(filter);
		if (!fm)
			return graphError(res, 400, 'BadRequest', `Invalid filter clause: ${filter}`, req);
		const t = Date.parse(fm[2]);
		if (isNaN(t))
			return graphError(res, 400, 'BadRequest', `The DateTimeOffset text '${fm[2]}' should be in format 'yyyy-mm-ddThh:mm:ss('.'s+)?(zzzzzz)?' and each field value is within valid range.`, req);
		const op = fm[1].toLowerCase();
		// compare at second precision, as Graph's receivedDateTime has no fraction
		pred = (m) => {
			const r = Math.floor(m.mtime.getTime() / 1000) * 1000;
			return op === 'ge' ? r >= t : op === 'gt' ? r > t : op === 'le' ? r <= t : r < t;
		};
	}
	const order = (u.searchParams.get('$orderby') || 'receivedDateTime desc').toLowerCase();
	const asc = /receiveddatetime(\s+asc)?$/.test(order) && !/desc/.test(order);
	const all = listMaildir(user.upn).filter(pred).sort((a, b) => {
		const d = a.mtime - b.mtime || (a.base < b.base ? -1 : a.base > b.base ? 1 : 0);
		return asc ? d : -d;
	});
	const page = all.slice(skip, skip + top);
	const sel = u.searchParams.get('$select');
	const select = sel ? sel.split(',').map((s) => s.trim()) : null;
	const value = [];
	for (const m of page) {
		try {
			value.push(graphMessage(m, immutable, select));
		} catch (e) {
			// vanished between listing and reading (Dovecot moved it)
			const again = findMessage(user.upn, immutableId(m.base));
			if (again)
				value.push(graphMessage(again, immutable, select));
		}
	}
	const out = {
		'@odata.context': `${GRAPH_BASE}/v1.0/$metadata#users('${user.upn}')/mailFolders('inbox')/messages`,
		value,
	};
	if (skip + top < all.length) {
		const next = new URL(u.toString());
		next.searchParams.set('$skip', String(skip + top));
		next.searchParams.set('$top', String(top));
		out['@odata.nextLink'] = `${GRAPH_BASE}${next.pathname}${next.search}`;
	}
	send(res, 200, out, hdr);
}

function encodeHeaderWord(s) {
	return /^[\x20-\x7e]*$/.test(s) ? s : `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`;
}
function fmtAddr(r) {
	const e = r && r.emailAddress;
	if (!e || typeof e.address !== 'string' || !/^[^\s<>@]+@[^\s<>@]+$/.test(e.address))
		return null;
	return e.name ? `${JSON.stringify(encodeHeaderWord(e.name))} <${e.address}>` : `<${e.address}>`;
}
function wrap76(b64) {
	return b64.replace(/(.{76})/g, '$1\r\n');
}

async function sendMail(req, res, user) {
	let body;
	try {
		body = await readBody(req, 4 * 1024 * 1024 + 4096);
	} catch (e) {
		return graphError(res, 413, 'RequestEntityTooLarge', 'The maximum request length supported is 4MB.', req);
	}
	let j;
	try {
		j = JSON.parse(body.toString('utf8'));
	} catch (e) {
		return graphError(res, 400, 'BadRequest', 'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.', req);
	}
	const msg = j && j.message;
	if (!msg || typeof msg !== 'object')
		return graphError(res, 400, 'ErrorInvalidParameter', "The value of the parameter 'Message' is empty.", req);
	const lists = {};
	for (const k of ['toRecipients', 'ccRecipients', 'bccRecipients']) {
		lists[k] = [];
		for (const r of msg[k] || []) {
			const a = fmtAddr(r);
			if (!a)
				return graphError(res, 400, 'ErrorInvalidRecipients', 'At least one recipient is not valid., Recipient is not resolved.', req);
			lists[k].push({ hdr: a, addr: r.emailAddress.address });
		}
	}
	const rcpts = [...lists.toRecipients, ...lists.ccRecipients, ...lists.bccRecipients].map((x) => x.addr);
	if (rcpts.length === 0)
		return graphError(res, 400, 'ErrorInvalidRecipients', 'At least one recipient is not valid., A message can\'t be sent because it contains no recipients.', req);
	const b = msg.body || { contentType: 'text', content: '' };
	const html = /html/i.test(b.contentType || '');
	const bnd = `----=_graph_${randToken(12)}`;
	const lines = [
		`From: ${JSON.stringify(user.name)} <${user.upn}>`,
		...(lists.toRecipients.length ? [`To: ${lists.toRecipients.map((x) => x.hdr).join(', ')}`] : []),
		...(lists.ccRecipients.length ? [`Cc: ${lists.ccRecipients.map((x) => x.hdr).join(', ')}`] : []),
		`Subject: ${encodeHeaderWord(String(msg.subject || ''))}`,
		`Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
		`Message-ID: <${randToken(18)}@graph.world.test>`,
		'MIME-Version: 1.0',
		'X-MS-Exchange-Organization-Graph: sendMail',
	];
	const atts = Array.isArray(msg.attachments) ? msg.attachments : [];
	const bodyPart = [
		`Content-Type: text/${html ? 'html' : 'plain'}; charset=utf-8`,
		'Content-Transfer-Encoding: base64',
		'',
		wrap76(Buffer.from(String(b.content || ''), 'utf8').toString('base64')),
	].join('\r\n');
	let mime;
	if (atts.length === 0)
		mime = lines.join('\r\n') + '\r\n' + bodyPart + '\r\n';
	else {
		const parts = [bodyPart];
		for (const a of atts) {
			if (a['@odata.type'] !== '#microsoft.graph.fileAttachment' || typeof a.contentBytes !== 'string')
				return graphError(res, 400, 'ErrorInvalidParameter', 'Only fileAttachment with contentBytes is supported here.', req);
			parts.push([
				`Content-Type: ${a.contentType || 'application/octet-stream'}; name="${encodeHeaderWord(String(a.name || 'attachment'))}"`,
				`Content-Disposition: attachment; filename="${encodeHeaderWord(String(a.name || 'attachment'))}"`,
				'Content-Transfer-Encoding: base64',
				'',
				wrap76(a.contentBytes.replace(/\s+/g, '')),
			].join('\r\n'));
		}
		mime = lines.join('\r\n') + `\r\nContent-Type: multipart/mixed; boundary="${bnd}"\r\n\r\n` +
			parts.map((p) => `--${bnd}\r\n${p}\r\n`).join('') + `--${bnd}--\r\n`;
	}
	try {
		await smtpSend(user.upn, rcpts, mime);
	} catch (e) {
		log('sendMail: smtp:', e.message);
		return graphError(res, 400, 'ErrorInvalidRecipients', `Recipient is not valid: ${e.message}`, req);
	}
	res.writeHead(202, { 'Content-Length': 0 });
	res.end();
}

// Minimal SMTP client to the world's plain injection port.
function smtpSend(from, rcpts, data) {
	return new Promise((resolve, reject) => {
		const sock = net.connect(reg.ports.smtp, HOST);
		let buf = '';
		const steps = [
			null,				// greeting
			'EHLO graph.world.test',
			`MAIL FROM:<${from}>`,
			...rcpts.map((r) => `RCPT TO:<${r}>`),
			'DATA',
			data.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..') + '.',
			'QUIT',
		];
		let i = 0;
		sock.setTimeout(10000, () => {
			sock.destroy();
			reject(new Error('smtp timeout'));
		});
		sock.on('error', reject);
		sock.on('data', (d) => {
			buf += d.toString('latin1');
			for (;;) {
				const m = /^(\d{3})( |-)(.*)\r\n/m.exec(buf);
				if (!m)
					return;
				const idx = buf.indexOf(m[0]);
				buf = buf.slice(idx + m[0].length);
				if (m[2] === '-')
					continue;
				const code = Number(m[1]);
				if (code >= 400) {
					sock.destroy();
					reject(new Error(`${m[1]} ${m[3]}`));
					return;
				}
				i++;
				if (i >= steps.length) {
					sock.end();
					resolve();
					return;
				}
				sock.write(steps[i] + '\r\n');
			}
		});
	});
}

// ------------------------------------------------------------------ control
async function control(req, res) {
	const u = new URL(req.url, `http://${HOST}`);
	const q = u.searchParams;
	const p = u.pathname;
	if (p === '/internal/introspect' && req.method === 'POST')
		return introspect(req, res);
	if (p === '/ctl/counters' && req.method === 'GET')
		return send(res, 200, {
			token_requests: state.tokenRequests,
			token: state.counters,
			introspections: state.introspections,
			graph: state.graph.requests,
			graph_total: state.graph.total,
			graph_max_concurrent: state.graph.maxConcurrent,
		});
	if (p === '/ctl/device/list' && req.method === 'GET')
		return send(res, 200, [...state.devices.values()].map((d) => ({
			user_code: d.user_code, client_id: d.client, tenant: d.tenant,
			status: Date.now() > d.expires && d.status === 'pending' ? 'expired' : d.status,
			user: d.user, resource: d.resource,
		})));
	if (p === '/ctl/graph/stats' && req.method === 'GET')
		return send(res, 200, {
			requests: state.graph.requests, total: state.graph.total,
			current: state.graph.current, max_concurrent: state.graph.maxConcurrent,
			fail: state.graph.fail, delay_ms: state.graph.delayMs,
		});
	if (req.method !== 'POST')
		return send(res, 404, { error: 'unknown control' });
	switch (p) {
	case '/ctl/reset':
		state.counters = {};
		state.tokenRequests = 0;
		state.introspections = 0;
		state.mode = 'normal';
		state.graph.requests = {};
		state.graph.total = 0;
		state.graph.maxConcurrent = {};
		state.graph.fail = null;
		state.graph.delayMs = 0;
		return send(res, 200, { ok: true });
	case '/ctl/mode': {
		const mo = q.get('mode') || '';
		if (!/^(normal|slow:\d+(\.\d+)?|error5xx|garbage|close)$/.test(mo))
			return send(res, 400, { error: 'mode must be normal|slow:SECONDS|error5xx|garbage|close' });
		state.mode = mo;
		return send(res, 200, { ok: true, mode: mo });
	}
	case '/ctl/device/approve':
	case '/ctl/device/decline':
	case '/ctl/device/expire': {
		const dc = state.userCodes.get((q.get('user_code') || '').toUpperCase());
		const d = dc && state.devices.get(dc);
		if (!d)
			return send(res, 404, { error: 'no such user_code' });
		if (p.endsWith('approve')) {
			const upn = (q.get('user') || '').toLowerCase();
			const usr = users.get(upn);
			if (!usr || usr.tenant !== d.tenant)
				return send(res, 400, { error: `user '${upn}' not in the tenant of this code` });
			d.status = 'approved';
			d.user = upn;
		} else
			d.status = p.endsWith('decline') ? 'declined' : 'expired';
		return send(res, 200, { ok: true, status: d.status });
	}
	case '/ctl/device/interval':
		state.deviceInterval = Math.max(Number(q.get('seconds')) || 1, 1);
		return send(res, 200, { ok: true, interval: state.deviceInterval });
	case '/ctl/refresh/expire':
	case '/ctl/refresh/revoke':
		for (const r of state.refresh.values())
			if (p.endsWith('expire'))
				r.expired = true;
			else
				r.revoked = true;
		return send(res, 200, { ok: true, count: state.refresh.size });
	case '/ctl/grant':
	case '/ctl/revoke': {
		const c = clients.get(q.get('client') || '');
		if (!c)
			return send(res, 404, { error: 'no such client' });
		const mb = (q.get('mailbox') || '').toLowerCase();
		if (p === '/ctl/grant')
			c.mailboxes.add(mb);
		else
			c.mailboxes.delete(mb);
		return send(res, 200, { ok: true, mailboxes: [...c.mailboxes] });
	}
	case '/ctl/token-lifetime':
		state.tokenLifetime = Math.max(Number(q.get('seconds')) || 3599, 1);
		return send(res, 200, { ok: true, seconds: state.tokenLifetime });
	case '/ctl/graph/fail': {
		const status = Number(q.get('status'));
		if (![429, 500, 502, 503, 504].includes(status))
			return send(res, 400, { error: 'status must be 429 or 5xx' });
		state.graph.fail = { status, count: Math.max(Number(q.get('count')) || 1, 0),
			retryAfter: Math.max(Number(q.get('retry_after')) || 0, 0) };
		return send(res, 200, { ok: true, fail: state.graph.fail });
	}
	case '/ctl/graph/delay':
		state.graph.delayMs = Math.max(Number(q.get('ms')) || 0, 0);
		return send(res, 200, { ok: true, delay_ms: state.graph.delayMs });
	default:
		return send(res, 404, { error: 'unknown control' });
	}
}

function wrapHandler(name, fn) {
	return (req, res) => {
		fn(req, res).catch((e) => {
			log(`${name}: internal error:`, e && e.stack || e);
			if (!res.headersSent)
				send(res, 500, { error: 'internal', message: String(e && e.message) });
			else
				res.destroy();
		});
	};
}

let publicKey;

async function main() {
	const { privateKey, publicKey: pub } = await jose.generateKeyPair('RS256', { modulusLength: 2048 });
	signKey = privateKey;
	publicKey = pub;
	publicJwk = await jose.exportJWK(pub);
	kid = (await jose.calculateJwkThumbprint(publicJwk)).slice(0, 27);
	Object.assign(publicJwk, { kid, x5t: kid, use: 'sig', kty: 'RSA', alg: 'RS256',
		issuer: 'https://login.microsoftonline.com/{tenantid}/v2.0' });

	const tls = { cert: fs.readFileSync(reg.tls.cert), key: fs.readFileSync(reg.tls.key) };
	const servers = [
		https.createServer(tls, wrapHandler('token', tokenService)).listen(reg.ports.token, HOST),
		https.createServer(tls, wrapHandler('graph', graphService)).listen(reg.ports.graph, HOST),
		http.createServer(wrapHandler('ctl', control)).listen(reg.ports.ctl, HOST),
	];
	for (const s of servers) {
		s.keepAliveTimeout = 2000;
		s.on('error', (e) => {
			log('listen error:', e.message);
			process.exit(1);
		});
	}
	const stop = () => {
		for (const s of servers) {
			s.close();
			s.closeAllConnections();
		}
		process.exit(0);
	};
	process.on('SIGTERM', stop);
	process.on('SIGINT', stop);
	log(`stand-ins up: token ${reg.ports.token} graph ${reg.ports.graph} ctl ${reg.ports.ctl}`);
}

main().catch((e) => {
	log('fatal:', e && e.stack || e);
	process.exit(1);
});
