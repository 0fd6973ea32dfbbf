/**
 * Bounds on every AWS SDK call a handler makes: the worst case of one call, every attempt at its
 * limits, stays below the function's timeout (LAMBDA_TIMEOUT_SECONDS in the stack), so a slow
 * service ends in an error the handler reports rather than in a killed invocation.
 */
export const SDK_CONNECTION_TIMEOUT_MS = 1_000;
export const SDK_REQUEST_TIMEOUT_MS = 3_000;
/** The first try and one retry. */
export const SDK_MAX_ATTEMPTS = 2;
