import { useState } from 'preact/hooks';

interface Props {
  readonly title: string;
  readonly label: string;
  readonly hint: string;
  /** Why the last token did not work, if it did not. */
  readonly problem: string | null;
  readonly withAccounts?: boolean;
  readonly onSubmit: (token: string, accounts: string[]) => void;
}

/** The small form both pages show when they have no token. */
export function SignIn({ title, label, hint, problem, withAccounts, onSubmit }: Props) {
  const [token, setToken] = useState('');
  const [accounts, setAccounts] = useState('');
  return (
    <main class="signin">
      <form
        class="card"
        onSubmit={(e) => {
          e.preventDefault();
          const t = token.trim();
          if (t.length === 0) return;
          onSubmit(
            t,
            accounts
              .split(',')
              .map((a) => a.trim())
              .filter((a) => a.length > 0),
          );
        }}
      >
        <h1>{title}</h1>
        {problem !== null && (
          <p class="problem" role="alert">
            {problem}
          </p>
        )}
        <label>
          {label}
          <textarea
            name="token"
            rows={4}
            autoComplete="off"
            spellcheck={false}
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
          />
        </label>
        {withAccounts === true && (
          <label>
            Accounts (only for a token valid for all accounts; comma separated)
            <input
              name="accounts"
              value={accounts}
              onInput={(e) => setAccounts(e.currentTarget.value)}
            />
          </label>
        )}
        <button type="submit" class="primary">
          Sign in
        </button>
        <p class="hint">{hint}</p>
      </form>
    </main>
  );
}
