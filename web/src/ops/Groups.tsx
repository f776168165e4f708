import type { ConnectionEntry } from '../../../src/client/index.js';
import { int } from '../shared/format.js';

type Field = 'server' | 'client_version';

/** Connections counted by server and by client version (RB-003 Step 1's distribution). */
export function Groups({ connections }: { readonly connections: readonly ConnectionEntry[] }) {
  return (
    <section class="card" data-testid="groups">
      <header>
        <h2>Connections</h2>
        <span class="muted">{int(connections.length)} in all</span>
      </header>
      <Group title="By server" field="server" connections={connections} />
      <Group title="By client version" field="client_version" connections={connections} />
    </section>
  );
}

function Group(props: {
  readonly title: string;
  readonly field: Field;
  readonly connections: readonly ConnectionEntry[];
}) {
  const counts = new Map<string, { n: number; queued: number }>();
  for (const c of props.connections) {
    const key = c[props.field] ?? '(not sent)';
    const entry = counts.get(key) ?? { n: 0, queued: 0 };
    entry.n += 1;
    entry.queued += c.queue_depth;
    counts.set(key, entry);
  }
  const rows = [...counts].sort((a, b) => b[1].n - a[1].n).slice(0, 12);
  const total = props.connections.length || 1;
  return (
    <div class="table-wrap" data-testid={`group-${props.field}`}>
      <table>
        <thead>
          <tr>
            <th>{props.title}</th>
            <th class="num">Connections</th>
            <th class="num">Share</th>
            <th class="num">Queued</th>
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && (
            <tr>
              <td colSpan={4} class="muted">
                no connections
              </td>
            </tr>
          )}
          {rows.map(([key, { n, queued }]) => (
            <tr key={key}>
              <td>{key}</td>
              <td class="num">{int(n)}</td>
              <td class="num">{Math.round((n / total) * 100)} %</td>
              <td class="num">{int(queued)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
