// A tiny observable for module-level state shared by pages, read with
// useSyncExternalStore. Change notifications are coalesced to at most one per
// `throttleMs`, so a burst of watch events (5,000 nodes reconnecting) costs one
// React render, not thousands.

import { useSyncExternalStore } from "react";

export class Observable {
  private listeners = new Set<() => void>();
  private pending = false;
  private last = 0;
  /** Bumped on every published change; what React compares. */
  version = 0;

  constructor(private readonly throttleMs = 200) {}

  subscribe = (l: () => void): (() => void) => {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  };

  getVersion = (): number => this.version;

  /** Marks the state changed; listeners hear about it soon. */
  changed(): void {
    if (this.pending) return;
    const wait = Math.max(0, this.last + this.throttleMs - performance.now());
    this.pending = true;
    setTimeout(() => {
      this.pending = false;
      this.last = performance.now();
      this.version++;
      for (const l of this.listeners) l();
    }, wait);
  }
}

/** Re-renders the calling component when `obs` publishes a change. */
export function useObservable(obs: Observable): number {
  return useSyncExternalStore(obs.subscribe, obs.getVersion);
}
