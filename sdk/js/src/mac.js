// A 48-bit MAC address, as the host reads and prints it (`0a:58:0a:f4:00:05`).

export class Mac {
  /** @param {ArrayLike<number>} bytes six bytes, most significant first */
  constructor(bytes) {
    const b = Array.from(bytes);
    if (b.length !== 6 || !b.every((x) => Number.isInteger(x) && x >= 0 && x <= 255)) {
      throw new RangeError(`${String(bytes)} is not six bytes`);
    }
    this.bytes = Object.freeze(b);
    Object.freeze(this);
  }

  /**
   * The MAC `text` spells (six pairs of hex digits joined by ':'), or undefined.
   * @param {string} text
   * @returns {Mac | undefined}
   */
  static parse(text) {
    if (typeof text !== 'string' || !/^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$/.test(text)) return undefined;
    return new Mac(text.split(':').map((p) => parseInt(p, 16)));
  }

  /** @param {unknown} other */
  equals(other) {
    return other instanceof Mac && other.bytes.every((b, i) => b === this.bytes[i]);
  }

  toString() {
    return this.bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
  }

  /** JSON shows the text. */
  toJSON() {
    return String(this);
  }
}
