/** Exit codes of commands that ask for approval (`twokey exec`, `request-access`, `policies put`). */
export const EXIT = { ran: 0, failed: 1, usage: 2, refused: 4, submitted: 5 } as const;
