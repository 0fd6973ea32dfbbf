/** Characters a path or name may have to be shown bare; any other makes it shown as a JSON string. */
const PLAIN = /^[A-Za-z0-9_@%+=:,./~-]+$/;

/**
 * A caller-chosen path or name as a reviewer and the recording see it: bare when plain, else quoted
 * with its line breaks and controls escaped, so that a path cannot pass for two paths or for the
 * size and SHA-256 lines that follow it.
 */
export const shown = (word: string): string => (PLAIN.test(word) ? word : JSON.stringify(word));

/** One SFTP operation on its paths, as the reviewer reads it (`sftp rename /a /b`). */
export const sftpText = (op: string, paths: readonly string[]): string => ['sftp', shown(op), ...paths.map(shown)].join(' ');
