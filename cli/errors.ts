/**
 * CLI errors carry their exit code (DESIGN.md section 4): 1 refused or
 * nothing to do, 2 bad usage, bad config or a missing path, 3 backend
 * unreachable. Their message is the one line printed on stderr.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 | 3,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Bad usage, bad config, or a path that does not exist. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}

/** A backend (S3, DynamoDB, WAF, the local cloud) that cannot be reached. */
export class UnreachableError extends CliError {
  constructor(message: string) {
    super(message, 3);
    this.name = 'UnreachableError';
  }
}

/** The request was refused, or there was nothing to do. */
export class RefusedError extends CliError {
  constructor(message: string) {
    super(message, 1);
    this.name = 'RefusedError';
  }
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/** Whether an SDK or socket error means the endpoint could not be reached. */
export function isUnreachable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; name?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string' && UNREACHABLE_CODES.has(e.code)) return true;
  if (e.name === 'TimeoutError' || e.name === 'CredentialsProviderError') return true;
  if (Array.isArray(e.errors) && e.errors.some(isUnreachable)) return true;
  return e.cause !== undefined && e.cause !== err && isUnreachable(e.cause);
}

/** A one-line description of any thrown value. */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message || err.name : String(err);
  return text.split('\n')[0]!.trim();
}
