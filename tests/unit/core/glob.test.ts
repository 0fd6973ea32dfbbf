import { matchesAny } from '../../../core/glob';

describe('policy globs', () => {
  it('lets * span a newline, so that a name with one cannot slip past a block', () => {
    expect(matchesAny(['secret*'], 'secret\nnotes')).toBe(true);
    expect(matchesAny(['rm -rf /*'], 'rm -rf /\nx')).toBe(true);
  });

  it('keeps everything but * and ? literal', () => {
    expect(matchesAny(['a.b'], 'axb')).toBe(false);
    expect(matchesAny(['a?c'], 'abc')).toBe(true);
  });
});
