// Errors carry a stable code (for scripts, status JSON and tests), a message that is safe to show
// a device owner or an SSH user, and the underlying cause for the operator's logs.

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'ENGINE_UNREACHABLE'
  | 'ENGINE_NOT_FOUND'
  | 'ENGINE_CONFLICT'
  | 'ENGINE_NOT_SUPPORTED'
  | 'ENGINE_ERROR'
  | 'IMAGE_UNAVAILABLE'
  | 'PULL_FAILED'
  | 'BUILD_FAILED'
  | 'SOURCE_INVALID'
  | 'CONTAINER_START_FAILED'
  | 'CONTAINER_FOREIGN'
  | 'SESSION_REFUSED'
  | 'CANCELLED'
  | 'TIMEOUT'
  | 'USAGE'
  | 'IO'
  | 'USER_TOOLS_MISSING'
  | 'USER_COMMAND_FAILED'
  | 'USER_REFUSED'
  | 'CONTAINER_USER_FAILED'
  | 'DISK_LOW'
  | 'BACKUP_INVALID';

export class SkiffError extends Error {
  readonly code: ErrorCode;
  /** What only the operator sees (status, logs): e.g. a container's last log lines. */
  readonly detail: string | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; detail?: string }) {
    super(message, options);
    this.name = 'SkiffError';
    this.code = code;
    this.detail = options?.detail || undefined;
  }
}

/** What a session's client is told. Only our own errors are written for users; anything else
 * (a bug, a library's internals) is logged for the operator and shown as this. */
export const INTERNAL_ERROR_MESSAGE = 'internal error; the device\'s administrator can see why with "skiff-core status" and the daemon log';

export function userMessage(err: unknown): string {
  return err instanceof SkiffError ? err.message : INTERNAL_ERROR_MESSAGE;
}

/** The whole story for status and logs: the message and the operator's detail. */
export function operatorMessage(err: unknown): string {
  if (err instanceof SkiffError && err.detail) return `${err.message}\n${err.detail}`;
  return errorMessage(err);
}

export function isSkiffError(err: unknown, code?: ErrorCode): err is SkiffError {
  return err instanceof SkiffError && (code === undefined || err.code === code);
}

export function isNotFound(err: unknown): err is SkiffError {
  return isSkiffError(err, 'ENGINE_NOT_FOUND');
}

export function isConflict(err: unknown): err is SkiffError {
  return isSkiffError(err, 'ENGINE_CONFLICT');
}

export function isUnreachable(err: unknown): err is SkiffError {
  return isSkiffError(err, 'ENGINE_UNREACHABLE');
}

/** The message of any thrown value, for places that must print something. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
