// The Postgres recorder's worker thread: the TypeScript runs through tsx, as the agent's does.
require('tsx/cjs');
require('./pg-recording-worker.ts');
