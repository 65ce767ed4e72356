// A config file problem, reported as one line: `FILE:LINE: what is wrong`.

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    /** 1-based; undefined when the problem is the file as a whole (unreadable, empty). */
    readonly line: number | undefined,
    readonly what: string,
  ) {
    super(line === undefined ? `${file}: ${what}` : `${file}:${line}: ${what}`);
    this.name = 'ConfigError';
  }
}

/** "FILE:LINE: text", the shape of every warning an import prints. */
export function where(file: string, line: number | undefined, text: string): string {
  return line === undefined ? `${file}: ${text}` : `${file}:${line}: ${text}`;
}
