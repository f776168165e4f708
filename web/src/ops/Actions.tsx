import { useRef, useState } from 'preact/hooks';
import type { AdminClient } from './api.js';
import { clock } from '../shared/format.js';

interface Action {
  readonly id: 'cleanup' | 'flush' | 'broadcast';
  readonly title: string;
  readonly step: string;
  readonly effect: string;
}

const ACTIONS: readonly Action[] = [
  {
    id: 'cleanup',
    title: 'Clean up dead connections',
    step: 'Step 3, Fix A',
    effect:
      'Closes connections that stopped answering pings, whose socket is gone, or whose queue is not draining (close code 4010). Their clients reconnect and resume; healthy connections are not touched.',
  },
  {
    id: 'flush',
    title: 'Flush message queues',
    step: 'Step 3, Fix B',
    effect:
      'Empties every client queue and sends each affected client a resync: they catch up from history, so nothing is lost, but every affected dashboard re-reads its channels at once.',
  },
  {
    id: 'broadcast',
    title: 'Broadcast a notice',
    step: 'Step 5',
    effect: 'Shows this message as a banner on every connected dashboard.',
  },
];

interface LogLine {
  readonly at: number;
  readonly text: string;
  readonly ok: boolean;
}

/** The runbook's actions, each behind a confirmation that says what it will do. */
export function Actions({
  api,
  onDone,
}: {
  readonly api: AdminClient;
  readonly onDone: () => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [pending, setPending] = useState<Action | null>(null);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState('Please refresh your dashboard');
  const [log, setLog] = useState<LogLine[]>([]);

  const ask = (action: Action) => {
    setPending(action);
    dialog.current?.showModal();
  };
  const run = async (action: Action) => {
    setBusy(true);
    let line: LogLine;
    try {
      line = { at: Date.now(), ok: true, text: await perform(api, action, message.trim()) };
    } catch (err) {
      line = {
        at: Date.now(),
        ok: false,
        text: `${action.title} failed: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
    setLog((l) => [line, ...l].slice(0, 10));
    setBusy(false);
    onDone();
  };

  return (
    <section class="card" data-testid="actions">
      <header>
        <h2>Actions</h2>
        <span class="muted">each asks for confirmation</span>
      </header>
      <div class="actions">
        {ACTIONS.map((a) => (
          <div class="action-row" key={a.id}>
            <div>
              <strong>{a.title}</strong> <span class="muted">· {a.step}</span>
              <p>{a.effect}</p>
              {a.id === 'broadcast' && (
                <input
                  aria-label="Notice text"
                  maxLength={1000}
                  value={message}
                  onInput={(e) => setMessage(e.currentTarget.value)}
                />
              )}
            </div>
            <button
              type="button"
              class={a.id === 'broadcast' ? 'primary' : 'danger'}
              data-action={a.id}
              disabled={busy || (a.id === 'broadcast' && message.trim().length === 0)}
              onClick={() => ask(a)}
            >
              {a.id === 'cleanup' ? 'Clean up…' : a.id === 'flush' ? 'Flush…' : 'Broadcast…'}
            </button>
          </div>
        ))}
      </div>
      {log.length > 0 && (
        <ol class="log" data-testid="action-log">
          {log.map((l) => (
            <li key={l.at} class={l.ok ? '' : 'down'}>
              {clock(l.at)} {l.text}
            </li>
          ))}
        </ol>
      )}
      <dialog ref={dialog} onClose={() => setPending(null)} data-testid="confirm">
        {pending !== null && (
          <form
            method="dialog"
            onSubmit={(e) => {
              const submitter = (e as SubmitEvent).submitter as HTMLButtonElement | null;
              if (submitter?.value === 'confirm') void run(pending);
            }}
          >
            <h3>{pending.title}?</h3>
            <p>{pending.effect}</p>
            {pending.id === 'broadcast' && (
              <p>
                Message: <strong>{message}</strong>
              </p>
            )}
            <div class="dialog-buttons">
              <button type="submit" value="cancel">
                Cancel
              </button>
              <button type="submit" value="confirm" class="danger">
                Confirm
              </button>
            </div>
          </form>
        )}
      </dialog>
    </section>
  );
}

async function perform(api: AdminClient, action: Action, message: string): Promise<string> {
  const servers = (s: Record<string, number>) =>
    Object.entries(s)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ');
  switch (action.id) {
    case 'cleanup': {
      const r = await api.cleanup();
      return `cleanup removed ${r.removed} connection${r.removed === 1 ? '' : 's'} (${servers(r.servers)})`;
    }
    case 'flush': {
      const r = await api.flush();
      return `flush emptied ${r.flushed_messages} queued messages of ${r.clients} clients`;
    }
    case 'broadcast': {
      const r = await api.broadcast(message);
      return `broadcast "${message}" to ${r.delivered} connections on ${r.servers} server${r.servers === 1 ? '' : 's'}`;
    }
  }
}
