import { useState, type FormEvent } from 'react';
import { SupaSyncError } from 'supasync';
import { useReplica } from 'supasync/react';

export function SignIn() {
  const db = useReplica();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  async function go(e: FormEvent, how: 'signIn' | 'signUp') {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await db.auth[how]({ email, password });
    } catch (err) {
      setError(err instanceof SupaSyncError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="signin" onSubmit={(e) => go(e, 'signIn')}>
      <h1>Virgil</h1>
      <p className="tagline">Your conversations, on every device, online or not.</p>
      <input aria-label="email" type="email" placeholder="email" value={email} onChange={(e) => setEmail(e.target.value)} required />
      <input aria-label="password" type="password" placeholder="password" value={password} onChange={(e) => setPassword(e.target.value)} required />
      <div className="row">
        <button type="submit" disabled={busy}>Sign in</button>
        <button type="button" className="secondary" disabled={busy} onClick={(e) => go(e, 'signUp')}>Create account</button>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
    </form>
  );
}
