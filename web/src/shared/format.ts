/** Number and time formatting shared by the dashboard and the console. */

/** "just now", "4 s ago", "3 min ago", "2 h ago". */
export function ago(then: number, now: number): string {
  const s = Math.max(0, Math.round((now - then) / 1000));
  return s < 1 ? 'just now' : `${duration(s)} ago`;
}

/** A number of seconds as "4 s", "3 min", "2 h". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

export function clock(ts: number): string {
  return new Date(ts).toLocaleTimeString([], { hour12: false });
}

const grouped = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

export function int(n: number): string {
  return grouped.format(n);
}

/** A position size: whole lots grouped, fractions (0.25 BTC) kept, up to 4 decimals. */
export function quantity(n: number): string {
  return n.toLocaleString(undefined, { maximumFractionDigits: 4 });
}

export function fixed(n: number, digits: number): string {
  return n.toLocaleString(undefined, {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** Signed money with two decimals: "+1,234.50", "−12.00". */
export function signedMoney(n: number): string {
  const sign = n > 0 ? '+' : n < 0 ? '−' : '';
  return `${sign}${fixed(Math.abs(n), 2)}`;
}

export function megabytes(bytes: number): string {
  return `${fixed(bytes / (1024 * 1024), 0)} MB`;
}

export function millis(ms: number): string {
  return ms < 10 ? `${fixed(ms, 1)} ms` : `${int(ms)} ms`;
}
