// Attribute values and their batch JSON (see `record-spans` in wit/polytel.wit).
// Values are written straight into the record's JSON text as they are set, so
// an attribute costs one string append and no object of its own.

/** A number that must travel as a double even when it is integral (`double(1)` is 1.0, not 1). */
export class Double {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
}

/** Marks `value` as a double: `span.setAttribute('temperature', double(1))` sends 1.0. */
export function double(value: number): Double {
  return new Double(value);
}

/**
 * An attribute value: a string, boolean, number (an integer when it is a safe
 * integer, else a double), bigint (a 64-bit integer), `double(x)`, bytes
 * (`Uint8Array`), an array of values, or a plain object (a nested map).
 * `null` and `undefined` are dropped by the core and counted.
 */
export type AttributeValue =
  | string
  | number
  | boolean
  | bigint
  | Double
  | Uint8Array
  | Date
  | null
  | undefined
  | readonly AttributeValue[]
  | { readonly [key: string]: AttributeValue };

/** Attributes by key. */
export type Attributes = { readonly [key: string]: AttributeValue };

const hasWellFormed = typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function';

/** Nothing to escape, no surrogate: the common short string is quoted as it is. */
const PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/**
 * A JSON string. A lone surrogate (possible in a JS string, never in UTF-8)
 * would make the core refuse the whole record, so it becomes U+FFFD first.
 */
export function str(s: string): string {
  if (s.length < 256 && PLAIN.test(s)) return '"' + s + '"';
  if (hasWellFormed && !(s as unknown as { isWellFormed(): boolean }).isWellFormed()) {
    s = (s as unknown as { toWellFormed(): string }).toWellFormed();
  }
  return JSON.stringify(s);
}

const keyCache = new Map<string, string>();

/** `str` for attribute keys, which repeat: their JSON is kept (up to 4096 keys). */
export function keyJson(k: string): string {
  let j = keyCache.get(k);
  if (j === undefined) {
    j = str(String(k));
    if (keyCache.size >= 4096) keyCache.clear();
    keyCache.set(k, j);
  }
  return j;
}

/** A finite double as a JSON number, else as the WIT's "NaN", "Infinity" or "-Infinity". */
export function number(v: number): string {
  if (Number.isFinite(v)) return String(v);
  return v !== v ? '"NaN"' : v > 0 ? '"Infinity"' : '"-Infinity"';
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Standard base64 with padding. */
export function base64Encode(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64[n >>> 18]! + B64[(n >>> 12) & 63]! + B64[(n >>> 6) & 63]! + B64[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += B64[n >>> 18]! + B64[(n >>> 12) & 63]! + '==';
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += B64[n >>> 18]! + B64[(n >>> 12) & 63]! + B64[(n >>> 6) & 63]! + '=';
  }
  return out;
}

const B64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i;

/** Decodes standard base64 (padding optional); other characters are skipped. */
export function base64Decode(text: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(Math.floor((text.length * 3) / 4) + 3);
  let n = 0;
  let bits = 0;
  let len = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? B64_INDEX[c]! : -1;
    if (v < 0) continue;
    n = (n << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[len++] = (n >>> bits) & 255;
    }
  }
  return out.subarray(0, len);
}

/** Arrays and maps nested deeper than this are cut (the core keeps 16 levels); it guards against cycles. */
const MAX_DEPTH = 32;

/** The batch JSON of one attribute value. */
export function valueJson(v: unknown, depth = 0): string {
  switch (typeof v) {
    case 'string':
      return str(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (Number.isSafeInteger(v)) return String(v);
      return '{"double":' + number(v) + '}';
    case 'bigint':
      return v.toString();
    case 'object':
      if (v === null) return 'null';
      if (depth >= MAX_DEPTH) return '"[nested too deep]"';
      if (Array.isArray(v)) {
        let out = '[';
        for (let i = 0; i < v.length; i++) {
          if (i > 0) out += ',';
          out += valueJson(v[i], depth + 1);
        }
        return out + ']';
      }
      if (v instanceof Double) return '{"double":' + number(v.value) + '}';
      if (v instanceof Uint8Array) return '{"bytes":"' + base64Encode(v) + '"}';
      if (ArrayBuffer.isView(v)) {
        return '{"bytes":"' + base64Encode(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) + '"}';
      }
      if (v instanceof ArrayBuffer) return '{"bytes":"' + base64Encode(new Uint8Array(v)) + '"}';
      if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'null' : str(v.toISOString());
      return '{"map":' + attributesJson(v as Attributes, depth + 1) + '}';
    default:
      // undefined, functions, symbols: null, which the core drops and counts.
      return 'null';
  }
}

/** Members of a JSON object of attributes, without braces ("" for none). */
export function attributeMembers(attributes: Attributes | undefined, depth = 0): string {
  if (attributes === undefined || attributes === null) return '';
  let out = '';
  for (const key in attributes) {
    if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
    if (out.length > 0) out += ',';
    out += keyJson(key) + ':' + valueJson(attributes[key], depth);
  }
  return out;
}

/** A JSON object of attributes. */
export function attributesJson(attributes: Attributes | undefined, depth = 0): string {
  return '{' + attributeMembers(attributes, depth) + '}';
}
