#!/usr/bin/env node
// The SSH_ASKPASS program of `twokey ssh`: ssh runs it with a prompt as its one argument and reads the
// answer from its stdout. It answers the agent's password or token prompt with the token `twokey ssh`
// put in ssh's environment (never on a command line: those show in `ps`), and nothing else, so a key
// passphrase or host key question gets no answer (exit 1: ssh gives up on that step).
'use strict';
const prompt = process.argv[2] ?? '';
const token = process.env.TWOKEY_ASKPASS_TOKEN;
if (!token || process.argv.length !== 3 || !/(password|token)[^:]{0,64}:\s*$/i.test(prompt) || /passphrase/i.test(prompt)) process.exit(1);
process.stdout.write(`${token}\n`);
