/**
 * The per-API-key cap on open SSE streams in one API process (`FLEET_SSE_MAX_STREAMS_PER_KEY`),
 * held in the API context and used by the event streams (./sse.ts).
 */
import { FleetError } from '@agentfleet/core';

/** Open SSE streams per API key in this process, against a cap. */
export class StreamCounter {
  private readonly open = new Map<string, number>();

  /** @param max - streams one key may hold open at once. */
  constructor(readonly max: number) {}

  /**
   * Count one more stream for `keyId`.
   *
   * @returns the release function (idempotent).
   * @throws FleetError `TOO_MANY_STREAMS` (429) when the key already holds `max` streams.
   */
  acquire(keyId: string): () => void {
    const n = this.open.get(keyId) ?? 0;
    if (n >= this.max) {
      throw new FleetError(
        'TOO_MANY_STREAMS',
        `this API key already holds ${n} open event streams, the most one key may hold (FLEET_SSE_MAX_STREAMS_PER_KEY=${this.max}); close one, or follow several runs from one client`,
        { details: { open_streams: n, limit: this.max } },
      );
    }
    this.open.set(keyId, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(keyId) ?? 1) - 1;
      if (left <= 0) this.open.delete(keyId);
      else this.open.set(keyId, left);
    };
  }

  /** Streams `keyId` holds open now. */
  count(keyId: string): number {
    return this.open.get(keyId) ?? 0;
  }
}
