import { htmlVisible, oneLine, plainVisible } from '../../../core/approval/visible-text';

describe('visible text', () => {
  it.each([
    ['bidi overrides and isolates', '\u202A\u202B\u202C\u202D\u202E\u2066\u2067\u2068\u2069'],
    ['marks', '\u200E\u200F\u061C'],
    ['zero-width and joiners', '\u200B\u200C\u200D\uFEFF\u2060'],
    ['controls', '\u0000\u0007\u001B\u007F\u0085'],
    ['unusual spaces and separators', '\u00A0\u3000\u2028\u2029'],
    ['tags and variation selectors', '\u{E0041}\uFE0F'],
    ['soft hyphen and Hangul filler', '\u00AD\u3164'],
  ])('escapes %s', (_what, chars) => {
    const shown = plainVisible(`a${chars}b`, true);
    expect(shown).toMatch(/^a(\\u(\{[0-9A-F]+\}|[0-9A-F]{4}))+b$/);
    expect(htmlVisible(chars, true).match(/<mark /g)).toHaveLength(Array.from(chars).length);
  });

  it('keeps what is visible: letters of any script, emoji, space, and tab, LF and CRLF in multi-line text', () => {
    const text = "SELECT 'héllo', 'мир', '日本', '👍🏽'\tFROM t\r\nWHERE a = 1\n";
    expect(plainVisible(text, true)).toBe(text);
    expect(plainVisible('a\tb\nc\rd')).toBe('a\\u0009b\\u000Ac\\u000Dd');
    expect(plainVisible('a\rb', true)).toBe('a\\u000Db');
  });

  it('cuts one-line text to a UTF-16 length without splitting a surrogate pair', () => {
    const cut = oneLine('👍'.repeat(600), 1000);
    expect(cut.length).toBeLessThanOrEqual(1000);
    expect(cut.endsWith('👍…')).toBe(true);
    expect(oneLine('short', 10)).toBe('short');
  });
});
