import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { waitFor } from '../../support/control-plane';
import { ssh2Caller } from '../../support/ssh2-caller';
import { startSshStack, type SshStack } from '../../support/ssh-stack';

/** A write login's connection is opened for one action: however the caller leaves, none is left behind. */
describe('write login connections end with their action', () => {
  let stack: SshStack;

  beforeAll(async () => {
    stack = await startSshStack();
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  /** The agent's open connections to this stack's sshd (/proc/net/tcp{,6}: rem_address HEX_IP:HEX_PORT, st 01 ESTABLISHED). */
  const upstreamConnections = (): number => {
    const port = stack.sshd.port.toString(16).toUpperCase().padStart(4, '0');
    return ['/proc/net/tcp', '/proc/net/tcp6']
      .flatMap((file) => readFileSync(file, 'utf8').split('\n').slice(1))
      .map((line) => line.trim().split(/\s+/))
      .filter((fields) => fields[2]?.endsWith(`:${port}`) && fields[3] === '01').length;
  };

  /** Logins of the write user the target accepted so far (its sshd log). */
  const writeLogins = (): number => readFileSync(join(dirname(stack.sshd.writeLogin.keyFile), 'sshd.log'), 'utf8').split(`Accepted publickey for ${stack.sshd.writeLogin.user} `).length - 1;

  it('ends the write login connection of an allowed command whose caller left while it was being opened', async () => {
    const before = writeLogins();
    for (let i = 0; i < 3; i++) {
      const client = await ssh2Caller(stack, 'box', await stack.token('loader', []));
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      // The caller goes as soon as the agent accepts the exec: the agent is still logging in as the writer.
      client.exec(`touch ${join(stack.sshd.dataDir, 'left-early')}`, (e) => {
        if (e) throw e;
        client.end();
      });
      await closed;
    }
    await waitFor(() => writeLogins() === before + 3 || undefined, 20_000, 'the write logins');
    // Each was opened for a command that never started: none may stay (keepalives would hold one forever).
    await waitFor(() => upstreamConnections() === 0 || undefined, 20_000, 'no connection to the target left');
  }, 60_000);
});
