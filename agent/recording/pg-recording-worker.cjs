// The Postgres recorder's worker thread when the agent's TypeScript runs through tsx (tests, tools); the bundled agent
// (cli/agent-bundle.cjs) starts its own bundled worker from the same place next to it.
require('tsx/cjs');
require('./pg-recording-worker.ts');
