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
 * The lists are packed (a version byte, the prefix length, then 4 or 16
 * address bytes) so that 10,000 full IPv6 addresses and their pending
 * changes fit a 400 KB item.
 */
import { type DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { cidrBounds, formatIpv4, parseCidr } from '../core/ip';
import { WAFSET_PK, wafSetKey } from '../shared/schema';

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
}

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
    for (const item of page.Items ?? []) {
      found.set(String(item.sk), {
        confirmed: unpackCidrs(bytesOf(item.a)),
        pendingAdd: unpackCidrs(bytesOf(item.p)),
        pendingRemove: unpackCidrs(bytesOf(item.r)),
        at: typeof item.at === 'number' ? item.at * 1000 : 0,
      });
    }
    start = page.LastEvaluatedKey;
  } while (start !== undefined);
  return found;
}

/** Writes one set's membership. */
export async function writeMembership(
  ddb: DynamoDBDocumentClient,
  table: string,
  setName: string,
  membership: Membership,
): Promise<void> {
  await ddb.send(
    new PutCommand({
      TableName: table,
      Item: {
        ...wafSetKey(setName),
        a: packCidrs(membership.confirmed),
        p: packCidrs(membership.pendingAdd),
        r: packCidrs(membership.pendingRemove),
        at: Math.floor(membership.at / 1000),
      },
    }),
  );
}
