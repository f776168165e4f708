import { useEffect, useState } from 'preact/hooks';
import { AlertHistory, PendingAlerts } from './Alerts.js';
import { ConnectionIndicator } from './ConnectionIndicator.js';
import { DashboardModel, gatewayWsUrl } from './model.js';
import { Notices } from './Notices.js';
import { Positions } from './Positions.js';
import { Signals } from './Signals.js';
import { useFrameRender, useNow, useSession } from '../shared/hooks.js';
import { ago } from '../shared/format.js';
import { readClaims, type Session } from '../shared/session.js';
import { SignIn } from '../shared/SignIn.js';

const SESSION_KEY = 'archon.dashboard.session';

export function App() {
  const { session, problem, signIn, signOut, refuse } = useSession(SESSION_KEY);
  if (session === null)
    return (
      <SignIn
        title="Archon live dashboard"
        label="Your access token (JWT)"
        hint="Tip: open the link with #token=… to sign in directly. The token stays in this tab only."
        problem={problem}
        withAccounts
        onSubmit={(token, accounts) => {
          if (readClaims(token) === null) refuse('That is not a JWT (three dot-separated parts).');
          else signIn({ token, accounts });
        }}
      />
    );
  return <Dashboard session={session} onSignOut={signOut} />;
}

interface DashboardProps {
  readonly session: Session;
  readonly onSignOut: (why: string | null) => void;
}

function Dashboard({ session, onSignOut }: DashboardProps) {
  const render = useFrameRender();
  const now = useNow();
  const online = useOnline();
  const claims = readClaims(session.token);
  const accounts = accountsOf(session, claims?.accounts ?? []);
  const [model] = useState(
    () =>
      new DashboardModel({
        url: gatewayWsUrl(),
        token: session.token,
        user: claims?.sub ?? 'anonymous',
        accounts,
        changed: render,
        refused: (reason) => onSignOut(`Signed out: the gateway refused the token (${reason}).`),
      }),
  );
  useEffect(() => () => model.dispose(), [model]);
  const pending = model.alerts.book.pending.length;
  useEffect(() => {
    document.title = pending > 0 ? `(${pending}) ⚠ Risk alert · Archon` : 'Archon · Live dashboard';
  }, [pending]);
  const live = model.live;
  return (
    <div class="page">
      <header class="topbar">
        <div class="brand">
          Archon <span class="muted">live</span>
        </div>
        <ConnectionIndicator
          connection={model.connection}
          catchingUp={model.catchingUp()}
          retryAt={model.retryAt}
          lastUpdate={model.lastUpdate}
          now={now}
          online={online}
          onRetry={() => model.reconnectNow()}
        />
        <div class="who">
          <span>{claims?.name ?? claims?.sub ?? 'signed in'}</span>
          <button type="button" class="link" onClick={() => onSignOut(null)}>
            Sign out
          </button>
        </div>
      </header>
      <Notices notices={model.notices} onDismiss={(id) => model.dismissNotice(id)} />
      <PendingAlerts
        pending={model.alerts.book.pending}
        attempts={model.alerts.attempts}
        now={now}
        onAcknowledge={(id) => model.alerts.acknowledge(id)}
      />
      {!live && (
        <div class="not-live-banner" data-testid="not-live">
          Not live: what you see is from{' '}
          {model.lastUpdate === null ? 'before connecting' : ago(model.lastUpdate, now)}. It updates
          by itself as soon as the connection and every channel are back.
        </div>
      )}
      {accounts.length === 0 && (
        <p class="problem">
          This token names no accounts. Sign in with an account list (for a token valid for all
          accounts) or ask for a token with an <code>accounts</code> claim.
        </p>
      )}
      <main class={`grid ${live ? '' : 'not-live'}`}>
        <div class="accounts">
          {model.accounts.map((view) => (
            <Positions key={view.account} view={view} now={now} />
          ))}
        </div>
        <div class="sidebar">
          <Signals feed={model.feed} channel={model.signals} />
          <AlertHistory closed={model.alerts.book.closed} />
        </div>
      </main>
    </div>
  );
}

/** A `*` token watches the accounts the user listed; otherwise the token's own accounts. */
function accountsOf(session: Session, fromToken: readonly string[]): string[] {
  const own = fromToken.filter((a) => a !== '*');
  if (fromToken.includes('*') || own.length === 0) return [...session.accounts];
  return own;
}

function useOnline(): boolean {
  const [online, setOnline] = useState(navigator.onLine);
  useEffect(() => {
    const on = () => setOnline(true);
    const off = () => setOnline(false);
    addEventListener('online', on);
    addEventListener('offline', off);
    return () => {
      removeEventListener('online', on);
      removeEventListener('offline', off);
    };
  }, []);
  return online;
}
