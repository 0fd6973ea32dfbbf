/** Typed domain errors. Each maps to one HTTP status and a stable code in `lambdas/shared/http.ts`. */
export class UnauthorizedError extends Error {
  override name = 'UnauthorizedError';
}
export class ForbiddenError extends Error {
  override name = 'ForbiddenError';
}
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}
export class InvalidRequestError extends Error {
  override name = 'InvalidRequestError';
  constructor(
    message: string,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
export class AgentExistsError extends Error {
  override name = 'AgentExistsError';
}
export class VersionConflictError extends Error {
  override name = 'VersionConflictError';
  constructor(readonly currentVersion: number) {
    super(`the current policy version is ${currentVersion}`);
  }
}
/** The SSH key is registered to another identity (one key names one identity). */
export class SshKeyTakenError extends Error {
  override name = 'SshKeyTakenError';
}
