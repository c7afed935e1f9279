/**
 * The state table's items: one DynamoDB table, string keys `pk`/`sk`
 * (see `TABLE` in contract.ts). Every key the handlers and the CLI read or
 * write is built here, so the layout is written once.
 *
 * Correctness needs neither transactions, streams nor TTL:
 * - counts are per-object items written with PutItem (a redelivered or
 *   racing copy of the same object rewrites the same values: idempotent and
 *   exact without any read-modify-write);
 * - a pair's state carries a version and is written with a conditional put
 *   (no lost updates under concurrent ingests; the loser re-reads and
 *   re-evaluates);
 * - the IP-set membership items are written only by the reconciler, which
 *   runs one at a time and fences its writes with the lease's token.
 *
 * Items (pk | sk | attributes):
 * - object ledger: `OBJ#<bucket>/<key>` | `<etag>` | format, lines, requests,
 *   rejected, stale, skipped, damaged, at. Written after the object's counts
 *   and decisions; a delivery that finds it skips the object.
 * - counts: `CNT#<rule>#<key>` | `<hour:8 digits>#<objectId>` | `m` (list of
 *   epoch minutes), `c` (list of counts), `exp` (epoch seconds after which
 *   the item can no longer matter). One item per (rule, key, hour, object).
 * - pair state: `PAIR#<rule>#<key>` | `STATE` | peak, firstExceeded,
 *   blocks (list of {offence, start, until}), countFrom, unblockedBy,
 *   window, v (version).
 * - count bounds: `BND#<rule>#<slot minutes>` | `<slot:10 digits>` | `b0` ..
 *   `b255`: the rule's matching requests in that time slot (epoch minute /
 *   slot minutes, floored) summed over every object, per bucket of a hash
 *   of the key (atomic ADD; a retried object may add twice, so these only
 *   ever over-count). Ingest reads them to skip the Query of a pair that
 *   provably cannot fire.
 * - active blocks: `ACTIVE` | `<key>#<rule>` (manual: `<key>#`) | key, rule,
 *   source (`rule` | `manual`), until, start, offences, peak, window,
 *   firstExceeded, reason, by (start, until, firstExceeded in epoch seconds,
 *   window in minutes). The reconciler's desired state; items whose
 *   `until` has passed are swept (recorded as `expire` events) and deleted.
 * - IP-set membership: `WAFSET` | `<set name>` | `a`: addresses the pipeline
 *   put in that set, confirmed by a successful update; `p` / `r`: addresses
 *   an update in flight adds / removes (so a lost write after the update
 *   still tells ours from a console removal); at. Each list is packed bytes
 *   (per CIDR: version byte, prefix length, 4 or 16 address bytes) so
 *   10,000 IPv6 addresses fit an item. `tk`: LockTokens the pipeline's own
 *   writes superseded (a read answering one is stale); `lt`: the token its
 *   last update returned; `ra`: epoch ms of the last fresh read; `pa`: epoch
 *   ms of the pending intent; `rs`: epoch ms a reset was first seen, while
 *   its re-adds are unconfirmed; `fence`: the fencing token of the reconcile
 *   that last wrote it (absent on items from before fencing). Written only
 *   by the reconciler, each write conditional on no newer fence.
 * - history: `HIST#<key>` | `<epoch ms:13 digits>#<kind>#<rule>` | at, kind
 *   (`block` | `unblock` | `expire` | `reset`), key, rule, by, reason; a
 *   reconcile's events carry its `fence`.
 * - event log (every key's history events, by time, for the console
 *   widget's recent events without a table scan): `EVENTS#<yyyy-mm-dd>`
 *   (the event's UTC day) | `<epoch ms:13 digits>#<key>#<kind>#<rule>` |
 *   the history item's attributes. Written beside each history item.
 * - deploy records: `DEPLOY` | `<epoch ms:13 digits>#<request id>` | kind
 *   (`Create` | `Update` | `Delete`, CloudFormation's request type), hash
 *   (of the IP sets' properties), stack, at. Written by a custom resource
 *   that depends on every IP set, so CloudFormation writes one after it has
 *   updated (and so possibly emptied) the sets, on a deploy and on a
 *   rollback alike. The reconciler reads them to tell a reset from a
 *   person's removal.
 * - settings: `CONFIG` | `MODE` | mode, by, at (the pause/resume override).
 * - status: `STATUS` | `RECONCILE` | at, mode, ipSets (list of {name,
 *   version, size, capacity}), lagSeconds, tripped; `STATUS` | `INGEST` |
 *   newestMinute, at.
 *
 * Every `at` attribute is epoch seconds (a history sort key holds the
 * milliseconds).
 */

/** Partition and sort key of one item. */
export interface ItemKey {
  readonly pk: string;
  readonly sk: string;
}

/** Fixed-width decimal, so string order is numeric order. */
export function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Object ledger item. */
export function ledgerKey(bucket: string, key: string, etag: string): ItemKey {
  return { pk: `OBJ#${bucket}/${key}`, sk: etag.replace(/"/g, '') };
}

/**
 * Real-time shard ledger (see `lambda/state/shards.ts`):
 * `KSHARD#<stream name>/<shard id>` | `LEDGER` | upTo (the highest
 * committed sequence number of the shard, zero-padded), v (version),
 * chunk (the latest committed chunk: id, first, last, pairs as JSON, done),
 * records, rejected, duplicates, stale (totals), at, exp.
 */
export function shardLedgerKey(stream: string, shardId: string): ItemKey {
  return { pk: `KSHARD#${stream}/${shardId}`, sk: 'LEDGER' };
}

/** Partition of a (rule, key) pair's count items. */
export function countsPk(rule: string, key: string): string {
  return `CNT#${rule}#${key}`;
}

/** Sort key of one object's counts of a pair in one hour. */
export function countsSk(hour: number, objectId: string): string {
  return `${pad(hour, 8)}#${objectId}`;
}

/** Sort-key range covering the hours of minutes `from`..`to` (inclusive). */
export function countsRange(fromMinute: number, toMinute: number): { from: string; to: string } {
  return {
    from: `${pad(Math.floor(fromMinute / 60), 8)}#`,
    to: `${pad(Math.floor(toMinute / 60), 8)}#~`,
  };
}

/** Buckets of a count-bound item (attributes `b0` .. `b255`). */
export const BOUND_BUCKETS = 256;

/** Slot lengths of count-bound items, in minutes; each divides a day. */
const BOUND_SLOTS = [10, 15, 20, 30, 60, 120, 180, 240, 360, 480, 720, 1440] as const;

/**
 * The slot length of a rule's count bounds: the shortest that is at least
 * its window (10 minutes or more), so a window spans two or three slots.
 */
export function boundSlotMinutes(windowMinutes: number): number {
  for (const s of BOUND_SLOTS) if (s >= windowMinutes) return s;
  return 1440;
}

/** The count-bound item of one time slot of a rule. */
export function boundKey(rule: string, slotMinutes: number, slot: number): ItemKey {
  return { pk: `BND#${rule}#${slotMinutes}`, sk: pad(slot, 10) };
}

/** A pair's state item. */
export function pairKey(rule: string, key: string): ItemKey {
  return { pk: `PAIR#${rule}#${key}`, sk: 'STATE' };
}

/** Partition of the active blocks. */
export const ACTIVE_PK = 'ACTIVE';

/** An active block item: a rule block, or a manual one when `rule` is null. */
export function activeKey(key: string, rule: string | null): ItemKey {
  return { pk: ACTIVE_PK, sk: `${key}#${rule ?? ''}` };
}

/** Partition of the reconciler's IP-set membership items. */
export const WAFSET_PK = 'WAFSET';

/** The membership item of one IP set. */
export function wafSetKey(setName: string): ItemKey {
  return { pk: WAFSET_PK, sk: setName };
}

/** Partition of a key's history. */
export function historyPk(key: string): string {
  return `HIST#${key}`;
}

/** One history event. */
export function historyKey(
  key: string,
  atMs: number,
  kind: 'block' | 'unblock' | 'expire' | 'reset',
  rule: string | null,
): ItemKey {
  return { pk: historyPk(key), sk: `${pad(atMs, 13)}#${kind}#${rule ?? ''}` };
}

/** Partition of the event log of one UTC day (epoch ms of any time in it). */
export function eventLogPk(atMs: number): string {
  return `EVENTS#${new Date(atMs).toISOString().slice(0, 10)}`;
}

/** One event of the event log (the same event as its history item). */
export function eventLogKey(atMs: number, key: string, kind: string, rule: string | null): ItemKey {
  return { pk: eventLogPk(atMs), sk: `${pad(atMs, 13)}#${key}#${kind}#${rule ?? ''}` };
}

/** Partition of the deploy records. */
export const DEPLOY_PK = 'DEPLOY';

/** One deploy record. */
export function deployKey(atMs: number, requestId: string): ItemKey {
  return { pk: DEPLOY_PK, sk: `${pad(atMs, 13)}#${requestId}` };
}

/** The mode override set by `edgeban pause`/`resume`. */
export const MODE_KEY: ItemKey = { pk: 'CONFIG', sk: 'MODE' };

/** The reconciler's last run. */
export const RECONCILE_STATUS_KEY: ItemKey = { pk: 'STATUS', sk: 'RECONCILE' };

/** The newest log minute ingested. */
export const INGEST_STATUS_KEY: ItemKey = { pk: 'STATUS', sk: 'INGEST' };

/**
 * The reconciler's lease: `LEASE` | `RECONCILER` | owner, expiresAt (epoch
 * ms, real time; 0 once released: the item is never deleted), lastWriteAt
 * (epoch ms of the last UpdateIPSet, for pacing across runs). One
 * reconcile at a time writes WAF and the membership items, whoever runs it
 * (the Lambda, the local pipeline, an operator's `--local` command).
 */
export const RECONCILER_LEASE_KEY: ItemKey = { pk: 'LEASE', sk: 'RECONCILER' };

/**
 * The fencing-token counter: `LEASE` | `FENCE` | fence (a number that only
 * goes up; each lease acquisition takes the next). Never deleted.
 */
export const LEASE_FENCE_KEY: ItemKey = { pk: 'LEASE', sk: 'FENCE' };
