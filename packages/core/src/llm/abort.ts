import { abortError } from '../errors.js';

/** Resolve after `ms`, or reject with `abortError` (`PHASE_TIMEOUT` / `PHASE_CANCELLED`) as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal, { what: 'the LLM call' }));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal as AbortSignal, { what: 'the LLM call' }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
