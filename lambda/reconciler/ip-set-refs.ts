/** The reconciler's IP sets as the stack hands them over (`EDGEBAN_IP_SETS`). */
import type { Scope } from '../core/types';
import { type IpSetRef, ReconcileError } from './waf-writer';

/**
 * Reads the `EDGEBAN_IP_SETS` value: a JSON array of `{ name, id, version,
 * arn? }` in config order (the scope comes from `EDGEBAN_WAF_SCOPE`).
 * @throws ReconcileError naming the bad entry
 */
export function parseIpSetRefs(text: string, scope: Scope): IpSetRef[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new ReconcileError(`IP sets must be a JSON array, got ${text.slice(0, 80)}`);
  }
  if (!Array.isArray(doc))
    throw new ReconcileError(`IP sets must be a JSON array, got ${text.slice(0, 80)}`);
  return doc.map((entry, i) => {
    const e = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    const { name, id, version, arn } = e;
    if (typeof name !== 'string' || name === '' || typeof id !== 'string' || id === '') {
      throw new ReconcileError(
        `IP sets[${i}] needs a name and an id, got ${JSON.stringify(entry)}`,
      );
    }
    if (version !== 'IPV4' && version !== 'IPV6') {
      throw new ReconcileError(
        `IP sets[${i}].version must be IPV4 or IPV6, got ${String(version)}`,
      );
    }
    if (arn !== undefined && typeof arn !== 'string') {
      throw new ReconcileError(`IP sets[${i}].arn must be a string, got ${String(arn)}`);
    }
    return arn === undefined ? { name, id, version, scope } : { name, id, version, scope, arn };
  });
}
