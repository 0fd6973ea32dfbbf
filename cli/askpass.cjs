#!/usr/bin/env node
// The SSH_ASKPASS program of `twokey ssh`: ssh runs it with a prompt as its one argument and reads the
// answer from its stdout. It answers the agent's password or token prompt with the token `twokey ssh`
// put in ssh's environment (never on a command line: those show in `ps`), and nothing else, so a key
// passphrase or host key question gets no answer (exit 1: ssh gives up on that step).
// Every program ssh starts inherits that environment: a ProxyJump or ProxyCommand ssh to a jump host
// would run this program for the jump host's password. Only the ssh that `twokey ssh` started itself
// (this program's parent, whose parent is the process named in TWOKEY_ASKPASS_OWNER) gets the token.
'use strict';
const { execFileSync } = require('node:child_process');
const { readFileSync } = require('node:fs');

/** The parent of a process: from /proc on Linux, from ps elsewhere; undefined when it cannot be read. */
function parentOf(pid) {
  try {
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last one.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    try {
      return Number(execFileSync('ps', ['-o', 'ppid=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    } catch {
      return undefined;
    }
  }
}

const prompt = process.argv[2] ?? '';
const token = process.env.TWOKEY_ASKPASS_TOKEN;
const owner = Number(process.env.TWOKEY_ASKPASS_OWNER);
if (!token || process.argv.length !== 3 || !/(password|token)[^:]{0,64}:\s*$/i.test(prompt) || /passphrase/i.test(prompt)) process.exit(1);
if (!Number.isInteger(owner) || owner <= 1 || parentOf(process.ppid) !== owner) process.exit(1);
process.stdout.write(`${token}\n`);
