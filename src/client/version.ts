/** The SDK's name and version, sent in `hello` so operators see which clients are connected. */

export const SDK_NAME = 'archon-ws-client';
/** Kept equal to package.json's version (a test checks it). */
export const SDK_VERSION = '0.1.0';

/** The `client` field of `hello` is at most 100 characters (docs/protocol.md). */
const MAX_CLIENT_LENGTH = 100;

/** `archon-ws-client/0.1.0`, or `my-dashboard/1.4.2 archon-ws-client/0.1.0` with an app name. */
export function clientVersion(appName?: string): string {
  const sdk = `${SDK_NAME}/${SDK_VERSION}`;
  const name = appName?.trim();
  if (!name) return sdk;
  // Cut the app's part, never the SDK's: operators match on the SDK version.
  return `${name.slice(0, MAX_CLIENT_LENGTH - sdk.length - 1)} ${sdk}`;
}
