/** Display helpers: durations, tokens, money, times. */
import type { Usage } from './api.js';

/** `1.2 s`, `3 min 04 s`, `1 h 02 min` from ms. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

// One formatter each, made once: `toLocaleString` and friends build a new formatter on every call,
// which costs a page with hundreds of rows and events tens of milliseconds.
const NUMBER = new Intl.NumberFormat('en-US');
const DATE = new Intl.DateTimeFormat('en-CA', { year: 'numeric', month: '2-digit', day: '2-digit' });
const CLOCK = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });

/** `12,345` (a count, e.g. tokens). */
export function count(n: number): string {
  return NUMBER.format(n);
}

export function tokens(u: Usage | undefined): string {
  if (!u) return '—';
  return count(u.input_tokens + u.output_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens);
}

export function cost(u: Usage | undefined): string {
  if (!u) return '—';
  return `$${u.cost_usd.toFixed(u.cost_usd > 0 && u.cost_usd < 0.01 ? 4 : 2)}`;
}

/** `2026-12-02 08:05:38` (local time) from an ISO 8601 string or epoch ms. */
export function time(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return '—';
  const d = new Date(iso);
  return `${DATE.format(d)} ${CLOCK.format(d)}`;
}

/** `08:05:38` (local time) from epoch ms. */
export function clock(ms: number): string {
  return CLOCK.format(ms);
}
