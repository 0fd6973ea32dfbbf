import { groupsAt, readClaimPath } from '../../../core/identity/claim-path';

describe('the groups claim path', () => {
  const payload = {
    groups: ['a', 'b', 7],
    roles: 'x y,z',
    'cognito:groups': ['admins'],
    'https://example.com/groups': ['namespaced'],
    realm_access: { roles: ['dba', 'support'] },
    resource_access: { twokey: { roles: ['auditor'] } },
  };

  it.each([
    ['groups', ['a', 'b']],
    ['roles', ['x', 'y', 'z']],
    ['cognito:groups', ['admins']],
    ['https://example.com/groups', ['namespaced']],
    ['realm_access.roles', ['dba', 'support']],
    ['resource_access.twokey.roles', ['auditor']],
    ['realm_access', []],
    ['missing.path', []],
    ['groups.length', []],
  ])('reads %s', (path, expected) => {
    expect(groupsAt(payload, path)).toEqual(expected);
  });

  it('does not walk into inherited properties', () => {
    expect(readClaimPath({ a: {} }, 'a.constructor')).toBeUndefined();
    expect(readClaimPath({}, '__proto__')).toBeUndefined();
  });
});
