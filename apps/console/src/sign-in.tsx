/** Sign in with an API key: checked against the API (`GET /api/runs?limit=1`) before it is kept. */
import { useState, type FormEvent } from 'react';
import { ApiError, api } from './api.js';

export function SignIn({ onSignedIn }: { onSignedIn: (key: string) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api('GET', '/api/runs?limit=1', undefined, key.trim());
      onSignedIn(key.trim());
    } catch (err) {
      setError(err instanceof ApiError ? err.apiMessage : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="sign-in">
      <h1>AgentFleet console</h1>
      <form onSubmit={(e) => void submit(e)}>
        <label htmlFor="api-key">API key</label>
        <input id="api-key" type="password" autoComplete="current-password" value={key} onChange={(e) => setKey(e.target.value)} required />
        <p className="hint">The same keys as the HTTP API (FLEET_ADMIN_KEY, FLEET_API_KEYS or one made with POST /api/api-keys). A non-admin key sees only its own runs. The key is kept in this tab only.</p>
        <button type="submit" disabled={busy || key.trim() === ''}>
          Sign in
        </button>
        {error ? (
          <p role="alert" className="error">
            {error}
          </p>
        ) : null}
      </form>
    </main>
  );
}
