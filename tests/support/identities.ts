import type { Identity } from '../../core/identity/identity';

export function identity(subject: string, groups: string[], email = `${subject}@example.com`): Identity {
  return { subject, name: subject, email, groups, issuer: 'https://issuer.test' };
}
