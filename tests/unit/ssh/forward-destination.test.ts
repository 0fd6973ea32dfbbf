import { plainDestinationHost } from '../../../agent/ssh/forward';

describe('plainDestinationHost', () => {
  it('takes IP addresses and plain host names', () => {
    for (const host of ['10.0.0.5', '::1', 'fe80::1', 'db.internal', 'db-1.example.com', 'localhost', '1password.com']) expect(plainDestinationHost(host)).toBe(true);
  });

  it('refuses names a policy glob would read as an address prefix, other spellings of addresses, and odd names', () => {
    for (const host of ['10.0.0.evil.example', '10.1', '0x7f.1', '2130706433', '127.0.0.0x1', '017700000001', 'localhost.', 'db.internal.', '', 'a..b', 'db internal', 'db\ninternal', 'user@host', 'host:22', '[::1]', `${'a'.repeat(64)}.example`, `${'a.'.repeat(127)}a`]) {
      expect(plainDestinationHost(host)).toBe(false);
    }
  });
});
