#!/usr/bin/env node
// The `twokey` command: the TypeScript sources run directly through tsx (no build step to forget),
// except `twokey agent`, which runs from a bundle built at start (see agent-bundle.cjs).
require('./quiet-sdk-warning.cjs');
const argv = process.argv.slice(2);
let main;
if (argv[0] === 'agent') main = require(require('./agent-bundle.cjs').buildAgentApart()).main;
else {
  require('tsx/cjs');
  main = require('./main.ts').main;
}
main(argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(`twokey: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
