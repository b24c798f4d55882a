/**
 * Steps that are ready to start, in lanes (one per model, one for local programs), so the
 * executor starts only as many step executions as can make progress: a run of 100,000 steps
 * does not hold 100,000 suspended executions, and a model at its `limits` cap cannot keep
 * other models' steps from starting.
 */
class Fifo<T> {
  #items: T[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head++];
    // Compact now and then: shift() on a large array would copy it each time.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

interface Lane {
  ready: Fifo<string>;
  active: number;
  capacity: number;
  /** Counts toward the shared window of API steps. */
  remote: boolean;
}

export class ReadyLanes {
  readonly #lanes = new Map<string, Lane>();
  readonly #remoteWindow: number;
  readonly #laneCapacity: (lane: string) => { capacity: number; remote: boolean };
  #remoteActive = 0;
  #next = 0;

  /**
   * `remoteWindow`: API steps started at once (more than the request slots, so that steps
   * downloading or backing off do not leave slots idle). `laneCapacity` says how many steps
   * of one lane may be started at once.
   */
  constructor(remoteWindow: number, laneCapacity: (lane: string) => { capacity: number; remote: boolean }) {
    this.#remoteWindow = remoteWindow;
    this.#laneCapacity = laneCapacity;
  }

  add(lane: string, address: string): void {
    this.#lane(lane).ready.push(address);
  }

  get waiting(): number {
    let count = 0;
    for (const lane of this.#lanes.values()) count += lane.ready.size;
    return count;
  }

  /** Takes the next step that may start now (round robin over lanes), marking it active. */
  take(): { lane: string; address: string } | undefined {
    const names = [...this.#lanes.keys()];
    for (let i = 0; i < names.length; i++) {
      const name = names[(this.#next + i) % names.length]!;
      const lane = this.#lanes.get(name)!;
      if (lane.ready.size === 0 || lane.active >= lane.capacity) continue;
      if (lane.remote && this.#remoteActive >= this.#remoteWindow) continue;
      const address = lane.ready.shift()!;
      lane.active++;
      if (lane.remote) this.#remoteActive++;
      this.#next = (this.#next + i + 1) % names.length;
      return { lane: name, address };
    }
    return undefined;
  }

  /** Takes every step still waiting, whatever the capacities (the run stopped). */
  drain(): string[] {
    const all: string[] = [];
    for (const lane of this.#lanes.values()) {
      for (let address = lane.ready.shift(); address !== undefined; address = lane.ready.shift())
        all.push(address);
    }
    return all;
  }

  finished(lane: string): void {
    const found = this.#lanes.get(lane);
    if (!found) return;
    found.active--;
    if (found.remote) this.#remoteActive--;
  }

  #lane(name: string): Lane {
    let lane = this.#lanes.get(name);
    if (!lane) {
      const { capacity, remote } = this.#laneCapacity(name);
      lane = { ready: new Fifo(), active: 0, capacity, remote };
      this.#lanes.set(name, lane);
    }
    return lane;
  }
}
