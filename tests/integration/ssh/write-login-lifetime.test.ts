import { readFileSync, writeFileSync } from 'node:fs';
import type { ClientChannel } from 'ssh2';
import { dirname, join } from 'node:path';
import { waitFor } from '../../support/control-plane';
import { SFTP_TYPE } from '../../../agent/ssh/sftp/packets';
import { collect, ssh2Caller } from '../../support/ssh2-caller';
import { uint32, wirePacket } from '../../support/sftp-bytes';
import { startSshStack, targetConnections, type SshStack } from '../../support/ssh-stack';
import { connectUpstream } from '../../../agent/ssh/upstream';

/** Connections to the target end with what they were opened for: however the caller leaves or the target is refused, none is left behind. */
describe('upstream connections end with what they were opened for', () => {
  let stack: SshStack;

  beforeAll(async () => {
    // box-mismatch pins a host key the target does not have.
    stack = await startSshStack({
      extraTargets: (sshd) => [{ name: 'box-mismatch', protocol: 'ssh', listen: { host: '127.0.0.1', port: 0 }, upstream: { host: sshd.host, port: sshd.port }, hostKey: `SHA256:${'A'.repeat(43)}`, readLogin: sshd.readLogin, writeLogin: sshd.writeLogin }],
    });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });


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
    await waitFor(() => targetConnections(stack) === 0 || undefined, 20_000, 'no connection to the target left');
  }, 60_000);

  /** A probe true once no connection to the target has been seen for a second. */
  const noneForASecond = (): (() => true | undefined) => {
    let since: number | undefined;
    return () => {
      if (targetConnections(stack) > 0) since = undefined;
      else since ??= Date.now();
      return since !== undefined && Date.now() - since >= 1_000 ? true : undefined;
    };
  };

  it('ends the write login connection of an allowed SFTP change whose channel closed as it was sent', async () => {
    for (let i = 0; i < 3; i++) {
      const victim = join(stack.sshd.dataDir, `removed-late-${i}`);
      writeFileSync(victim, 'x');
      const client = await ssh2Caller(stack, 'box', await stack.token('loader', []));
      const channel = await new Promise<ClientChannel>((resolve, reject) => client.subsys('sftp', (e, c) => (e ? reject(e) : resolve(c))));
      channel.write(wirePacket(SFTP_TYPE.init, uint32(3)));
      // The relay is up once the target's VERSION is back.
      await new Promise((resolve) => channel.once('data', resolve));
      const path = Buffer.from(victim);
      channel.write(wirePacket(SFTP_TYPE.remove, uint32(7), uint32(path.length), path));
      channel.close();
      await new Promise((resolve) => channel.once('close', resolve));
      client.end();
    }
    // The agent starts a write login (if it does) as it reads the REMOVE: none may be open after a second of none.
    await waitFor(noneForASecond(), 30_000, 'no connection to the target left');
  }, 60_000);

  it('survives an upstream connection that reports more than one error after login, and ends it', async () => {
    const { sshd } = stack;
    const client = await connectUpstream({ name: 'box', protocol: 'ssh', listen: { host: '127.0.0.1', port: 0 }, upstream: { host: sshd.host, port: sshd.port }, hostKey: sshd.hostKey, readLogin: sshd.readLogin, writeLogin: sshd.writeLogin }, 'read');
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.emit('error', new Error('the first'));
    expect(() => client.emit('error', new Error('the second'))).not.toThrow();
    await closed;
  });

  it('leaves no connection to the target once it refused a caller for a host key that does not match', async () => {
    for (let i = 0; i < 3; i++) {
      const client = await ssh2Caller(stack, 'box-mismatch', await stack.token('alice', ['support']));
      const channel = await new Promise<ClientChannel>((resolve, reject) => client.exec('id -un', (e, c) => (e ? reject(e) : resolve(c))));
      expect((await collect(channel)).stderr).toMatch(/^twokey: the host key of box-mismatch does not match the pinned /);
      client.end();
    }
    await waitFor(noneForASecond(), 30_000, 'no connection to the target left');
  }, 60_000);
});
