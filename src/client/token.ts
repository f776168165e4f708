/**
 * The user's JWT: asked of the application once, kept, and asked again only after the server
 * refused it (close 4001, HTTP 401), so a reconnect storm does not become a token storm.
 */

/** A JWT, or a function giving one. */
export type TokenSource = string | (() => string | Promise<string>);

export class TokenCache {
  private token: string | null = null;
  private request: Promise<string> | null = null;

  /**
   * `timeoutMs`: how long a provider may take. One that hangs (an auth server that never
   * answers) fails after this long, so the client retries with backoff instead of waiting
   * forever while the screen says "trying now".
   */
  constructor(
    private readonly source: TokenSource,
    private readonly timeoutMs = 10_000,
  ) {}

  /** The kept token, or a fresh one from the source (one request at a time). */
  get(): Promise<string> {
    if (this.token !== null) return Promise.resolve(this.token);
    this.request ??= this.withTimeout(this.fetch()).finally(() => {
      this.request = null;
    });
    return this.request;
  }

  private withTimeout(request: Promise<string>): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the token provider gave no answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    return Promise.race([request, timeout]).finally(() => clearTimeout(timer));
  }

  /**
   * A token fresher than the kept one, for renewal in place: asked of the source (with the
   * same timeout) but not kept until accept(); null when the source is a fixed string.
   */
  async fresh(): Promise<string | null> {
    if (typeof this.source === 'string') return null;
    const source = this.source;
    const token = await this.withTimeout(Promise.resolve().then(() => source()));
    if (typeof token !== 'string' || token.length === 0)
      throw new Error('the token provider gave no token');
    return token;
  }

  /** The server took this token (a renewal): reconnects use it from now on. */
  accept(token: string): void {
    this.token = token;
  }

  /** The server refused the token: the next get() asks the source again. */
  refused(): void {
    this.token = null;
  }

  private async fetch(): Promise<string> {
    const token = typeof this.source === 'string' ? this.source : await this.source();
    if (typeof token !== 'string' || token.length === 0)
      throw new Error('the token provider gave no token');
    this.token = token;
    return token;
  }
}
