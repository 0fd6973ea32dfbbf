require('../../cli/quiet-sdk-warning.cjs');
process.env.LOG_LEVEL = process.env.LOG_LEVEL || 'silent';
