/**
 * The WAFv2 wire protocol as the emulator speaks it: service errors in the
 * shape the service sends them, the model's member constraints (one
 * `ValidationException` listing every violation, as Coral does), and the
 * JSON 1.1 request and response plumbing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Base error of the emulator, for misuse of its own API. */
export class WafEmulatorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WafEmulatorError';
  }
}

/** A service error, serialised the way WAFv2 sends it. */
export class WafServiceError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly fields: Readonly<Record<string, string>> = {},
    readonly status = 400,
    /** Member holding the message: WAFInvalidParameterException uses `message`. */
    readonly messageKey: 'Message' | 'message' = 'Message',
  ) {
    super(message);
    this.name = 'WafServiceError';
  }
}

export const MESSAGES = {
  nonexistent: 'AWS WAF couldn’t perform the operation because your resource doesn’t exist.',
  lock:
    'AWS WAF couldn’t save your changes because someone changed the resource after you ' +
    'started to edit it. Reapply your changes.',
  limits:
    'AWS WAF couldn’t perform the operation because you exceeded your resource limit. ' +
    'For example, the maximum number of WebACL objects that you can create for an Amazon Web ' +
    'Services account.',
  duplicate:
    'AWS WAF couldn’t perform the operation because some resource in your request is a ' +
    'duplicate of an existing one.',
  associated:
    'AWS WAF couldn’t perform the operation because your resource is being used by another ' +
    'resource or it’s associated with another resource.',
  badFormat: 'The parameter contains formatting that is not valid.',
  unavailable:
    'AWS WAF couldn’t retrieve a resource that you specified for this operation. If you’ve ' +
    'just created a resource that you’re using in this operation, you might just need to wait ' +
    'a few minutes. It can take from a few seconds to a number of minutes for changes to ' +
    'propagate. Verify the resources that you are specifying in your operation request and ' +
    'try again.',
  badScope: 'The scope is not valid.',
} as const;

export function nonexistent(): WafServiceError {
  return new WafServiceError('WAFNonexistentItemException', MESSAGES.nonexistent);
}

export function invalidParameter(
  field: string,
  parameter: string,
  reason: string,
): WafServiceError {
  return new WafServiceError(
    'WAFInvalidParameterException',
    `Error reason: ${reason}, field: ${field}, parameter: ${parameter}`,
    { Field: field, Parameter: parameter, Reason: reason },
    400,
    'message',
  );
}

export const ENTITY_NAME = /^[\w-]+$/;
export const ENTITY_ID = /^[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$/;
export const DESCRIPTION = /^[\w+=:#@/\-,.][\w+=:#@/\-,.\s]+[\w+=:#@/\-,.]$/;
export const NEXT_MARKER = /.*\S.*/;
export const SCOPES = ['CLOUDFRONT', 'REGIONAL'] as const;
export const VERSIONS = ['IPV4', 'IPV6'] as const;
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface StringRule {
  readonly required?: boolean;
  readonly min?: number;
  readonly max?: number;
  readonly pattern?: RegExp;
  readonly values?: readonly string[];
}

/**
 * Checks members against the service model's constraints and throws one
 * `ValidationException` listing every violation, as the service does.
 */
export class Constraints {
  private readonly errors: string[] = [];

  constructor(private readonly input: Readonly<Record<string, unknown>>) {}

  string(member: string, rule: StringRule): string | undefined {
    const value = this.input[member];
    if (value === undefined || value === null) {
      if (rule.required) this.fail(member, null, 'Member must not be null');
      return undefined;
    }
    if (typeof value !== 'string') throw serialization(`${member} must be a string`);
    this.checkString(memberPath(member), value, rule);
    return value;
  }

  strings(member: string, item: StringRule, required: boolean): string[] | undefined {
    const value = this.input[member];
    if (value === undefined || value === null) {
      if (required) this.fail(member, null, 'Member must not be null');
      return undefined;
    }
    if (!Array.isArray(value)) throw serialization(`${member} must be a list`);
    const out: string[] = [];
    value.forEach((v, i) => {
      if (typeof v !== 'string') throw serialization(`${member} must hold strings`);
      this.checkString(`${memberPath(member)}.${i + 1}.member`, v, item);
      out.push(v);
    });
    return out;
  }

  integer(member: string, min: number, max: number): number | undefined {
    const value = this.input[member];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      throw serialization(`${member} must be an integer`);
    }
    if (value < min)
      this.fail(member, value, `Member must have value greater than or equal to ${min}`);
    if (value > max)
      this.fail(member, value, `Member must have value less than or equal to ${max}`);
    return value;
  }

  object(member: string, required: boolean): Record<string, unknown> | undefined {
    const value = this.input[member];
    if (value === undefined || value === null) {
      if (required) this.fail(member, null, 'Member must not be null');
      return undefined;
    }
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw serialization(`${member} must be a structure`);
    }
    return value as Record<string, unknown>;
  }

  /** Throws the collected violations, if any. */
  done(): void {
    const n = this.errors.length;
    if (n === 0) return;
    throw new WafServiceError(
      'ValidationException',
      `${n} validation error${n === 1 ? '' : 's'} detected: ${this.errors.join('; ')}`,
    );
  }

  private checkString(path: string, value: string, rule: StringRule): void {
    if (rule.values && !rule.values.includes(value)) {
      this.errors.push(
        `Value '${value}' at '${path}' failed to satisfy constraint: ` +
          `Member must satisfy enum value set: [${rule.values.join(', ')}]`,
      );
      return;
    }
    if (rule.min !== undefined && value.length < rule.min) {
      this.errors.push(
        `Value '${value}' at '${path}' failed to satisfy constraint: ` +
          `Member must have length greater than or equal to ${rule.min}`,
      );
    }
    if (rule.max !== undefined && value.length > rule.max) {
      this.errors.push(
        `Value '${value}' at '${path}' failed to satisfy constraint: ` +
          `Member must have length less than or equal to ${rule.max}`,
      );
    }
    if (rule.pattern && !rule.pattern.test(value)) {
      this.errors.push(
        `Value '${value}' at '${path}' failed to satisfy constraint: ` +
          `Member must satisfy regular expression pattern: ${rule.pattern.source}`,
      );
    }
  }

  private fail(member: string, value: unknown, constraint: string): void {
    const shown = value === null ? 'null' : `'${String(value)}'`;
    this.errors.push(
      `Value ${shown} at '${memberPath(member)}' failed to satisfy constraint: ${constraint}`,
    );
  }
}

/** Coral names a member in messages with its first letter lower-cased. */
function memberPath(member: string): string {
  return member.charAt(0).toLowerCase() + member.slice(1);
}

export function serialization(message: string): WafServiceError {
  return new WafServiceError('SerializationException', message);
}

export const NAME_RULE: StringRule = { required: true, min: 1, max: 128, pattern: ENTITY_NAME };
export const ID_RULE: StringRule = { required: true, min: 1, max: 36, pattern: ENTITY_ID };
export const LOCK_RULE: StringRule = { required: true, min: 1, max: 36, pattern: ENTITY_ID };
export const SCOPE_RULE: StringRule = { required: true, values: SCOPES };
export const DESCRIPTION_RULE: StringRule = { min: 1, max: 256, pattern: DESCRIPTION };
export const ADDRESS_RULE: StringRule = { min: 1, max: 50 };

/** A fault the emulator chose to inject (logged as such). */
export class InjectedFault extends WafServiceError {}

export function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function parseInput(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw serialization('request body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw serialization('request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw new WafEmulatorError('request body too large');
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  payload: unknown,
  requestId?: string,
  errorType?: string,
): void {
  const body = Buffer.from(JSON.stringify(payload));
  const headers: Record<string, string | number> = {
    'content-type': requestId ? 'application/x-amz-json-1.1' : 'application/json',
    'content-length': body.length,
  };
  if (requestId) headers['x-amzn-requestid'] = requestId;
  if (errorType) headers['x-amzn-errortype'] = errorType;
  res.writeHead(status, headers);
  res.end(body);
}
