/**
 * Client ids by address, for the engine's per-line lookup. IPv4 clients
 * are found by their 32-bit value in an open-addressing table of typed
 * arrays: no string and no Map entry per line or per client, which is what
 * a busy file's hundreds of thousands of clients cost most in (Map growth,
 * string hashing, the garbage collector). Other addresses (IPv6) go through
 * a Map by canonical text. An IPv4 address given as text finds the same id
 * as its value: one client, one id.
 */
import { ipv4ToNumber } from './ip';

const INITIAL_SLOTS = 1 << 11;

export class ClientIds {
  /** Canonical text of each id, in first-seen order. */
  readonly texts: string[] = [];
  /** Slot → IPv4 value (as int32); meaningful where `ids` is non-zero. */
  private keys = new Int32Array(INITIAL_SLOTS);
  /** Slot → id + 1, 0 for an empty slot. */
  private ids = new Int32Array(INITIAL_SLOTS);
  private shift = 32 - Math.log2(INITIAL_SLOTS);
  private v4Count = 0;
  private readonly others = new Map<string, number>();
  /**
   * Multiply-shift hashing with a random odd multiplier per table, so that
   * no set of client addresses can be picked ahead of time to collide
   * (ids, and so every result, do not depend on it: they count in order of
   * addition).
   */
  private readonly multiplier = (Math.random() * 2 ** 32) | 1;

  /** Clients held. */
  get size(): number {
    return this.texts.length;
  }

  /** The id of an IPv4 client by value (unsigned or int32), or -1. */
  findV4(value: number): number {
    const key = value | 0;
    const keys = this.keys;
    const ids = this.ids;
    const mask = keys.length - 1;
    let slot = Math.imul(key, this.multiplier) >>> this.shift;
    for (;;) {
      const id = ids[slot]!;
      if (id === 0) return -1;
      if (keys[slot] === key) return id - 1;
      slot = (slot + 1) & mask;
    }
  }

  /** The id of a client by canonical text, or -1. */
  findText(ip: string): number {
    const v4 = ipv4ToNumber(ip);
    return v4 >= 0 ? this.findV4(v4) : (this.others.get(ip) ?? -1);
  }

  /**
   * Adds a client that {@link findV4} / {@link findText} did not find and
   * returns its id (ids count from 0 in order of addition).
   * @param ip canonical text
   * @param value its IPv4 value when the caller has it, else -1 (worked out from `ip`)
   */
  add(ip: string, value = -1): number {
    const id = this.texts.length;
    this.texts.push(ip);
    const v4 = value >= 0 ? value : ipv4ToNumber(ip);
    if (v4 < 0) {
      this.others.set(ip, id);
      return id;
    }
    if (++this.v4Count * 2 > this.keys.length) this.grow();
    this.place(v4 | 0, id + 1);
    return id;
  }

  private place(key: number, idPlusOne: number): void {
    const keys = this.keys;
    const ids = this.ids;
    const mask = keys.length - 1;
    let slot = Math.imul(key, this.multiplier) >>> this.shift;
    while (ids[slot] !== 0) slot = (slot + 1) & mask;
    keys[slot] = key;
    ids[slot] = idPlusOne;
  }

  /** Doubles the table (kept at most half full, so probes stay short). */
  private grow(): void {
    const oldKeys = this.keys;
    const oldIds = this.ids;
    this.keys = new Int32Array(oldKeys.length * 2);
    this.ids = new Int32Array(oldIds.length * 2);
    this.shift--;
    for (let i = 0; i < oldIds.length; i++) {
      const id = oldIds[i]!;
      if (id !== 0) this.place(oldKeys[i]!, id);
    }
  }
}
