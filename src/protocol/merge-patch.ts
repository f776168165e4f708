/**
 * JSON merge patch (RFC 7396): how a state update travels as the fields that changed
 * (docs/protocol.md#deltas). A patch is an object whose members replace the target's, `null`
 * removes a member, nested objects merge, and anything that is not an object (arrays
 * included) replaces the target whole. Values are JSON values; results share unchanged parts
 * with their inputs, which are never modified: treat them as read-only.
 */

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Sets an own member, also one named `__proto__` (an assignment would change the prototype). */
function put(target: JsonObject, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(target, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  else target[key] = value;
}

function own(target: JsonObject, key: string): unknown {
  return Object.hasOwn(target, key) ? target[key] : undefined;
}

/** `target` with `patch` applied (RFC 7396 §2), as a new value. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const key of Object.keys(patch)) {
    const value = patch[key];
    if (value === null) delete out[key];
    else put(out, key, applyMergePatch(own(out, key), value));
  }
  return out;
}

/**
 * A patch P with applyMergePatch(from, P) deep-equal to `to`, or undefined when no merge patch
 * says it: either side is not an object, or `to` holds a `null` member that `from` does not
 * (a patch would read it as "remove"). Unchanged members are left out: diff(a, a) is `{}`.
 */
export function diffMergePatch(from: unknown, to: unknown): JsonObject | undefined {
  return isObject(from) && isObject(to) ? diffObjects(from, to) : undefined;
}

function diffObjects(from: JsonObject, to: JsonObject): JsonObject | undefined {
  const patch: JsonObject = {};
  for (const key of Object.keys(from)) if (!Object.hasOwn(to, key)) put(patch, key, null);
  for (const key of Object.keys(to)) {
    const before = own(from, key);
    const after = to[key];
    if (jsonEqual(before, after)) continue;
    if (isObject(before) && isObject(after)) {
      const inner = diffObjects(before, after);
      if (inner === undefined) return undefined;
      put(patch, key, inner);
    } else if (after === null || holdsNullMember(after)) {
      // Merged into a non-object, a patch loses its null members: it cannot carry them.
      return undefined;
    } else {
      put(patch, key, after);
    }
  }
  return patch;
}

/** Whether an object holds a `null` member at any depth of objects (arrays are opaque). */
function holdsNullMember(value: unknown): boolean {
  if (!isObject(value)) return false;
  for (const key of Object.keys(value)) {
    const member = value[key];
    if (member === null || holdsNullMember(member)) return true;
  }
  return false;
}

/** Deep equality of JSON values (member order aside; -0 and 0 differ, as Object.is says). */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ao = a as JsonObject;
  const bo = b as JsonObject;
  const keys = Object.keys(ao);
  if (keys.length !== Object.keys(bo).length) return false;
  for (const key of keys) if (!Object.hasOwn(bo, key) || !jsonEqual(ao[key], bo[key])) return false;
  return true;
}
