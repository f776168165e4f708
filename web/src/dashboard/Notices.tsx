import type { Notice } from './model.js';
import { clock } from '../shared/format.js';

interface Props {
  readonly notices: readonly Notice[];
  readonly onDismiss: (id: number) => void;
}

/** Operator notices (`system` broadcasts) as banners across the top. */
export function Notices({ notices, onDismiss }: Props) {
  if (notices.length === 0) return null;
  return (
    <div class="notices">
      {notices.map((n) => (
        <div key={n.id} class="notice" role="alert" data-testid="system-notice">
          <span class="badge">Notice</span>
          <span class="message">{n.message}</span>
          <time>{clock(n.ts)}</time>
          {/refresh|reload/i.test(n.message) && (
            <button type="button" onClick={() => location.reload()}>
              Reload page
            </button>
          )}
          <button
            type="button"
            class="link"
            aria-label="Dismiss notice"
            onClick={() => onDismiss(n.id)}
          >
            Dismiss
          </button>
        </div>
      ))}
    </div>
  );
}
