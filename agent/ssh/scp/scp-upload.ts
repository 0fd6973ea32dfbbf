import type { Client, ServerChannel } from 'ssh2';
import { principalKey } from '../../../core/identity/identity';
import { classifyCommand } from '../../../core/ssh/classify-command';
import type { ScpSinkCommand } from '../../../core/ssh/scp-sink-command';
import { outrightRefusal, type JudgeDeps } from '../judge';
import { blockSpellings } from '../paths';
import { HeldUpload } from '../sftp/held-upload';
import { shown } from '../sftp/review-text';
import { judgeAndWrite, lazySftp, type WriteRun } from '../sftp/write-change';
import type { UpstreamLogin } from '../upstream';
import { BytePuller } from './byte-puller';
import { serveScpSink, type PathKind } from './scp-sink';

/** Bytes of the caller's scp stream read ahead of the sink (the rest waits in SSH flow control). */
export const SCP_READ_AHEAD_BYTES = 256 * 1024;

export interface ScpUploadDeps {
  readonly judge: JudgeDeps;
  upstream(login: UpstreamLogin): Promise<Client>;
}

/**
 * An `scp -t` upload (legacy protocol, `scp -O`): the agent is the sink, so nothing of the caller's
 * stream reaches the target. The command line first meets the policy (a block on it, or writes denied,
 * refuses the upload before any byte); then each file and directory is judged with what the reviewer
 * reads and written on the write login from the bytes the agent kept. Returns the exit status.
 */
export async function serveScpUpload(channel: ServerChannel, command: string, sink: ScpSinkCommand, deps: ScpUploadDeps): Promise<number> {
  const { judge } = deps;
  const classified = classifyCommand(command, { pty: false });
  const commandDenied = outrightRefusal(judge, { class: 'write', ssh: { command, commands: classified.commands, paths: blockSpellings(classified.paths) } }, command);
  if (commandDenied) {
    channel.write(`\x01${commandDenied}\n`);
    return 1;
  }
  const sessions = lazySftp((login) => deps.upstream(login));
  const change = async (path: string, text: string, run: WriteRun): Promise<string | undefined> => {
    const outcome = await judgeAndWrite(judge, () => sessions.writer(), [path], text, run);
    if (outcome.kind === 'done') return undefined;
    return outcome.kind === 'refused' ? outcome.message : `twokey: the write login could not do it (${outcome.error.message})`;
  };
  try {
    return await serveScpSink(new BytePuller(channel, SCP_READ_AHEAD_BYTES), sink, {
      owner: principalKey(judge.session.identity),
      // A caller that went away (mid-review, say) gets nothing more.
      send: (bytes) => void (judge.signal.aborted || channel.write(bytes)),
      async kind(path) {
        const sftp = await sessions.reader();
        // What the read login cannot see counts as missing: a write there fails on the write login, or is judged as new.
        return new Promise<PathKind>((resolve) => sftp.stat(path, (e, stats) => resolve(e ? 'missing' : stats.isDirectory() ? 'directory' : 'file')));
      },
      denied: (path) => outrightRefusal(judge, { class: 'write', ssh: { subsystem: 'sftp', paths: [path] } }, `scp upload ${shown(path)}`),
      mkdir: (path, mode) => change(path, `scp mkdir ${shown(path)} mode ${mode.toString(8)}`, (sftp, done) => sftp.mkdir(path, { mode }, done)),
      upload: (path, content, mode) => change(path, HeldUpload.review(path, content, mode, 'scp'), (sftp, done) => sftp.writeFile(path, content, { mode }, done)),
    });
  } finally {
    sessions.end();
  }
}
