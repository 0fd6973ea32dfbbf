/**
 * Glob matching for policy names (targets, tables, functions): `*` matches any run of characters,
 * `?` one character. Everything else is literal, so a name with regex metacharacters cannot widen a rule.
 */
const compiled = new Map<string, RegExp>();
const MAX_CACHED_GLOBS = 4096;

export function globToRegExp(glob: string): RegExp {
  let re = compiled.get(glob);
  if (re) return re;
  const body = glob
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('');
  // `s`: a `*` spans newlines too, so a name with a newline in it cannot slip past a block.
  re = new RegExp(`^${body}$`, 'is');
  if (compiled.size >= MAX_CACHED_GLOBS) compiled.clear();
  compiled.set(glob, re);
  return re;
}

export function matchesAny(globs: readonly string[], name: string): boolean {
  return globs.some((g) => globToRegExp(g).test(name));
}
