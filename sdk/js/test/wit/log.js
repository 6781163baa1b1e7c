// The `log` import, recording what is emitted.
export const emitted = [];

export function emit(level, msg) {
  emitted.push({ level, msg });
}
