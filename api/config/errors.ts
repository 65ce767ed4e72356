// A config file problem, reported as one line: `FILE:LINE: what is wrong`.

export class ConfigError extends Error {
  /** What is wrong, control characters escaped: the message is always one printable line. */
  readonly what: string;

  constructor(
    readonly file: string,
    /** 1-based; undefined when the problem is the file as a whole (unreadable, empty). */
    readonly line: number | undefined,
    what: string,
  ) {
    super(where(file, line, what));
    this.what = escapeControls(what);
    this.name = 'ConfigError';
  }
}

/** "\r" → "\\x0d": config text quoted in a message cannot break its line or drive a terminal. */
export function escapeControls(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * A value from a config line, fit to be quoted in an error or a warning. A value can hold a key when
 * lines were run together (a lost newline puts "KEY_BASE64 ..." into the previous value), so runs of
 * 16 or more base64 characters are blanked, `firstWord` keeps only the first word (for values that
 * have no spaces of their own: ports, addresses, numbers), and the length is capped.
 */
export function shown(value: string, firstWord = false): string {
  let t = value.replace(/[A-Za-z0-9+/=]{16,}/g, '[…]');
  const space = firstWord ? t.search(/\s/) : -1;
  if (space >= 0) t = `${t.slice(0, space)}…`;
  return t.length > 48 ? `${t.slice(0, 48)}…` : t;
}

/** "FILE:LINE: text", the shape of every warning an import prints. */
export function where(file: string, line: number | undefined, text: string): string {
  const t = escapeControls(text);
  const f = escapeControls(file);
  return line === undefined ? `${f}: ${t}` : `${f}:${line}: ${t}`;
}
