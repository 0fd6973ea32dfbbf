import type { Identity } from '../../core/identity/identity';

export const TEST_ISSUER = 'https://issuer.test';

/** A verified identity at the test issuer (its email, when there is one, counts as verified). */
export function identity(subject: string, groups: string[], email: string | undefined = `${subject}@example.com`): Identity {
  return { subject, name: subject, email, groups, issuer: TEST_ISSUER };
}
