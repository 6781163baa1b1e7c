// Checks of what a plugin hands back to the host, against the WIT's types:
// an IpAddress where an address goes, a u32 where a number does, one of an
// enum's names. Each returns the value normalized (absent lists empty,
// absent options undefined) or throws an Invalid naming the path.

import { IpAddress, IpPrefix } from './ip.js';
import { Mac } from './mac.js';

/** A value that does not fit the WIT type at `path`. */
export class Invalid extends Error {}

const shown = (v) => {
  if (v === undefined) return 'nothing';
  if (typeof v === 'bigint') return `${v}n`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
};

const expect = (what, v, path) => {
  throw new Invalid(`${path ? `${path}: ` : ''}expected ${what}, got ${shown(v)}`);
};

const instance = (cls, what) => (v, path) => (v instanceof cls ? v : expect(what, v, path));

export const address = instance(IpAddress, 'an IpAddress');
export const prefix = instance(IpPrefix, 'an IpPrefix');
export const mac = instance(Mac, 'a Mac');

export const string = (v, path) => (typeof v === 'string' ? v : expect('a string', v, path));
export const bool = (v, path) => (typeof v === 'boolean' ? v : expect('a boolean', v, path));

/** @param {number} bits */
export const uint = (bits) => (v, path) =>
  Number.isInteger(v) && v >= 0 && v < 2 ** bits ? v : expect(`an integer from 0 to ${2 ** bits - 1}`, v, path);

/** @param {string[]} names */
export const oneOf = (names) => (v, path) => (names.includes(v) ? v : expect(`one of ${names.join(', ')}`, v, path));

/** `f` of `v`, or undefined when `v` is absent (undefined or null). */
export const optional = (f) => (v, path) => (v === undefined || v === null ? undefined : f(v, path));

/** `f` of each item; an absent list is empty. */
export const list = (f) => (v, path) => {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) expect('a list', v, path);
  return v.map((x, i) => f(x, `${path}[${i}]`));
};

/** The record `v` with each field checked by its function in `fields`. */
export const record = (fields) => (v, path) => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) expect('an object', v, path);
  const out = {};
  for (const [key, f] of Object.entries(fields)) out[key] = f(v[key], path ? `${path}.${key}` : key);
  return out;
};

/** Throws an Invalid at `path` unless `ok`. */
export function ensure(ok, path, msg) {
  if (!ok) throw new Invalid(`${path}: ${msg}`);
}
