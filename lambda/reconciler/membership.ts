/**
 * The reconciler's record of what it put in each IP set (`WAFSET` items of
 * `lambda/shared/schema.ts`): the only ground for removing an address, so
 * edgeban never removes one it did not add.
 *
 * An UpdateIPSet and the write of this record cannot be atomic, so the
 * intent is written first: `p` (addresses about to be added) and `r`
 * (about to be removed) beside the confirmed `a`. Whatever happened to the
 * update, the next read of the set tells: a pending address found in the
 * set is ours; a confirmed one missing that was not being removed was
 * taken out by someone else (a console removal).
 *
 * Each item also keeps the LockTokens edgeban's writes superseded (a read
 * answering one is stale), the time of the last fresh read (a deploy after
 * it may have reset the set), an open reset incident, and the fencing
 * token of the reconcile that last wrote it: a reconcile claims every item
 * with its token before reading them, and each later write is conditional
 * on no newer token having written the item.
 *
 * The lists are packed (a version byte, the prefix length, then 4 or 16
 * address bytes) so that 10,000 full IPv6 addresses and their pending
 * changes fit a 400 KB item.
 */
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { cidrBounds, formatIpv4, parseCidr } from '../core/ip';
import { WAFSET_PK, wafSetKey } from '../shared/schema';
import { FENCE_CONDITION, FencedWriteError, isConditionFailure } from '../state/fence';

/** Base error of this module. */
export class MembershipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MembershipError';
  }
}

/** What the reconciler knows it put in one IP set. Addresses are canonical CIDRs. */
export interface Membership {
  /** Addresses confirmed in the set by a successful update. */
  readonly confirmed: readonly string[];
  /** Addresses an update in flight was adding. */
  readonly pendingAdd: readonly string[];
  /** Addresses an update in flight was removing. */
  readonly pendingRemove: readonly string[];
  /** Epoch milliseconds of the write. */
  readonly at: number;
  /**
   * LockTokens of the set that edgeban's own writes superseded, newest
   * last (at most {@link SUPERSEDED_TOKENS}). A read answering one of them
   * is stale (DESIGN section 1). Absent on items written before this field.
   */
  readonly superseded?: readonly string[];
  /** The LockToken edgeban's last successful update returned. */
  readonly lastToken?: string | null;
  /**
   * Epoch ms of the last fresh read the record reflects: a deploy after it
   * may have reset the set. Items written before this field: `at`.
   */
  readonly readAt?: number;
  /** Epoch ms when `pendingAdd` was written (a late update may still land it). */
  readonly pendingAt?: number;
  /** Epoch ms a reset of the set was first seen, while its re-adds are not confirmed. */
  readonly resetAt?: number | null;
  /** Fencing token of the reconcile that wrote the item (0: before fencing). */
  readonly fence?: number;
}

/** How many superseded LockTokens a set's record keeps: a read can be several writes behind. */
export const SUPERSEDED_TOKENS = 10;

/** Packs canonical CIDRs into bytes. */
export function packCidrs(cidrs: readonly string[]): Uint8Array {
  const out = new Uint8Array(cidrs.length * 18);
  let p = 0;
  for (const cidr of cidrs) {
    const b = cidrBounds(cidr);
    if (b === null) throw new MembershipError(`not a CIDR: ${cidr}`);
    out[p++] = b.version;
    out[p++] = b.prefix;
    if (b.version === 4) {
      for (let shift = 24; shift >= 0; shift -= 8) out[p++] = (b.start >>> shift) & 255;
    } else {
      for (let shift = 120n; shift >= 0n; shift -= 8n) out[p++] = Number((b.start >> shift) & 255n);
    }
  }
  return out.slice(0, p);
}

/** Unpacks what {@link packCidrs} wrote. */
export function unpackCidrs(bytes: Uint8Array): string[] {
  const cidrs: string[] = [];
  let p = 0;
  while (p < bytes.length) {
    const version = bytes[p++];
    const prefix = bytes[p++] ?? 0;
    if (version === 4 && p + 4 <= bytes.length) {
      const v =
        (bytes[p]! * 2 ** 24 + bytes[p + 1]! * 2 ** 16 + bytes[p + 2]! * 256 + bytes[p + 3]!) >>> 0;
      p += 4;
      cidrs.push(`${formatIpv4(v)}/${prefix}`);
    } else if (version === 6 && p + 16 <= bytes.length) {
      const groups: string[] = [];
      for (let i = 0; i < 8; i++, p += 2)
        groups.push((bytes[p]! * 256 + bytes[p + 1]!).toString(16));
      const c = parseCidr(`${groups.join(':')}/${prefix}`);
      if (c === null) throw new MembershipError(`packed membership holds an invalid IPv6 CIDR`);
      cidrs.push(c.cidr);
    } else {
      throw new MembershipError(`packed membership is corrupt at byte ${p - 2}`);
    }
  }
  return cidrs;
}

function bytesOf(value: unknown): Uint8Array {
  return value instanceof Uint8Array ? value : new Uint8Array(0);
}

/** Every set's membership, by set name. */
export async function readMemberships(
  ddb: DynamoDBDocumentClient,
  table: string,
): Promise<Map<string, Membership>> {
  const found = new Map<string, Membership>();
  let start: Record<string, unknown> | undefined;
  do {
    const page = await ddb.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': WAFSET_PK },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) found.set(String(item.sk), membershipFromItem(item));
    start = page.LastEvaluatedKey;
  } while (start !== undefined);
  return found;
}

/** Reads a `WAFSET` item, today's or one written before the newer fields. */
export function membershipFromItem(item: Record<string, unknown>): Membership {
  const at = typeof item.at === 'number' ? item.at * 1000 : 0;
  const ms = (name: string): number | undefined =>
    typeof item[name] === 'number' ? (item[name] as number) : undefined;
  return {
    confirmed: unpackCidrs(bytesOf(item.a)),
    pendingAdd: unpackCidrs(bytesOf(item.p)),
    pendingRemove: unpackCidrs(bytesOf(item.r)),
    at,
    superseded: Array.isArray(item.tk) ? item.tk.filter((t) => typeof t === 'string') : [],
    lastToken: typeof item.lt === 'string' ? item.lt : null,
    readAt: ms('ra') ?? at,
    pendingAt: ms('pa') ?? at,
    resetAt: ms('rs') ?? null,
    fence: ms('fence') ?? 0,
  };
}

/**
 * Claims every set's membership item for the reconcile holding `fence`
 * and reads it in the same request: from here on no older fence can write
 * it (DESIGN section 5: state writes are fenced by the lease). Items that
 * do not exist yet are created empty. Also returns items of sets no longer
 * configured (a shrunk `ipSets`), claimed likewise.
 * @throws FencedWriteError when a newer reconcile has claimed one already
 */
export async function claimMemberships(
  ddb: DynamoDBDocumentClient,
  table: string,
  setNames: readonly string[],
  fence: number,
): Promise<Map<string, Membership>> {
  const names = new Set(setNames);
  for (const name of (await readMemberships(ddb, table)).keys()) names.add(name);
  const out = new Map<string, Membership>();
  for (const name of names) {
    try {
      const res = await ddb.send(
        new UpdateCommand({
          TableName: table,
          Key: wafSetKey(name),
          UpdateExpression: 'SET fence = :f',
          ConditionExpression: FENCE_CONDITION,
          ExpressionAttributeValues: { ':f': fence },
          ReturnValues: 'ALL_NEW',
        }),
      );
      out.set(name, membershipFromItem(res.Attributes ?? {}));
    } catch (err) {
      if (isConditionFailure(err))
        throw new FencedWriteError(`membership of IP set ${name}`, fence);
      throw err;
    }
  }
  return out;
}

/**
 * Writes one set's membership. With a `fence` (every reconcile write) the
 * write carries it and is refused when a newer fence wrote the item.
 * @throws FencedWriteError when refused
 */
export async function writeMembership(
  ddb: DynamoDBDocumentClient,
  table: string,
  setName: string,
  membership: Membership,
  fence?: number,
): Promise<void> {
  const item: Record<string, unknown> = {
    ...wafSetKey(setName),
    a: packCidrs(membership.confirmed),
    p: packCidrs(membership.pendingAdd),
    r: packCidrs(membership.pendingRemove),
    at: Math.floor(membership.at / 1000),
    tk: [...(membership.superseded ?? [])].slice(-SUPERSEDED_TOKENS),
  };
  if (membership.lastToken) item.lt = membership.lastToken;
  if (membership.readAt !== undefined) item.ra = membership.readAt;
  if (membership.pendingAt !== undefined) item.pa = membership.pendingAt;
  if (membership.resetAt != null) item.rs = membership.resetAt;
  if (fence === undefined) {
    await ddb.send(new PutCommand({ TableName: table, Item: item }));
    return;
  }
  try {
    await ddb.send(
      new PutCommand({
        TableName: table,
        Item: { ...item, fence },
        ConditionExpression: FENCE_CONDITION,
        ExpressionAttributeValues: { ':f': fence },
      }),
    );
  } catch (err) {
    if (isConditionFailure(err))
      throw new FencedWriteError(`membership of IP set ${setName}`, fence);
    throw err;
  }
}

/** Deletes the record of a set no longer configured, unless a newer fence wrote it. */
export async function deleteMembership(
  ddb: DynamoDBDocumentClient,
  table: string,
  setName: string,
  fence: number,
): Promise<void> {
  try {
    await ddb.send(
      new DeleteCommand({
        TableName: table,
        Key: wafSetKey(setName),
        ConditionExpression: FENCE_CONDITION,
        ExpressionAttributeValues: { ':f': fence },
      }),
    );
  } catch (err) {
    if (isConditionFailure(err))
      throw new FencedWriteError(`membership of IP set ${setName}`, fence);
    throw err;
  }
}
