/**
 * A map that keeps at most `cap` entries, dropping the least recently used. Built on Map's
 * insertion order: a hit moves the key to the end, an insert past the cap drops the first key.
 */
export class Lru<V> {
  private readonly map = new Map<string, V>();
  evictions = 0;

  constructor(readonly cap: number) {
    if (!Number.isInteger(cap) || cap < 1) throw new RangeError(`LRU cap must be a positive integer, got ${cap}`);
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  /** The value for key, created by make() (and possibly evicting the oldest entry) when absent. */
  getOrCreate(key: string, make: () => V): V {
    const v = this.get(key);
    return v === undefined ? this.add(key, make()) : v;
  }

  /** Inserts a key known to be absent, evicting the oldest entry past the cap. Returns value. */
  add(key: string, value: V): V {
    this.map.set(key, value);
    if (this.map.size > this.cap) {
      this.map.delete(this.map.keys().next().value as string);
      this.evictions++;
    }
    return value;
  }

  peek(key: string): V | undefined {
    return this.map.get(key);
  }

  clear(): void {
    this.map.clear();
  }
}
