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

export function tokens(u: Usage | undefined): string {
  if (!u) return '—';
  const n = u.input_tokens + u.output_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens;
  return n.toLocaleString('en-US');
}

export function cost(u: Usage | undefined): string {
  if (!u) return '—';
  return `$${u.cost_usd.toFixed(u.cost_usd > 0 && u.cost_usd < 0.01 ? 4 : 2)}`;
}

export function time(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return '—';
  const d = new Date(iso);
  return `${d.toLocaleDateString('en-CA')} ${d.toLocaleTimeString('en-GB')}`;
}
