// Errors a command reports as one line and a non-zero exit status.

/** Bad input: a usage error, a broken config file, a packet that fails to decode. Exit status 2. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}
