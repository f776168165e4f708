import type { SuccessCheck } from '../../../src/client/index.js';

/** RB-003 section 5 as a live checklist: the same criteria as `archon-ws verify`. */
export function Criteria({ checks }: { readonly checks: readonly SuccessCheck[] }) {
  const failing = checks.filter((c) => !c.pass).length;
  return (
    <section class="card" data-testid="criteria">
      <header>
        <h2>Success criteria (RB-003 §5)</h2>
        <span class={failing === 0 ? 'up' : 'down'} data-testid="criteria-summary">
          {failing === 0 ? 'all pass' : `${failing} of ${checks.length} fail`}
        </span>
      </header>
      <ul class="checklist">
        {checks.map((c) => (
          <li key={c.name} data-pass={String(c.pass)}>
            <span class={`verdict ${c.pass ? 'pass' : 'fail'}`}>
              {c.pass ? '✓ PASS' : '✗ FAIL'}
            </span>
            <span>
              {c.name}
              <br />
              <span class="muted">{c.figure}</span>
            </span>
            <span class="muted">{c.threshold}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}
