// The AWS SDK warns once per process that its releases after January 2027 need Node 22. The lockfile
// pins releases that support Node 20, so that one warning is noise; every other warning still prints.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  if (String(warning).startsWith('NodeVersionSupportWarning')) return;
  emitWarning(warning, ...rest);
};
