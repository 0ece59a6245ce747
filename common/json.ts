/** A JSON object: not null, not an array. The one guard every parser here uses. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
