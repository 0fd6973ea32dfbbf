#!/usr/bin/env node
// The `twokey` command: the TypeScript sources run directly through tsx (no build step to forget).
require('./quiet-sdk-warning.cjs');
require('tsx/cjs');
const { main } = require('./main.ts');
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(`twokey: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
