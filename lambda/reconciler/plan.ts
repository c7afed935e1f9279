/**
 * The reconciler's plan: which addresses WAF should hold (the active blocks
 * after the write-time checks) and in which set each goes. Pure: no AWS.
 */
import { IP_SET_CAPACITY } from '../core/config';
import type { Guard } from '../core/guard';
import { compareKeys, keyToCidr } from '../core/ip';
import type { EdgebanConfig } from '../core/types';
import { type ActiveBlock, blockProblem } from '../state/blocks';

/** An address the active blocks ask for. */
export interface Wanted {
  readonly cidr: string;
  readonly key: string;
  readonly version: 'IPV4' | 'IPV6';
  /** Epoch seconds: the latest end of the key's blocks (eviction keeps the latest). */
  end: number;
}

/** Highest priority first: the blocks that last longest, then address order. */
export function byPriority(a: Wanted, b: Wanted): number {
  return b.end - a.end || compareKeys(a.key, b.key);
}

/** The desired addresses, and the active keys the write-time checks refuse. */
export function desiredAddresses(
  active: readonly ActiveBlock[],
  config: EdgebanConfig,
  guard: Guard,
): { wanted: Map<string, Wanted>; refused: { key: string; reason: string }[] } {
  const wanted = new Map<string, Wanted>();
  const refused: { key: string; reason: string }[] = [];
  const checked = new Map<string, string | null>();
  for (const b of active) {
    let problem = checked.get(b.key);
    if (problem === undefined) {
      problem = blockProblem(b.key, config, guard);
      checked.set(b.key, problem);
      if (problem !== null) refused.push({ key: b.key, reason: problem });
    }
    if (problem !== null) continue;
    const cidr = keyToCidr(b.key);
    const w = wanted.get(cidr);
    if (w === undefined) {
      const version = cidr.indexOf(':') < 0 ? 'IPV4' : 'IPV6';
      wanted.set(cidr, { cidr, key: b.key, version, end: b.until });
    } else if (b.until > w.end) {
      w.end = b.until;
    }
  }
  return { wanted, refused };
}

/** What placement needs to know of one set. */
export interface Placeable {
  readonly version: 'IPV4' | 'IPV6';
  /** Addresses in the set now, canonical. */
  readonly current: ReadonlyMap<string, string>;
  /** Addresses the pipeline may have put there. */
  readonly owned: ReadonlySet<string>;
  /** Filled by {@link place}: the pipeline's addresses this set should hold. */
  readonly target: Set<string>;
}

/**
 * Places the wanted addresses: each stays where it is, the rest fill the
 * sets of its version in config order, and over capacity the blocks that
 * end soonest are left out.
 * @param known addresses the pipeline had put in some set before (re-adds
 *   after a reset or a removed set are not new blocks)
 * @returns the addresses left out, and how many placed ones are new blocks
 */
export function place(
  sets: readonly Placeable[],
  wanted: ReadonlyMap<string, Wanted>,
  known: ReadonlySet<string>,
): { evicted: string[]; fresh: number } {
  const evicted: string[] = [];
  let fresh = 0;
  for (const version of ['IPV4', 'IPV6'] as const) {
    const ofVersion = sets.filter((r) => r.version === version);
    const room = ofVersion.map((r) => IP_SET_CAPACITY - othersCount(r));
    const heldByOthers = (cidr: string): boolean =>
      ofVersion.some((r) => r.current.has(cidr) && !r.owned.has(cidr));
    const candidates = [...wanted.values()]
      .filter((w) => w.version === version && !heldByOthers(w.cidr))
      .sort(byPriority);
    const total = room.reduce((a, b) => a + Math.max(0, b), 0);
    for (const w of candidates.slice(total)) evicted.push(w.cidr);
    const kept = candidates.slice(0, total);
    const placed = new Set<string>();
    ofVersion.forEach((run, i) => {
      for (const w of kept) {
        if ((room[i] ?? 0) <= 0) break;
        if (run.owned.has(w.cidr) && run.current.has(w.cidr)) {
          run.target.add(w.cidr);
          placed.add(w.cidr);
          room[i] = (room[i] ?? 0) - 1;
        }
      }
    });
    for (const w of kept) {
      if (placed.has(w.cidr)) continue;
      const i = room.findIndex((n) => n > 0);
      if (i < 0) break;
      ofVersion[i]?.target.add(w.cidr);
      room[i] = (room[i] ?? 0) - 1;
      if (!known.has(w.cidr) && !ofVersion.some((r) => r.current.has(w.cidr))) fresh++;
    }
  }
  return { evicted, fresh };
}

/** Addresses others put in a set (and ones the pipeline may have put, if not its on record). */
function othersCount(set: Placeable): number {
  let n = 0;
  for (const c of set.current.keys()) if (!set.owned.has(c)) n++;
  return n;
}
