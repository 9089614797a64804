import { FleetError } from '../errors.js';

/**
 * The error to throw when `signal` aborted an LLM call: `PHASE_TIMEOUT` when the phase timeout fired
 * (`AbortSignal.timeout` aborts with a `TimeoutError`), the reason itself when it is a
 * {@link FleetError}, `PHASE_CANCELLED` otherwise.
 */
export function abortError(signal: AbortSignal, what = 'the LLM call'): FleetError {
  const reason: unknown = signal.reason;
  if (reason instanceof FleetError) return reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new FleetError('PHASE_TIMEOUT', `${what} was aborted: the phase timeout passed`, { cause: reason });
  }
  const text = reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'cancelled';
  return new FleetError('PHASE_CANCELLED', `${what} was aborted: ${text}`, { cause: reason });
}

/** Resolve after `ms`, or reject with {@link abortError} as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal as AbortSignal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
