import type { Client, SFTPWrapper } from 'ssh2';
import { judgeFileChange, type JudgeDeps } from '../judge';
import { UpstreamError, type UpstreamLogin } from '../upstream';

/** A change as the agent runs it on the write login's SFTP session. */
export type WriteRun = (sftp: SFTPWrapper, done: (e?: Error | null) => void) => void;

export type ChangeOutcome = { readonly kind: 'done' } | { readonly kind: 'refused'; readonly message: string } | { readonly kind: 'failed'; readonly error: Error };

/**
 * A file change (SFTP or scp) judged with the text the reviewer reads, then run once on the write
 * login when allowed or approved: what runs is the agent's `run` over bytes it kept, never the caller's.
 */
export async function judgeAndWrite(judge: JudgeDeps, writer: () => Promise<SFTPWrapper>, paths: readonly string[], text: string, run: WriteRun): Promise<ChangeOutcome> {
  const verdict = await judgeFileChange(judge, paths, text);
  if (verdict.kind === 'refused') return verdict;
  try {
    const sftp = await writer();
    await new Promise<void>((resolve, reject) => run(sftp, (e) => (e ? reject(e) : resolve())));
    return { kind: 'done' };
  } catch (e) {
    return { kind: 'failed', error: e as Error };
  }
}

/** An SFTP session on a login's connection. */
export async function openSftp(upstream: (login: UpstreamLogin) => Promise<Client>, login: UpstreamLogin): Promise<{ client: Client; sftp: SFTPWrapper }> {
  const client = await upstream(login);
  const sftp = await new Promise<SFTPWrapper>((resolve, reject) => client.sftp((e, s) => (e ? reject(new UpstreamError(`the target refused SFTP on the ${login} login (${e.message})`)) : resolve(s))));
  return { client, sftp };
}

/**
 * One channel's SFTP sessions, each opened on first use: on the read login's shared connection (only
 * the session ends with the channel) and on a write login connection of the channel's own (it ends).
 * None opens once `end` ran: a change the caller sent as its channel closed would open one that nothing ends.
 */
export function lazySftp(upstream: (login: UpstreamLogin) => Promise<Client>): { reader(): Promise<SFTPWrapper>; writer(): Promise<SFTPWrapper>; end(): void } {
  let reader: Promise<{ client: Client; sftp: SFTPWrapper }> | undefined;
  let writer: Promise<{ client: Client; sftp: SFTPWrapper }> | undefined;
  let ended = false;
  const open = (login: UpstreamLogin): Promise<{ client: Client; sftp: SFTPWrapper }> =>
    ended ? Promise.reject(new UpstreamError('the channel has closed')) : openSftp(upstream, login);
  return {
    reader: async () => (await (reader ??= open('read'))).sftp,
    writer: async () => (await (writer ??= open('write'))).sftp,
    end() {
      ended = true;
      void reader?.then(({ sftp }) => sftp.end(), () => undefined);
      void writer?.then(({ client }) => client.end(), () => undefined);
    },
  };
}
