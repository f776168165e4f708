/**
 * A component that redraws only when one of its props changed (by identity): a row of a busy
 * table is redrawn by its own state, not by every redraw of the table around it. The same as
 * preact/compat's `memo`, which the pages do not load (test/unit/layout.test.ts).
 */
import { Component, h, type FunctionComponent } from 'preact';

export function memo<P extends object>(inner: FunctionComponent<P>) {
  return class Memo extends Component<P> {
    override shouldComponentUpdate(next: P): boolean {
      const now = this.props as Record<string, unknown>;
      const after = next as Record<string, unknown>;
      for (const k in after) if (k !== 'children' && now[k] !== after[k]) return true;
      for (const k in now) if (!(k in after)) return true;
      return false;
    }
    render(props: P) {
      return h(inner, props);
    }
  };
}
