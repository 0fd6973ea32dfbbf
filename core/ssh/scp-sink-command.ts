import { parseShell } from './shell-parser';

/** `scp -t PATH` as the legacy scp protocol (`scp -O`) runs it on the target: where an upload goes. */
export interface ScpSinkCommand {
  /** The operand after quote removal (the name the target's shell would pass). */
  readonly path: string;
  /** `-d`: the client sends several files, so PATH must be a directory. */
  readonly directory: boolean;
  /** `-r`: the client may send directories (`D`/`E` records). */
  readonly recursive: boolean;
}

/** The flags OpenSSH's scp client puts on the sink's command line (scp.c `toremote`): verbose, recursive, times, directory, quiet. */
const SINK_FLAGS = new Set(['d', 'r', 'p', 'v', 'q']);

/**
 * Recognizes the command an scp client runs for an upload (`scp [-v] [-r] [-p] [-d] -t [--] PATH`):
 * one simple command, no assignments, redirections or expansions, one literal operand. Anything else
 * is not the sink the agent serves (it is judged as a command line like any other).
 */
export function parseScpSinkCommand(command: string): ScpSinkCommand | undefined {
  let list;
  try {
    list = parseShell(command);
  } catch {
    return undefined;
  }
  const [only] = list;
  if (list.length !== 1 || only?.kind !== 'simple' || only.assignments.length || only.redirections.length) return undefined;
  if (!only.words.every((w) => w.literal && w.substitutions.length === 0)) return undefined;
  const [program, ...args] = only.words.map((w) => w.text);
  if (program !== 'scp') return undefined;
  const flags = new Set<string>();
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    for (const flag of arg.slice(1)) flags.add(flag);
  }
  const operands = args.slice(i);
  if (!flags.has('t') || operands.length !== 1 || [...flags].some((f) => f !== 't' && !SINK_FLAGS.has(f))) return undefined;
  return { path: operands[0] as string, directory: flags.has('d'), recursive: flags.has('r') };
}
