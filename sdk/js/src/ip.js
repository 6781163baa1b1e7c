// IPv4 and IPv6 addresses and prefixes as values: parsed from text once, at
// the edge, then compared and stepped as BigInts. Text formats as Rust's
// std::net does (RFC 5952 for IPv6), so messages read the same in both SDKs.

const BITS = { 4: 32, 6: 128 };

/** An IP address: its family (4 or 6) and its value as an unsigned BigInt. Immutable. */
export class IpAddress {
  /**
   * @param {4 | 6} family
   * @param {bigint} value
   */
  constructor(family, value) {
    const bits = BITS[family];
    if (bits === undefined) throw new RangeError(`IP family must be 4 or 6, not ${family}`);
    if (typeof value !== 'bigint' || value < 0n || value >> BigInt(bits) !== 0n) {
      throw new RangeError(`${String(value)} is not an IPv${family} address value`);
    }
    this.family = family;
    this.value = value;
    Object.freeze(this);
  }

  /**
   * The address `text` spells (`10.0.0.1`, `fd00::1`, `::ffff:10.0.0.1`), or
   * undefined. No zone, no brackets, no leading zeros in IPv4 octets.
   * @param {string} text
   * @returns {IpAddress | undefined}
   */
  static parse(text) {
    if (typeof text !== 'string') return undefined;
    if (!text.includes(':')) {
      const v = parseV4(text);
      return v === undefined ? undefined : new IpAddress(4, v);
    }
    const v = parseV6(text);
    return v === undefined ? undefined : new IpAddress(6, v);
  }

  /** @param {ArrayLike<number>} octets four bytes, network order */
  static fromOctets(octets) {
    return new IpAddress(4, join(octets, 4, 8));
  }

  /** @param {ArrayLike<number>} groups eight 16-bit groups, in order */
  static fromGroups(groups) {
    return new IpAddress(6, join(groups, 8, 16));
  }

  /** 32 or 128. */
  get bits() {
    return BITS[this.family];
  }

  get isV4() {
    return this.family === 4;
  }

  get isV6() {
    return this.family === 6;
  }

  /** @returns {number[]} the four bytes (IPv4 only) */
  octets() {
    if (!this.isV4) throw new TypeError(`${this} is not an IPv4 address`);
    return split(this.value, 4, 8);
  }

  /** @returns {number[]} the eight 16-bit groups (IPv6 only) */
  groups() {
    if (!this.isV6) throw new TypeError(`${this} is not an IPv6 address`);
    return split(this.value, 8, 16);
  }

  /** The next address, or undefined past the end of the family's space. */
  next() {
    const v = this.value + 1n;
    return v >> BigInt(this.bits) === 0n ? new IpAddress(this.family, v) : undefined;
  }

  /** The previous address, or undefined before the start of the family's space. */
  prev() {
    return this.value === 0n ? undefined : new IpAddress(this.family, this.value - 1n);
  }

  /**
   * Orders addresses as Rust's IpAddr does: every IPv4 one before every IPv6 one.
   * @param {IpAddress} other
   * @returns {-1 | 0 | 1}
   */
  compare(other) {
    if (this.family !== other.family) return this.family < other.family ? -1 : 1;
    return this.value < other.value ? -1 : this.value > other.value ? 1 : 0;
  }

  /** @param {unknown} other */
  equals(other) {
    return other instanceof IpAddress && other.family === this.family && other.value === this.value;
  }

  /** A string unique to this address, for maps and sets. */
  get key() {
    return `${this.family}:${this.value}`;
  }

  toString() {
    return this.isV4 ? this.octets().join('.') : formatV6(this.groups());
  }

  /** JSON shows the text. */
  toJSON() {
    return String(this);
  }
}

/** An address with a prefix length (CIDR). Host bits are kept as given. Immutable. */
export class IpPrefix {
  /**
   * @param {IpAddress} address
   * @param {number} prefixLen 0 to 32 (IPv4) or 128 (IPv6)
   */
  constructor(address, prefixLen) {
    if (!(address instanceof IpAddress)) throw new TypeError(`${String(address)} is not an IpAddress`);
    if (!Number.isInteger(prefixLen) || prefixLen < 0) throw new RangeError(`${prefixLen} is not a prefix length`);
    if (prefixLen > address.bits) throw new RangeError(`prefix length ${prefixLen} is too long for ${address}`);
    this.address = address;
    this.prefixLen = prefixLen;
    Object.freeze(this);
  }

  /**
   * The prefix `text` spells (`10.22.0.0/16`, `fd00::5/64`), or undefined.
   * @param {string} text
   * @returns {IpPrefix | undefined}
   */
  static parse(text) {
    if (typeof text !== 'string') return undefined;
    const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
    const address = m ? IpAddress.parse(m[1]) : undefined;
    if (!address || Number(m[2]) > address.bits) return undefined;
    return new IpPrefix(address, Number(m[2]));
  }

  get family() {
    return this.address.family;
  }

  get #hostMask() {
    return (1n << BigInt(this.address.bits - this.prefixLen)) - 1n;
  }

  /** The first address (the network's). */
  get first() {
    return new IpAddress(this.family, this.address.value & ~this.#hostMask);
  }

  /** The last address (IPv4's broadcast). */
  get last() {
    return new IpAddress(this.family, this.address.value | this.#hostMask);
  }

  /** This prefix with the host bits zeroed (`10.22.0.5/16` → `10.22.0.0/16`). */
  network() {
    return new IpPrefix(this.first, this.prefixLen);
  }

  /** @param {IpAddress} ip */
  contains(ip) {
    const net = ~this.#hostMask;
    return ip.family === this.family && (ip.value & net) === (this.address.value & net);
  }

  /** @param {unknown} other */
  equals(other) {
    return other instanceof IpPrefix && other.prefixLen === this.prefixLen && other.address.equals(this.address);
  }

  toString() {
    return `${this.address}/${this.prefixLen}`;
  }

  /** JSON shows the text. */
  toJSON() {
    return String(this);
  }
}

/** The prefix holding `ip` alone: a /32 or a /128. */
export const hostPrefix = (ip) => new IpPrefix(ip, ip.bits);

/** A set of addresses, by value. */
export class IpSet {
  /** @type {Map<string, IpAddress>} */
  #map = new Map();

  /** @param {Iterable<IpAddress>} [ips] */
  constructor(ips = []) {
    for (const ip of ips) this.add(ip);
  }

  /** @param {IpAddress} ip */
  has(ip) {
    return this.#map.has(ip.key);
  }

  /** @param {IpAddress} ip */
  add(ip) {
    this.#map.set(ip.key, ip);
    return this;
  }

  /** @param {IpAddress} ip */
  delete(ip) {
    return this.#map.delete(ip.key);
  }

  get size() {
    return this.#map.size;
  }

  [Symbol.iterator]() {
    return this.#map.values();
  }
}

function join(parts, count, width) {
  if (parts.length !== count) throw new RangeError(`expected ${count} parts, got ${parts.length}`);
  let v = 0n;
  for (const p of Array.from(parts)) {
    if (!Number.isInteger(p) || p < 0 || p >= 2 ** width) throw new RangeError(`${p} is not a ${width}-bit value`);
    v = (v << BigInt(width)) | BigInt(p);
  }
  return v;
}

function split(value, count, width) {
  const mask = (1n << BigInt(width)) - 1n;
  const out = [];
  for (let i = count - 1; i >= 0; i--) out.push(Number((value >> BigInt(i * width)) & mask));
  return out;
}

const OCTET = /^(?:0|[1-9]\d{0,2})$/;

function parseV4(text) {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p) && Number(p) <= 255)) return undefined;
  return join(parts.map(Number), 4, 8);
}

const GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Eight groups from `text`, with at most one `::` and an optional IPv4 tail. */
function parseV6(text) {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (half) => {
    if (half === '') return [];
    const parts = half.split(':');
    const out = [];
    for (const [i, p] of parts.entries()) {
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseV4(p);
        if (v4 === undefined) return undefined;
        out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else if (GROUP.test(p)) {
        out.push(parseInt(p, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  // An IPv4 tail belongs at the very end only.
  if (halves.length === 2 && halves[0].includes('.')) return undefined;
  const explicit = head.length + tail.length;
  if (halves.length === 1 ? explicit !== 8 : explicit > 7) return undefined;
  const all = [...head, ...new Array(8 - explicit).fill(0), ...tail];
  return join(all, 8, 16);
}

/** RFC 5952: the longest run of two or more zero groups (the first of equals) is `::`. */
function formatV6(g) {
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return `::ffff:${g[6] >> 8}.${g[6] & 255}.${g[7] >> 8}.${g[7] & 255}`;
  }
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = (xs) => xs.map((x) => x.toString(16)).join(':');
  if (best.at < 0) return hex(g);
  return `${hex(g.slice(0, best.at))}::${hex(g.slice(best.at + best.len))}`;
}
