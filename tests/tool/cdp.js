#!/usr/bin/env node
// cdp.js - drive Debian's headless Chromium over the DevTools protocol on
// a pipe (--remote-debugging-pipe: no port, no puppeteer), for the tests
// of the HTML reports.
//
//   node tests/tool/cdp.js [options] URL [EXPR...]
//     --width N --height N   the viewport (default 1366 x 900)
//     --wait MS              after the load event, before the first EXPR
//     --paper a4|letter      for --pdf (default a4)
//     --media print          emulate print media (for layout checks)
//     --timeout S            give up (exit 2) after S seconds (default 120)
//   and steps, run in order after the load event:
//     EXPR                   evaluated in the page (a promise is awaited),
//                            its value printed as one line of JSON; an
//                            exception makes the exit status 1
//     --screenshot FILE      PNG of the viewport
//     --pdf FILE             print to PDF (the page's beforeprint runs)
'use strict';
const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const o = { width: 1366, height: 900, wait: 0, timeout: 120, paper: 'a4', steps: [] };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
	const a = argv[i];
	const val = () => {
		if (i + 1 >= argv.length) { console.error(`cdp: ${a} needs a value`); process.exit(64); }
		return argv[++i];
	};
	if (a === '--width') o.width = +val();
	else if (a === '--height') o.height = +val();
	else if (a === '--wait') o.wait = +val();
	else if (a === '--screenshot') o.steps.push(['shot', val()]);
	else if (a === '--pdf') o.steps.push(['pdf', val()]);
	else if (a === '--paper') o.paper = val();
	else if (a === '--media') o.media = val();
	else if (a === '--timeout') o.timeout = +val();
	else if (!o.url) o.url = a;
	else o.steps.push(['eval', a]);
}
if (!o.url) { console.error('usage: cdp.js [options] URL [EXPR...]'); process.exit(64); }

let browser = null;
for (const b of ['chromium', 'chromium-browser', 'google-chrome']) {
	try { execFileSync('sh', ['-c', `command -v ${b}`], { stdio: 'ignore' }); browser = b; break; } catch (e) { /* next */ }
}
if (!browser) { console.error('cdp: no Chromium'); process.exit(77); }

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-'));
const ch = spawn(browser, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
	'--no-default-browser-check', '--remote-debugging-pipe', `--user-data-dir=${profile}`,
	`--window-size=${o.width},${o.height}`, 'about:blank'],
	{ stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
const toChrome = ch.stdio[3], fromChrome = ch.stdio[4];
let nextId = 0, rest = Buffer.alloc(0);
const pending = new Map(), waiters = [];

function finish(code) {
	try { ch.kill('SIGKILL'); } catch (e) { /* gone */ }
	try { fs.rmSync(profile, { recursive: true, force: true }); } catch (e) { /* left */ }
	process.exit(code);
}
const timer = setTimeout(() => { console.error(`cdp: timed out after ${o.timeout} s`); finish(2); },
	o.timeout * 1000);

fromChrome.on('data', (d) => {
	rest = Buffer.concat([rest, d]);
	let nul;
	while ((nul = rest.indexOf(0)) >= 0) {
		const m = JSON.parse(rest.subarray(0, nul).toString('utf8'));
		rest = rest.subarray(nul + 1);
		if (m.id && pending.has(m.id)) {
			const p = pending.get(m.id);
			pending.delete(m.id);
			if (m.error) p.reject(new Error(`${p.method}: ${m.error.message}`));
			else p.resolve(m.result);
		} else if (m.method) {
			for (const w of waiters.slice())
				if (w.method === m.method && w.session === m.sessionId) {
					waiters.splice(waiters.indexOf(w), 1);
					w.resolve(m.params);
				}
		}
	}
});
ch.on('exit', (code) => { if (pending.size) { console.error(`cdp: Chromium exited (${code})`); finish(2); } });

function send(method, params, session) {
	const m = { id: ++nextId, method, params: params || {} };
	if (session) m.sessionId = session;
	toChrome.write(JSON.stringify(m) + '\0');
	return new Promise((resolve, reject) => pending.set(m.id, { resolve, reject, method }));
}
const event = (method, session) => new Promise((resolve) => waiters.push({ method, session, resolve }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
	const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
	const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
	const S = (m, p) => send(m, p, sessionId);
	await S('Page.enable');
	await S('Emulation.setDeviceMetricsOverride',
		{ width: o.width, height: o.height, deviceScaleFactor: 1, mobile: false });
	if (o.media) await S('Emulation.setEmulatedMedia', { media: o.media });
	const loaded = event('Page.loadEventFired', sessionId);
	await S('Page.navigate', { url: o.url });
	await loaded;
	if (o.wait) await sleep(o.wait);
	let rc = 0;
	for (const [kind, arg] of o.steps) {
		if (kind === 'shot') {
			const r = await S('Page.captureScreenshot', { format: 'png' });
			fs.writeFileSync(arg, Buffer.from(r.data, 'base64'));
		} else if (kind === 'pdf') {
			const [w, h] = o.paper === 'letter' ? [8.5, 11] : [8.27, 11.69];
			const r = await S('Page.printToPDF', { paperWidth: w, paperHeight: h, printBackground: true });
			fs.writeFileSync(arg, Buffer.from(r.data, 'base64'));
		} else {
			const r = await S('Runtime.evaluate', { expression: arg, awaitPromise: true, returnByValue: true });
			if (r.exceptionDetails) {
				console.error(`cdp: ${arg}: ${r.exceptionDetails.exception ?
					r.exceptionDetails.exception.description : r.exceptionDetails.text}`);
				rc = 1;
			} else {
				console.log(JSON.stringify(r.result.value === undefined ? null : r.result.value));
			}
		}
	}
	clearTimeout(timer);
	finish(rc);
}
main().catch((e) => { console.error(`cdp: ${e.message}`); finish(2); });
