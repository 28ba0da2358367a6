#!/usr/bin/env node
// png-ink.js [--min FRACTION] FILE.png...: the share of pixels that are not
// (near) white in each PNG (8-bit grey, RGB or RGBA, as pdftoppm and
// Chromium write them); exits 1 when a file has less than FRACTION
// (default 0.001): a blank page.
'use strict';
const fs = require('fs');
const zlib = require('zlib');

function ink(file) {
	const b = fs.readFileSync(file);
	if (b.readUInt32BE(0) !== 0x89504e47) throw new Error(`${file}: not a PNG`);
	let pos = 8, w = 0, h = 0, depth = 0, type = 0;
	const idat = [];
	while (pos < b.length) {
		const len = b.readUInt32BE(pos), kind = b.toString('ascii', pos + 4, pos + 8);
		const data = b.subarray(pos + 8, pos + 8 + len);
		if (kind === 'IHDR') {
			w = data.readUInt32BE(0); h = data.readUInt32BE(4);
			depth = data[8]; type = data[9];
			if (depth !== 8 || data[12] !== 0 || ![0, 2, 6].includes(type))
				throw new Error(`${file}: only 8-bit non-interlaced grey/RGB/RGBA`);
		} else if (kind === 'IDAT') {
			idat.push(data);
		}
		pos += 12 + len;
	}
	const bpp = type === 0 ? 1 : type === 2 ? 3 : 4, stride = w * bpp;
	const raw = zlib.inflateSync(Buffer.concat(idat));
	let prev = Buffer.alloc(stride), dark = 0;
	for (let y = 0; y < h; y++) {
		const f = raw[y * (stride + 1)], line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
		for (let x = 0; x < stride; x++) {
			const a = x >= bpp ? line[x - bpp] : 0, up = prev[x], c = x >= bpp ? prev[x - bpp] : 0;
			let v = line[x];
			if (f === 1) v += a;
			else if (f === 2) v += up;
			else if (f === 3) v += (a + up) >> 1;
			else if (f === 4) {
				const p = a + up - c, pa = Math.abs(p - a), pb = Math.abs(p - up), pc = Math.abs(p - c);
				v += pa <= pb && pa <= pc ? a : pb <= pc ? up : c;
			}
			line[x] = v & 255;
		}
		for (let x = 0; x < w; x++) {
			const o = x * bpp;
			const m = type === 0 ? line[o] : Math.min(line[o], line[o + 1], line[o + 2]);
			if (m < 230) dark++;
		}
		prev = line;
	}
	return dark / (w * h);
}

let min = 0.001, bad = 0;
const files = process.argv.slice(2);
if (files[0] === '--min') { min = +files[1]; files.splice(0, 2); }
if (!files.length) { console.error('usage: png-ink.js [--min FRACTION] FILE.png...'); process.exit(64); }
for (const f of files) {
	const r = ink(f);
	console.log(`# ${f}: ${(r * 100).toFixed(2)}% ink`);
	if (r < min) bad++;
}
process.exit(bad ? 1 : 0);
